"""Opinion reads for CDC analysts: the dashboard, full-text post search, topics per day or week,
alerts with their posts, labelling queue, models, sources, watch-list and reports. Every read
checks the role first (a refusal is audited); the data is city-wide, so there is no further
scope. Posts carry no personal data (authors are keyed hashes), so reads are not audited.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Select, column, func, select, text
from sqlalchemy.orm import Session

from fugong.core.models import User
from fugong.errors import NotFound
from fugong.opinion.ingest import CST
from fugong.opinion.models import (
    OpinionAlert,
    OpinionAlertPost,
    OpinionDuplicateGroup,
    OpinionLabel,
    OpinionModel,
    OpinionPost,
    OpinionReport,
    OpinionSource,
    OpinionWatchPhrase,
)
from fugong.opinion.permissions import require_cdc
from fugong.opinion.services import counted_posts, day_start

PAGE_SIZE = 30


def today() -> date:
    return datetime.now(UTC).astimezone(CST).date()


def latest_day(session: Session) -> date | None:
    """The CST day of the newest post (the dashboard ends there: a demo of 2020 stays useful)."""
    last = session.scalar(select(func.max(OpinionPost.posted_at)))
    return last.astimezone(CST).date() if last else None


@dataclass
class Dashboard:
    start: date
    end: date
    daily: list[tuple[str, dict[str, int]]]
    keywords: list[tuple[str, float]]
    alerts: list[OpinionAlert]
    new_alerts: int
    posts: int
    counted: int
    model: str
    unanalysed: int


def dashboard(session: Session, *, actor: User | None, days: int = 14) -> Dashboard:
    """Daily volume and sentiment of the last ``days`` days up to the newest post, the last
    7 days' keywords, the latest alerts."""
    require_cdc(session, actor, "GET /opinion")
    from fugong.opinion.text import tfidf_keywords

    end = latest_day(session) or today()
    start = end - timedelta(days=days - 1)
    posts = counted_posts(session, start, end)
    daily = []
    for i in range(days):
        d = start + timedelta(days=i)
        daily.append((d.isoformat(), dict(Counter(p.label for p in posts if p.time.date() == d))))
    recent = [p.text for p in posts if p.time.date() > end - timedelta(days=7)][-3000:]
    keywords = (
        [
            (k.word, k.score)
            for k in tfidf_keywords(recent, background=[p.text for p in posts], top_k=20)
        ]
        if recent
        else []
    )
    active = session.scalar(select(OpinionModel.version).where(OpinionModel.active.is_(True)))
    return Dashboard(
        start=start,
        end=end,
        daily=daily,
        keywords=keywords,
        alerts=list(
            session.scalars(
                select(OpinionAlert)
                .order_by(OpinionAlert.day.desc(), OpinionAlert.id.desc())
                .limit(8)
            )
        ),
        new_alerts=session.scalar(
            select(func.count(OpinionAlert.id)).where(OpinionAlert.status == "new")
        )
        or 0,
        posts=session.scalar(select(func.count(OpinionPost.id))) or 0,
        counted=len(posts),
        model=active or "lexicon-v1",
        unanalysed=session.scalar(
            select(func.count(OpinionPost.id)).where(OpinionPost.analysed_at.is_(None))
        )
        or 0,
    )


@dataclass
class PostFilter:
    q: str = ""
    source_id: int | None = None
    sentiment: str | None = None
    start: date | None = None
    end: date | None = None
    duplicates: bool = False
    page: int = 1


@dataclass
class PostPage:
    posts: list[OpinionPost]
    total: int
    page: int
    pages: int
    terms: list[str] = field(default_factory=list)


def _fts_terms(q: str) -> list[str]:
    """The query segmented like the stored text, so ``口罩断货`` finds ``口罩 断货``."""
    from fugong.opinion.text import tokens

    return list(dict.fromkeys(tokens(q)))[:10]


def _match(session: Session, stmt: Select[Any], terms: list[str]) -> Select[Any]:
    if session.get_bind().dialect.name == "sqlite":
        # Each term quoted: FTS5 syntax characters in the input are data, not operators.
        expr = " ".join('"' + t.replace('"', '""') + '"' for t in terms)
        ids = text("SELECT rowid FROM opinion_posts_fts WHERE opinion_posts_fts MATCH :q")
        return stmt.where(
            OpinionPost.id.in_(ids.bindparams(q=expr).columns(column("rowid", Integer)))
        )
    tsq = func.plainto_tsquery("simple", " ".join(terms))
    return stmt.where(func.to_tsvector("simple", OpinionPost.tokens).op("@@")(tsq))


