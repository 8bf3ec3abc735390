"""opinion

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 07:10:00

Public-opinion monitoring: sources, posts, duplicate groups, sentiment models, labels, the rumour
watch-list, alerts, weekly reports; and full-text search over the segmented post text (an FTS5
table kept in step by triggers on SQLite, a GIN index over ``to_tsvector`` on PostgreSQL).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import fugong.db.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

_SQLITE_FTS = [
    # External-content FTS5 over opinion_posts.tokens: the index stores no second copy of the
    # text, and the triggers keep it in step with every insert, update and delete.
    "CREATE VIRTUAL TABLE opinion_posts_fts USING fts5("
    "tokens, content='opinion_posts', content_rowid='id')",
    "CREATE TRIGGER opinion_posts_fts_ai AFTER INSERT ON opinion_posts BEGIN "
    "INSERT INTO opinion_posts_fts(rowid, tokens) VALUES (new.id, new.tokens); END",
    "CREATE TRIGGER opinion_posts_fts_ad AFTER DELETE ON opinion_posts BEGIN "
    "INSERT INTO opinion_posts_fts(opinion_posts_fts, rowid, tokens) "
    "VALUES ('delete', old.id, old.tokens); END",
    "CREATE TRIGGER opinion_posts_fts_au AFTER UPDATE OF tokens ON opinion_posts BEGIN "
    "INSERT INTO opinion_posts_fts(opinion_posts_fts, rowid, tokens) "
    "VALUES ('delete', old.id, old.tokens); "
    "INSERT INTO opinion_posts_fts(rowid, tokens) VALUES (new.id, new.tokens); END",
]


def upgrade() -> None:
    op.create_table(
        "opinion_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("url", sa.String(length=1000), nullable=True),
        sa.Column("created_at", fugong.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_fetched_at", fugong.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('file', 'feed', 'push')", name=op.f("ck_opinion_sources_kind")
        ),
        sa.CheckConstraint(
            "kind != 'feed' OR url IS NOT NULL", name=op.f("ck_opinion_sources_feed_has_url")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opinion_sources")),
        sa.UniqueConstraint("name", name=op.f("uq_opinion_sources_name")),
    )
    op.create_table(
        "opinion_dup_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=24), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.CheckConstraint("size >= 1", name=op.f("ck_opinion_dup_groups_size_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opinion_dup_groups")),
        sa.UniqueConstraint("key", name=op.f("uq_opinion_dup_groups_key")),
    )
    op.create_table(
        "opinion_posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=1000), nullable=True),
        sa.Column("posted_at", fugong.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_norm", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
        sa.Column("author_hash", sa.String(length=64), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("dup_group_id", sa.Integer(), nullable=True),
        sa.Column("is_duplicate", sa.Boolean(), nullable=False),
        sa.Column("sentiment", sa.String(length=10), nullable=True),
        sa.Column("sentiment_score", sa.Float(), nullable=True),
        sa.Column("sentiment_model", sa.String(length=80), nullable=True),
        sa.Column("ingested_at", fugong.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("analysed_at", fugong.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "sentiment IS NULL OR sentiment IN ('negative', 'neutral', 'positive')",
            name=op.f("ck_opinion_posts_sentiment"),
        ),
        sa.CheckConstraint(
            "sentiment IS NULL OR (sentiment_model IS NOT NULL AND sentiment_score IS NOT NULL)",
            name=op.f("ck_opinion_posts_sentiment_has_model"),
        ),
        sa.CheckConstraint(
            "length(fingerprint) = 64", name=op.f("ck_opinion_posts_fingerprint_len")
        ),
        sa.CheckConstraint(
            "author_hash IS NULL OR length(author_hash) = 64",
            name=op.f("ck_opinion_posts_author_hash_len"),
        ),
        sa.ForeignKeyConstraint(
            ["dup_group_id"],
            ["opinion_dup_groups.id"],
            name=op.f("fk_opinion_posts_dup_group_id_opinion_dup_groups"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["opinion_sources.id"],
            name=op.f("fk_opinion_posts_source_id_opinion_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opinion_posts")),
        sa.UniqueConstraint("source_id", "external_id", name="uq_opinion_posts_source_external"),
    )
    op.create_index("ix_opinion_posts_posted_at", "opinion_posts", ["posted_at"])
    op.create_index(
        "ix_opinion_posts_analysed_posted", "opinion_posts", ["analysed_at", "posted_at"]
    )
    op.create_index(op.f("ix_opinion_posts_fingerprint"), "opinion_posts", ["fingerprint"])
    op.create_index(op.f("ix_opinion_posts_dup_group_id"), "opinion_posts", ["dup_group_id"])
    op.create_table(
        "opinion_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=80), nullable=False),
        sa.Column("algorithm", sa.String(length=10), nullable=False),
        sa.Column("n_train", sa.Integer(), nullable=False),
        sa.Column("metrics", _JSON, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", fugong.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("n_train > 0", name=op.f("ck_opinion_models_n_train_positive")),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_opinion_models_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opinion_models")),
        sa.UniqueConstraint("version", name=op.f("uq_opinion_models_version")),
    )
    op.create_index(
        "ix_opinion_models_one_active",
        "opinion_models",
        ["active"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )
    op.create_table(
        "opinion_labels",
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=10), nullable=False),
        sa.Column("labelled_by_id", sa.Integer(), nullable=True),
        sa.Column("labelled_at", fugong.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "label IN ('negative', 'neutral', 'positive')", name=op.f("ck_opinion_labels_label")
        ),
        sa.ForeignKeyConstraint(
            ["labelled_by_id"],
            ["users.id"],
            name=op.f("fk_opinion_labels_labelled_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["opinion_posts.id"],
            name=op.f("fk_opinion_labels_post_id_opinion_posts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("post_id", name=op.f("pk_opinion_labels")),
    )
    op.create_table(
        "opinion_watch_phrases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phrase", sa.String(length=100), nullable=False),
        sa.Column("note", sa.String(length=300), nullable=True),
        sa.Column("created_at", fugong.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_opinion_watch_phrases_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opinion_watch_phrases")),
        sa.UniqueConstraint("phrase", name=op.f("uq_opinion_watch_phrases_phrase")),
    )
    op.create_table(
        "opinion_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("method", sa.String(length=4), nullable=False),
        sa.Column("statistic", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("detail", _JSON, nullable=False),
        sa.Column("status", sa.String(length=15), nullable=False),
        sa.Column("annotation", sa.Text(), nullable=True),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.Column("acknowledged_at", fugong.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", fugong.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('volume', 'rumour', 'negative_share')", name=op.f("ck_opinion_alerts_kind")
        ),
        sa.CheckConstraint(
            "status IN ('new', 'acknowledged')", name=op.f("ck_opinion_alerts_status")
        ),
        sa.CheckConstraint(
            "status = 'new' OR (acknowledged_by_id IS NOT NULL AND acknowledged_at IS NOT NULL)",
            name=op.f("ck_opinion_alerts_acknowledged_has_who"),
        ),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_id"],
            ["users.id"],
            name=op.f("fk_opinion_alerts_acknowledged_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opinion_alerts")),
        sa.UniqueConstraint("kind", "subject", "day", "method", name="uq_opinion_alerts_key"),
    )
    op.create_index("ix_opinion_alerts_day", "opinion_alerts", ["day"])
    op.create_table(
        "opinion_alert_posts",
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["opinion_alerts.id"],
            name=op.f("fk_opinion_alert_posts_alert_id_opinion_alerts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["opinion_posts.id"],
            name=op.f("fk_opinion_alert_posts_post_id_opinion_posts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alert_id", "post_id", name=op.f("pk_opinion_alert_posts")),
    )
    op.create_index(op.f("ix_opinion_alert_posts_post_id"), "opinion_alert_posts", ["post_id"])
    op.create_table(
        "opinion_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", fugong.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("length(week) = 8", name=op.f("ck_opinion_reports_week_format")),
        sa.CheckConstraint(
            "period_end > period_start", name=op.f("ck_opinion_reports_period_order")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_opinion_reports_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opinion_reports")),
        sa.UniqueConstraint("week", name=op.f("uq_opinion_reports_week")),
    )
    if op.get_bind().dialect.name == "sqlite":
        for statement in _SQLITE_FTS:
            op.execute(statement)
    else:
        op.execute(
            "CREATE INDEX ix_opinion_posts_tokens_fts ON opinion_posts "
            "USING gin (to_tsvector('simple', tokens))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("opinion_posts_fts_ai", "opinion_posts_fts_ad", "opinion_posts_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS opinion_posts_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_opinion_posts_tokens_fts")
    op.drop_table("opinion_reports")
    op.drop_index(op.f("ix_opinion_alert_posts_post_id"), table_name="opinion_alert_posts")
    op.drop_table("opinion_alert_posts")
    op.drop_index("ix_opinion_alerts_day", table_name="opinion_alerts")
    op.drop_table("opinion_alerts")
    op.drop_table("opinion_watch_phrases")
    op.drop_table("opinion_labels")
    op.drop_index("ix_opinion_models_one_active", table_name="opinion_models")
    op.drop_table("opinion_models")
    op.drop_index(op.f("ix_opinion_posts_dup_group_id"), table_name="opinion_posts")
    op.drop_index(op.f("ix_opinion_posts_fingerprint"), table_name="opinion_posts")
    op.drop_index("ix_opinion_posts_analysed_posted", table_name="opinion_posts")
    op.drop_index("ix_opinion_posts_posted_at", table_name="opinion_posts")
    op.drop_table("opinion_posts")
    op.drop_table("opinion_dup_groups")
    op.drop_table("opinion_sources")
