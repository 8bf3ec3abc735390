"""Tables of the opinion domain: sources, posts (normalised text, segmented tokens for full-text
search, keyed author hash, duplicate group, sentiment with the model that made it), duplicate
groups, trained sentiment models, analysts' labels, the rumour watch-list, alerts with the posts
behind them, and the weekly reports.

Full-text search has no model here: the migration adds an FTS5 virtual table (SQLite) or a GIN
index over ``to_tsvector('simple', tokens)`` (PostgreSQL), both named ``*_fts``. ``tokens`` holds
the jieba-segmented text joined by spaces, so both engines search words although Chinese is
written without spaces.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fugong.core.models import User
from fugong.db import Base, JSONDoc, UTCDateTime, utcnow

SOURCE_KINDS = {"file": "文件导入", "feed": "RSS/Atom 订阅", "push": "推送接口"}
SENTIMENTS = {"negative": "负面", "neutral": "中性", "positive": "正面"}
ALERT_KINDS = {"volume": "声量突增", "rumour": "谣言监测", "negative_share": "负面占比突升"}
ALERT_STATUSES = {"new": "待处理", "acknowledged": "已处理"}


def _in(column: str, values: Any) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class OpinionSource(Base):
    """Where posts come from: an imported file's channel, a configured feed, or a push client."""

    __tablename__ = "opinion_sources"
    __table_args__ = (
        CheckConstraint(_in("kind", SOURCE_KINDS), name="kind"),
        CheckConstraint("kind != 'feed' OR url IS NOT NULL", name="feed_has_url"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    url: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OpinionDuplicateGroup(Base):
    """Posts that are one item (exact copies and reposts with small edits). ``key`` derives from
    the representative's fingerprint, so it stays stable as reposts are added. The
    representative is the member with ``is_duplicate`` false."""

    __tablename__ = "opinion_dup_groups"
    __table_args__ = (CheckConstraint("size >= 1", name="size_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(24), unique=True)
    size: Mapped[int] = mapped_column(Integer, default=1)


class OpinionPost(Base):
    """One post or article. ``text`` is what was received; ``text_norm`` its Simplified,
    half-width form (what pages show and analysis reads). The author handle is never stored,
    only its HMAC under a deployment key."""

    __tablename__ = "opinion_posts"
    __table_args__ = (
        UniqueConstraint("source_id", "external_id", name="uq_opinion_posts_source_external"),
        CheckConstraint(
            "sentiment IS NULL OR sentiment IN ('negative', 'neutral', 'positive')",
            name="sentiment",
        ),
        CheckConstraint(
            "sentiment IS NULL OR (sentiment_model IS NOT NULL AND sentiment_score IS NOT NULL)",
            name="sentiment_has_model",
        ),
        CheckConstraint("length(fingerprint) = 64", name="fingerprint_len"),
        CheckConstraint("author_hash IS NULL OR length(author_hash) = 64", name="author_hash_len"),
        Index("ix_opinion_posts_posted_at", "posted_at"),
        Index("ix_opinion_posts_analysed_posted", "analysed_at", "posted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("opinion_sources.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(String(1000))
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    text: Mapped[str] = mapped_column(Text)
    text_norm: Mapped[str] = mapped_column(Text)
    tokens: Mapped[str] = mapped_column(Text)
    author_hash: Mapped[str | None] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    dup_group_id: Mapped[int | None] = mapped_column(
        ForeignKey("opinion_dup_groups.id", ondelete="SET NULL"), index=True
    )
    # True for every member of a duplicate group but its representative: counts skip them.
    is_duplicate: Mapped[bool] = mapped_column(Boolean, default=False)
    sentiment: Mapped[str | None] = mapped_column(String(10))
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    sentiment_model: Mapped[str | None] = mapped_column(String(80))
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    analysed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    source: Mapped[OpinionSource] = relationship(lazy="joined")


class OpinionModel(Base):
    """A trained sentiment classifier (its JSON), with the scores it had when trained. At most
    one is active; without one the lexicon baseline scores posts."""

    __tablename__ = "opinion_models"
    __table_args__ = (
        CheckConstraint("n_train > 0", name="n_train_positive"),
        Index(
            "ix_opinion_models_one_active",
            "active",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(80), unique=True)
    algorithm: Mapped[str] = mapped_column(String(10))
    n_train: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    body: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    created_by: Mapped[User | None] = relationship(lazy="joined")


class OpinionLabel(Base):
    """An analyst's sentiment label of a post: the training set the classifier learns from."""

    __tablename__ = "opinion_labels"
    __table_args__ = (
        CheckConstraint("label IN ('negative', 'neutral', 'positive')", name="label"),
    )

    post_id: Mapped[int] = mapped_column(
        ForeignKey("opinion_posts.id", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[str] = mapped_column(String(10))
    labelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    labelled_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    post: Mapped[OpinionPost] = relationship()


class OpinionWatchPhrase(Base):
    """A rumour phrase to watch for; ``*`` allows a few characters between its parts."""

    __tablename__ = "opinion_watch_phrases"

    id: Mapped[int] = mapped_column(primary_key=True)
    phrase: Mapped[str] = mapped_column(String(100), unique=True)
    note: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class OpinionAlert(Base):
    """A raised alert, unique per (kind, subject, day, method) so re-running detection is
    idempotent. Acknowledging records who and when; the annotation is the analyst's note."""

    __tablename__ = "opinion_alerts"
    __table_args__ = (
        UniqueConstraint("kind", "subject", "day", "method", name="uq_opinion_alerts_key"),
        CheckConstraint(_in("kind", ALERT_KINDS), name="kind"),
        CheckConstraint(_in("status", ALERT_STATUSES), name="status"),
        CheckConstraint(
            "status = 'new' OR (acknowledged_by_id IS NOT NULL AND acknowledged_at IS NOT NULL)",
            name="acknowledged_has_who",
        ),
        Index("ix_opinion_alerts_day", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(100))
    day: Mapped[date] = mapped_column(Date)
    # C1/C2/C3 for volume alerts, '' otherwise (NULL would defeat the unique key).
    method: Mapped[str] = mapped_column(String(4), default="")
    statistic: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    status: Mapped[str] = mapped_column(String(15), default="new")
    annotation: Mapped[str | None] = mapped_column(Text)
    acknowledged_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    acknowledged_by: Mapped[User | None] = relationship(lazy="joined")


class OpinionAlertPost(Base):
    """The posts behind an alert."""

    __tablename__ = "opinion_alert_posts"

    alert_id: Mapped[int] = mapped_column(
        ForeignKey("opinion_alerts.id", ondelete="CASCADE"), primary_key=True
    )
    post_id: Mapped[int] = mapped_column(
        ForeignKey("opinion_posts.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class OpinionReport(Base):
    """The weekly public-opinion report (每周舆情分析报告) of one ISO week: HTML and PDF."""

    __tablename__ = "opinion_reports"
    __table_args__ = (
        CheckConstraint("length(week) = 8", name="week_format"),
        CheckConstraint("period_end > period_start", name="period_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    week: Mapped[str] = mapped_column(String(8), unique=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    summary: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    created_by: Mapped[User | None] = relationship(lazy="joined")