def search_posts(session: Session, *, actor: User | None, f: PostFilter) -> PostPage:
    """Full-text search (every term must occur) with filters; newest first. Without
    ``duplicates`` only one post per duplicate group is listed."""
    require_cdc(session, actor, "GET /opinion/posts")
    stmt = select(OpinionPost)
    terms = _fts_terms(f.q) if f.q.strip() else []
    if f.q.strip():
        if terms:
            stmt = _match(session, stmt, terms)
        else:
            stmt = stmt.where(OpinionPost.text_norm.contains(f.q.strip()[:50], autoescape=True))
    if f.source_id:
        stmt = stmt.where(OpinionPost.source_id == f.source_id)
    if f.sentiment:
        stmt = stmt.where(OpinionPost.sentiment == f.sentiment)
    if f.start:
        stmt = stmt.where(OpinionPost.posted_at >= day_start(f.start))
    if f.end:
        stmt = stmt.where(OpinionPost.posted_at < day_start(f.end + timedelta(days=1)))
    if not f.duplicates:
        stmt = stmt.where(OpinionPost.is_duplicate.is_(False))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, f.page), pages)
    rows = session.scalars(
        stmt.order_by(OpinionPost.posted_at.desc(), OpinionPost.id.desc())
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    return PostPage(list(rows), total, page, pages, terms)


def group_sizes(session: Session, posts: list[OpinionPost]) -> dict[int, int]:
    """post id → size of its duplicate group (for "N 条转发/相似")."""
    gids = {p.dup_group_id for p in posts if p.dup_group_id}
    if not gids:
        return {}
    sizes = dict(
        session.execute(
            select(OpinionDuplicateGroup.id, OpinionDuplicateGroup.size).where(
                OpinionDuplicateGroup.id.in_(gids)
            )
        ).all()
    )
    return {p.id: sizes[p.dup_group_id] for p in posts if p.dup_group_id in sizes}


def get_post(session: Session, *, actor: User | None, post_id: int) -> OpinionPost:
    require_cdc(session, actor, f"GET /opinion/posts/{post_id}")
    post = session.get(OpinionPost, post_id)
    if post is None:
        raise NotFound("帖子不存在")
    return post


def group_members(session: Session, post: OpinionPost) -> list[OpinionPost]:
    if post.dup_group_id is None:
        return [post]
    return list(
        session.scalars(
            select(OpinionPost)
            .where(OpinionPost.dup_group_id == post.dup_group_id)
            .order_by(OpinionPost.posted_at, OpinionPost.id)
            .limit(200)
        )
    )


def alerts_for_post(session: Session, post: OpinionPost) -> list[OpinionAlert]:
    """The alerts this post stands behind, newest first."""
    return list(
        session.scalars(
            select(OpinionAlert)
            .join(OpinionAlertPost, OpinionAlertPost.alert_id == OpinionAlert.id)
            .where(OpinionAlertPost.post_id == post.id)
            .order_by(OpinionAlert.day.desc(), OpinionAlert.id.desc())
        )
    )


def label_of(session: Session, post: OpinionPost) -> OpinionLabel | None:
    return session.get(OpinionLabel, post.id)


@dataclass
class TopicRow:
    label: str
    keywords: tuple[str, ...]
    size: int
    share: float
    examples: list[tuple[int, str]]


@dataclass
class PeriodTopics:
    keys: list[str]
    chosen: str
    keywords: list[tuple[str, float]]
    topics: list[TopicRow]


def topics(session: Session, *, actor: User | None, period: str, key: str | None) -> PeriodTopics:
    """Topics (clusters of counted posts named by their keywords) of one day or ISO week.

    Returns the selectable period keys (newest first, last 14 days or 8 weeks), the chosen key,
    its TF-IDF keywords (against the week before it) and its topics, largest first."""
    require_cdc(session, actor, "GET /opinion/topics")
    from fugong.opinion.report import week_bounds, week_of
    from fugong.opinion.text import cluster_topics, tfidf_keywords

    end = latest_day(session) or today()
    if period == "week":
        keys = [week_of(end - timedelta(weeks=i)) for i in range(8)]
    else:
        keys = [(end - timedelta(days=i)).isoformat() for i in range(14)]
    chosen = key if key in keys else keys[0]
    if period == "week":
        start, stop = week_bounds(chosen)
    else:
        start = stop = date.fromisoformat(chosen)
    posts = counted_posts(session, start, stop)[-2000:]
    rows: list[TopicRow] = []
    keywords: list[tuple[str, float]] = []
    if posts:
        texts = [p.text for p in posts]
        background = [p.text for p in counted_posts(session, start - timedelta(days=7), stop)]
        keywords = [
            (k.word, k.score) for k in tfidf_keywords(texts, background=background, top_k=15)
        ]
        for t in cluster_topics(texts, k=None, seed=0):
            members = sorted(t.members, key=lambda m: -len(texts[m]))[:3]
            rows.append(
                TopicRow(
                    label=t.label or "（无关键词）",
                    keywords=t.keywords,
                    size=len(t.members),
                    share=len(t.members) / len(texts),
                    examples=[(posts[m].id, texts[m]) for m in members],
                )
            )
    return PeriodTopics(keys, chosen, keywords, rows)


def list_alerts(
    session: Session, *, actor: User | None, status: str | None = None, kind: str | None = None
) -> list[OpinionAlert]:
    require_cdc(session, actor, "GET /opinion/alerts")
    stmt = select(OpinionAlert)
    if status:
        stmt = stmt.where(OpinionAlert.status == status)
    if kind:
        stmt = stmt.where(OpinionAlert.kind == kind)
    return list(
        session.scalars(stmt.order_by(OpinionAlert.day.desc(), OpinionAlert.id.desc()).limit(500))
    )


def get_alert(
    session: Session, *, actor: User | None, alert_id: int
) -> tuple[OpinionAlert, list[OpinionPost]]:
    """An alert and the posts behind it (in time order)."""
    require_cdc(session, actor, f"GET /opinion/alerts/{alert_id}")
    alert = session.get(OpinionAlert, alert_id)
    if alert is None:
        raise NotFound("预警不存在")
    posts = session.scalars(
        select(OpinionPost)
        .join(OpinionAlertPost, OpinionAlertPost.post_id == OpinionPost.id)
        .where(OpinionAlertPost.alert_id == alert_id)
        .order_by(OpinionPost.posted_at, OpinionPost.id)
        .limit(500)
    ).all()
    return alert, list(posts)


def next_to_label(
    session: Session, *, actor: User | None, after: int = 0
) -> tuple[OpinionPost | None, int]:
    """The next counted post without a label (ids above ``after``, so "skip" moves on), and
    how many labels exist."""
    require_cdc(session, actor, "GET /opinion/label")
    labelled = select(OpinionLabel.post_id)
    post = session.scalar(
        select(OpinionPost)
        .where(
            OpinionPost.id > after,
            OpinionPost.is_duplicate.is_(False),
            OpinionPost.id.not_in(labelled),
        )
        .order_by(OpinionPost.id)
        .limit(1)
    )
    count = session.scalar(select(func.count()).select_from(OpinionLabel)) or 0
    return post, count


def label_counts(session: Session) -> dict[str, int]:
    return dict(
        session.execute(select(OpinionLabel.label, func.count()).group_by(OpinionLabel.label)).all()
    )


def list_models(session: Session, *, actor: User | None) -> list[OpinionModel]:
    require_cdc(session, actor, "GET /opinion/models")
    return list(session.scalars(select(OpinionModel).order_by(OpinionModel.id.desc())))


def list_sources(session: Session, *, actor: User | None) -> list[tuple[OpinionSource, int]]:
    require_cdc(session, actor, "GET /opinion/sources")
    counts = dict(
        session.execute(
            select(OpinionPost.source_id, func.count()).group_by(OpinionPost.source_id)
        ).all()
    )
    sources = session.scalars(select(OpinionSource).order_by(OpinionSource.name)).all()
    return [(s, int(counts.get(s.id, 0))) for s in sources]


def watch_phrases(session: Session, *, actor: User | None) -> list[OpinionWatchPhrase]:
    require_cdc(session, actor, "GET /opinion/watch")
    return list(session.scalars(select(OpinionWatchPhrase).order_by(OpinionWatchPhrase.phrase)))


def list_reports(session: Session, *, actor: User | None) -> list[OpinionReport]:
    """Reports newest week first (without loading the PDF bytes)."""
    require_cdc(session, actor, "GET /opinion/reports")
    from sqlalchemy.orm import defer

    return list(
        session.scalars(
            select(OpinionReport)
            .options(defer(OpinionReport.pdf), defer(OpinionReport.html))
            .order_by(OpinionReport.week.desc())
        )
    )


def get_report(session: Session, *, actor: User | None, week: str) -> OpinionReport:
    require_cdc(session, actor, f"GET /opinion/reports/{week}")
    row = session.scalar(select(OpinionReport).where(OpinionReport.week == week))
    if row is None:
        raise NotFound("该周报告不存在")
    return row
