"""Opinion writes: ingest (files, feeds, push), analysis (duplicate groups, sentiment with the
active model), sentiment models (train, activate), labels, the rumour watch-list, alert detection
and handling, weekly reports. Each takes ``actor`` (``None`` = the host's CLI), checks the role,
writes an audit row in the caller's transaction, flushes and never commits.

The text pipeline (:mod:`fugong.opinion.text`: numpy, jieba) is imported inside the functions
that need it, so importing this module on a request path stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import ColumnElement, Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from fugong.core import audit
from fugong.core.models import User, UserRole
from fugong.core.notify import notify
from fugong.errors import Conflict, FieldError, NotFound, ValidationFailed
from fugong.opinion.ingest import CST, ItemError, RawItem
from fugong.opinion.models import (
    ALERT_KINDS,
    SENTIMENTS,
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
from fugong.opinion.permissions import CDC_ROLE, require_cdc

if TYPE_CHECKING:
    from fugong.opinion.text import DuplicateGroup, EarsConfig, Evaluation, Model
    from fugong.opinion.text.sentiment import Predictor

#: Below this many posts in the grouping window, grouping runs here: shipping the texts to a
#: worker process costs more than it saves.
_OFFLOAD_MIN = 4000
#: Days before the first new post that duplicate grouping looks back over. Reposts of a post
#: come within hours to a day or two; a longer window costs work on every batch.
DEDUP_WINDOW_DAYS = 2
_CHUNK = 500


def _now() -> datetime:
    return datetime.now(UTC)


def day_of(when: datetime) -> date:
    """The CST calendar day of a UTC time (counts and reports use Guangzhou's days)."""
    return when.astimezone(CST).date()


def day_start(day: date) -> datetime:
    """00:00 CST of ``day``, as a UTC time (for range filters on ``posted_at``)."""
    return datetime.combine(day, time(0), CST).astimezone(UTC)


# -- keys ------------------------------------------------------------------------------------


def load_author_key(path: Path) -> bytes:
    """The HMAC key for author handles, created (random, mode 0600) on first use."""
    if path.exists():
        key = path.read_bytes().strip()
        if len(key) < 32:
            raise ValidationFailed(
                [FieldError("author_key", f"{path} 中的密钥太短（至少 32 字节）")]
            )
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    path.write_bytes(key)
    path.chmod(0o600)
    return key


# -- sources and ingest ----------------------------------------------------------------------


def get_or_create_source(
    session: Session, *, name: str, kind: str, url: str | None = None
) -> OpinionSource:
    name = name.strip()[:100]
    if not name:
        raise ValidationFailed([FieldError("source", "来源名称不能为空")])
    src = session.scalar(select(OpinionSource).where(OpinionSource.name == name))
    if src is None:
        src = OpinionSource(name=name, kind=kind, url=url)
        session.add(src)
        session.flush()
    return src


def add_feed(session: Session, *, actor: User | None, name: str, url: str) -> OpinionSource:
    """Register an RSS/Atom feed an analyst wants fetched (http/https, reachable from here)."""
    require_cdc(session, actor, "add feed")
    url = url.strip()
    errors = []
    if not name.strip():
        errors.append(FieldError("name", "请填写来源名称"))
    if not url.lower().startswith(("http://", "https://")) or len(url) > 1000:
        errors.append(FieldError("url", "订阅地址应以 http:// 或 https:// 开头"))
    if errors:
        raise ValidationFailed(errors)
    if session.scalar(select(OpinionSource.id).where(OpinionSource.name == name.strip())):
        raise Conflict(f"来源“{name.strip()}”已存在")
    src = get_or_create_source(session, name=name, kind="feed", url=url)
    audit.record(
        session,
        actor=actor,
        action="opinion.feed_add",
        target_type="opinion_source",
        target_id=src.id,
        after={"name": src.name, "url": url},
    )
    return src


@dataclass(frozen=True)
class ItemOutcome:
    """What happened to one item: ``accepted`` (stored), ``duplicate`` (this source already
    sent this id, or the same text is already stored: it joins that item's group), ``error``."""

    id: str | None
    status: str
    post_id: int | None = None
    message: str | None = None
    where: str | None = None


@dataclass
class IngestReport:
    outcomes: list[ItemOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def errors(self) -> list[ItemOutcome]:
        return [o for o in self.outcomes if o.status == "error"]

    def summary(self) -> str:
        return (
            f"新增 {self.count('accepted')} 条，重复 {self.count('duplicate')} 条，"
            f"错误 {self.count('error')} 条"
        )


def _chunks(values: Sequence[Any], n: int = _CHUNK) -> list[Sequence[Any]]:
    return [values[i : i + n] for i in range(0, len(values), n)]


def ingest_items(
    session: Session,
    *,
    actor: User | None,
    source: OpinionSource,
    items: Sequence[RawItem],
    key: bytes,
    errors: Sequence[ItemError] = (),
) -> IngestReport:
    """Store new items (normalised, segmented, author hashed) and report every item's fate.

    An item naming its own ``source`` is filed under that source (same kind as ``source``).
    Re-sending an item already stored under the same source and id changes nothing.
    """
    require_cdc(session, actor, "ingest")
    from fugong.opinion.text import author_hash, compact_key, normalise, tokens
    from fugong.opinion.text.segment import BATCH_MAX, start_segmenting

    report = IngestReport(
        [
            ItemOutcome(e.item_id, "error", message=f"{e.field}: {e.message}", where=e.where)
            for e in errors
        ]
    )
    sources: dict[str, OpinionSource] = {source.name: source}
    resolved: list[tuple[RawItem, int]] = []
    for item in items:
        name = item.source or source.name
        if name not in sources:
            sources[name] = get_or_create_source(session, name=name, kind=source.kind)
        resolved.append((item, sources[name].id))

    existing: set[tuple[int, str]] = set()
    by_source: dict[int, list[str]] = defaultdict(list)
    for item, sid in resolved:
        by_source[sid].append(item.external_id)
    for sid, external_ids in by_source.items():
        for chunk in _chunks(sorted(set(external_ids))):
            existing.update(
                (sid, e)
                for e in session.scalars(
                    select(OpinionPost.external_id).where(
                        OpinionPost.source_id == sid, OpinionPost.external_id.in_(chunk)
                    )
                )
            )

    fresh: list[tuple[RawItem, int, str, int]] = []
    for item, sid in resolved:
        k = (sid, item.external_id)
        if k in existing:
            report.outcomes.append(ItemOutcome(item.external_id, "duplicate", message="已收录"))
            continue
        existing.add(k)
        fresh.append((item, sid, normalise(item.text), len(report.outcomes)))
        report.outcomes.append(ItemOutcome(item.external_id, "accepted"))

    rows: list[dict[str, Any]] = []
    row_outcome: list[int] = []
    prints: list[str] = []
    now = _now()
    for part in _chunks(fresh, BATCH_MAX):
        # Segmentation is most of ingest's work: a large batch is cut on every core at once
        # (the workers start now, while this process hashes), and the cuts stay cached for
        # analyse.
        segmented = start_segmenting(text_norm for _, _, text_norm, _ in part)
        hashes = []
        for item, _, text_norm, _ in part:
            fp = hashlib.sha256(compact_key(text_norm).encode("utf-8")).hexdigest()
            try:
                ahash = author_hash(item.author, key) if item.author else None
            except ValueError:
                ahash = None  # a handle that normalises to nothing identifies nobody
            hashes.append((fp, ahash))
        segmented()
        rows.extend(
            _post_row(item, sid, text_norm, tokens(text_norm), fp, ahash, now)
            for (item, sid, text_norm, _), (fp, ahash) in zip(part, hashes, strict=True)
        )
        prints.extend(fp for fp, _ in hashes)
        row_outcome.extend(outcome for _, _, _, outcome in part)

    if rows:
        known: set[str] = set()
        for fp_chunk in _chunks(sorted(set(prints))):
            known.update(
                session.scalars(
                    select(OpinionPost.fingerprint).where(OpinionPost.fingerprint.in_(fp_chunk))
                )
            )
        # Multi-row INSERTs (SQLAlchemy batches them by the thousand). RETURNING in parameter
        # order would make SQLite insert row by row, so new ids are matched by (source, id).
        table = cast(Table, OpinionPost.__table__)
        new_ids: dict[tuple[int, str], int] = {}
        for row_chunk in _chunks(rows, 5000):
            new_ids.update(
                ((sid, ext), pid)
                for pid, sid, ext in session.execute(
                    insert(table).returning(table.c.id, table.c.source_id, table.c.external_id),
                    list(row_chunk),
                )
            )
        ids = [new_ids[(r["source_id"], r["external_id"])] for r in rows]
        seen: set[str] = set()
        for idx, post_id, fp in zip(row_outcome, ids, prints, strict=True):
            old = report.outcomes[idx]
            dup = fp in known or fp in seen
            seen.add(fp)
            report.outcomes[idx] = ItemOutcome(
                old.id,
                "duplicate" if dup else "accepted",
                post_id=post_id,
                message="与已收录内容相同，已归入同一组" if dup else None,
            )
    audit.record(
        session,
        actor=actor,
        action="opinion.ingest",
        target_type="opinion_source",
        target_id=source.id,
        after={
            "accepted": report.count("accepted"),
            "duplicate": report.count("duplicate"),
            "errors": report.count("error"),
        },
    )
    session.flush()
    return report


def _post_row(
    item: RawItem,
    sid: int,
    text_norm: str,
    toks: list[str],
    fp: str,
    ahash: str | None,
    now: datetime,
) -> dict[str, Any]:
    return {
        "source_id": sid,
        "external_id": item.external_id,
        "url": item.url,
        "posted_at": item.posted_at,
        "text": item.text,
        "text_norm": text_norm,
        "tokens": " ".join(toks),
        "author_hash": ahash,
        "fingerprint": fp,
        "is_duplicate": False,
        "ingested_at": now,
    }


def fetch_feed(
    session: Session, *, actor: User | None, source: OpinionSource, key: bytes
) -> IngestReport:
    """Fetch one configured feed and ingest its entries; an unreachable or malformed feed is
    one error in the report, never an exception."""
    from fugong.opinion.ingest import fetch_feed as get
    from fugong.opinion.ingest import parse_feed

    require_cdc(session, actor, "fetch feed")
    if source.kind != "feed" or not source.url:
        raise ValidationFailed([FieldError("source", "该来源不是订阅源")])
    try:
        parsed = parse_feed(get(source.url), source=None)
    except ValueError as e:
        parsed_errors = [ItemError("订阅源", "url", str(e))]
        return ingest_items(
            session, actor=actor, source=source, items=[], key=key, errors=parsed_errors
        )
    source.last_fetched_at = _now()
    return ingest_items(
        session, actor=actor, source=source, items=parsed.items, key=key, errors=parsed.errors
    )


# -- analysis --------------------------------------------------------------------------------


@dataclass
class AnalyseReport:
    analysed: int = 0
    model: str = ""
    groups: int = 0
    duplicates: int = 0
    by_label: dict[str, int] = field(default_factory=dict)


def active_predictor(session: Session) -> Predictor:
    """The active trained model, or the lexicon baseline when none is active."""
    from fugong.opinion.text import LexiconSentiment

    row = session.scalar(select(OpinionModel).where(OpinionModel.active.is_(True)))
    if row is None:
        return LexiconSentiment()
    return model_from_row(row)


def model_from_row(row: OpinionModel) -> Model:
    """The stored classifier, ready to predict."""
    import tempfile

    from fugong.opinion.text import Model

    # Model.load reads a file; the JSON lives in the database, so go through a temporary file
    # rather than duplicating the loader's format checks.
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as fh:
        fh.write(row.body)
        fh.flush()
        return Model.load(fh.name)


def analyse(
    session: Session,
    *,
    actor: User | None,
    predictor: Predictor | None = None,
    since: datetime | None = None,
) -> AnalyseReport:
    """Score every post not yet analysed (or, with ``since``, every post from then on again)
    with ``predictor`` (default: the active model), and group the new posts' duplicates (see
    :func:`_regroup`)."""
    require_cdc(session, actor, "analyse")
    from fugong.opinion.text import group_duplicates, workers
    from fugong.opinion.text.segment import BATCH_MAX, segment_many

    pred = predictor or active_predictor(session)
    cond: ColumnElement[bool] = OpinionPost.analysed_at.is_(None)
    if since is not None:
        cond = cond | (OpinionPost.posted_at >= since)
    pending = session.execute(
        select(OpinionPost.id, OpinionPost.posted_at, OpinionPost.text_norm)
        .where(cond)
        .order_by(OpinionPost.posted_at, OpinionPost.id)
    ).all()
    out = AnalyseReport(model=pred.name)
    if not pending:
        return out
    # Duplicate grouping and sentiment are independent: with a spare core, the grouping runs
    # in a worker process while this one scores the posts.
    window = _dedup_window(session, pending)
    texts = [w.text_norm for w in window]
    if len(texts) >= _OFFLOAD_MIN:
        grouping = workers.offload_grouping(texts)
    else:
        grouping = workers.Pending(lambda: [g for g in group_duplicates(texts) if g.size > 1])
    now = _now()
    scores = []
    for part in _chunks([r.text_norm for r in pending], BATCH_MAX):
        segment_many(part)  # usually cached by ingest already; else on every core
        scores.extend(pred.predict(part))
    counts: dict[str, int] = defaultdict(int)
    updates = []
    for r, s in zip(pending, scores, strict=True):
        counts[s.label] += 1
        updates.append(
            {
                "id": r.id,
                "sentiment": s.label,
                "sentiment_score": round(float(s.score), 6),
                "sentiment_model": s.model[:80],
                "analysed_at": now,
            }
        )
    _update_posts(session, updates)
    out.analysed = len(pending)
    out.by_label = dict(counts)

    groups, duplicates = _regroup(session, window, grouping.result())
    out.groups, out.duplicates = groups, duplicates
    audit.record(
        session,
        actor=actor,
        action="opinion.analyse",
        target_type="opinion_post",
        after={
            "analysed": out.analysed,
            "model": out.model,
            "duplicate_groups": out.groups,
            "by_label": out.by_label,
        },
    )
    session.flush()
    return out


def _update_posts(session: Session, changes: Sequence[dict[str, Any]]) -> None:
    """Set columns of many posts by id; every dict has ``id`` and the same other keys.

    One executemany of a plain UPDATE per 5,000 rows: the ORM's bulk update by primary key
    does the same SQL but builds every row's parameters in Python first, twice the cost.
    Loaded ``OpinionPost`` objects are not refreshed (callers here hold none).
    """
    if not changes:
        return
    table = cast(Table, OpinionPost.__table__)
    names = [k for k in changes[0] if k != "id"]
    stmt = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values({k: bindparam("b_" + k) for k in names})
    )
    for chunk in _chunks(changes, 5000):
        session.execute(stmt, [{"b_" + k: v for k, v in c.items()} for c in chunk])


def _dedup_window(session: Session, pending: Sequence[Any]) -> Sequence[Any]:
    """The posts that duplicate grouping of ``pending`` looks at, in time order: every post of
    the ``DEDUP_WINDOW_DAYS`` before the first pending one up to the last, bar those already
    marked as duplicates (see :func:`_regroup`)."""
    lo = min(r.posted_at for r in pending) - timedelta(days=DEDUP_WINDOW_DAYS)
    hi = max(r.posted_at for r in pending)
    return session.execute(
        select(
            OpinionPost.id,
            OpinionPost.text_norm,
            OpinionPost.dup_group_id,
            OpinionPost.is_duplicate,
        )
        .where(
            OpinionPost.posted_at >= lo,
            OpinionPost.posted_at <= hi,
            OpinionPost.is_duplicate.is_(False),
        )
        .order_by(OpinionPost.posted_at, OpinionPost.id)
    ).all()


def _regroup(
    session: Session, window: Sequence[Any], groups: Sequence[DuplicateGroup]
) -> tuple[int, int]:
    """Store ``groups``, the multi-post duplicate groups of ``window`` (:func:`_dedup_window`):
    the pending posts grouped with each other and with the distinct items (group
    representatives and singletons) of the ``DEDUP_WINDOW_DAYS`` before them.

    Old duplicates are represented by their representative, so the work grows with the number
    of distinct items, not with reposts, and earlier groups are never re-split. A new post that
    matches an old item joins that item's group; when one new post bridges two old items, the
    later item (with only its own row) moves into the earlier one's group. Returns the number
    of groups touched and of posts newly marked as duplicates.
    """
    # A group whose representative already has one keeps it; others get a key row.
    keys = [g.group_id[:24] for g in groups]
    known: dict[str, int] = {}
    for chunk in _chunks(
        [
            k
            for g, k in zip(groups, keys, strict=True)
            if window[g.representative].dup_group_id is None
        ]
    ):
        known.update(
            (k, i)
            for k, i in session.execute(
                select(OpinionDuplicateGroup.key, OpinionDuplicateGroup.id).where(
                    OpinionDuplicateGroup.key.in_(chunk)
                )
            ).all()
        )
    missing = sorted(
        {
            k
            for g, k in zip(groups, keys, strict=True)
            if window[g.representative].dup_group_id is None and k not in known
        }
    )
    for chunk in _chunks(missing):
        known.update(
            (k, i)
            for k, i in session.execute(
                insert(OpinionDuplicateGroup).returning(
                    OpinionDuplicateGroup.key, OpinionDuplicateGroup.id
                ),
                [{"key": k, "size": 1} for k in chunk],
            ).all()
        )
    changes = []
    touched: set[int] = set()
    newly = 0
    for g, k in zip(groups, keys, strict=True):
        rep = window[g.representative]
        gid = rep.dup_group_id if rep.dup_group_id is not None else known[k]
        touched.add(gid)
        for m in g.members:
            w = window[m]
            want = (gid, m != g.representative)
            if (w.dup_group_id, w.is_duplicate) != want:
                if w.dup_group_id is not None:
                    touched.add(w.dup_group_id)
                newly += int(want[1] and not w.is_duplicate)
                changes.append({"id": w.id, "dup_group_id": want[0], "is_duplicate": want[1]})
    _update_posts(session, changes)
    session.flush()
    if touched:
        sizes = dict(
            session.execute(
                select(OpinionPost.dup_group_id, func.count())
                .where(OpinionPost.dup_group_id.in_(touched))
                .group_by(OpinionPost.dup_group_id)
            ).all()
        )
        session.execute(
            update(OpinionDuplicateGroup),
            [{"id": gid, "size": max(1, sizes.get(gid, 1))} for gid in sorted(touched)],
        )
    return len(touched), newly


# -- models, labels --------------------------------------------------------------------------


def _metrics(ev: Evaluation) -> dict[str, Any]:
    return {
        "model": ev.model,
        "n": ev.n,
        "accuracy": round(ev.accuracy, 4),
        "macro_f1": round(ev.macro_f1, 4),
        "f1": {k: round(v, 4) for k, v in ev.f1.items()},
    }


def train_model(
    session: Session,
    *,
    actor: User | None,
    texts: Sequence[str],
    labels: Sequence[str],
    activate: bool = False,
    test_fraction: float = 0.3,
    seed: int = 0,
    algorithm: Literal["nb", "logreg"] = "logreg",
) -> OpinionModel:
    """Train a classifier; store it with its held-out scores next to the lexicon baseline's.

    The scores come from a model trained on a stratified ``1 - test_fraction`` split; the stored
    model is then trained on every labelled post (the held-out posts are too valuable to drop).
    Training the same data again returns the stored model (the version is a content digest).
    """
    require_cdc(session, actor, "train model")
    from fugong.opinion.text import LABELS, LexiconSentiment, evaluate, split_train_test, train

    errors = []
    if len(texts) != len(labels):
        errors.append(FieldError("labels", "正文与标签数量不一致"))
    missing = [lab for lab in LABELS if lab not in set(labels)]
    if missing:
        names = "、".join(SENTIMENTS[m] for m in missing)
        errors.append(FieldError("labels", f"训练集缺少“{names}”类的样本，三类都需要"))
    per_class = min((list(labels).count(lab) for lab in LABELS), default=0)
    if not missing and per_class < 4:
        errors.append(FieldError("labels", "每类至少需要 4 条标注才能留出测试集"))
    if errors:
        raise ValidationFailed(errors)
    tr_x, tr_y, te_x, te_y = split_train_test(texts, labels, test_fraction=test_fraction, seed=seed)
    held = train(tr_x, tr_y, algorithm=algorithm)
    ev_model = evaluate(held, te_x, te_y)
    ev_lex = evaluate(LexiconSentiment(), te_x, te_y)
    model = train(list(texts), list(labels), algorithm=algorithm)
    row = session.scalar(select(OpinionModel).where(OpinionModel.version == model.version))
    if row is None:
        row = OpinionModel(
            version=model.version,
            algorithm=model.algorithm,
            n_train=model.n_train,
            metrics={
                "held_out": _metrics(ev_model),
                "lexicon": _metrics(ev_lex),
                "test_fraction": test_fraction,
            },
            body=json.dumps(model.to_dict(), ensure_ascii=False),
            active=False,
            created_by_id=actor.id if actor else None,
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="opinion.model_train",
            target_type="opinion_model",
            target_id=row.id,
            after={"version": row.version, "metrics": row.metrics},
        )
    if activate:
        activate_model(session, actor=actor, model_id=row.id)
    return row


def activate_model(session: Session, *, actor: User | None, model_id: int) -> OpinionModel:
    """Make ``model_id`` the model that scores new posts (the others are deactivated)."""
    require_cdc(session, actor, "activate model")
    row = session.get(OpinionModel, model_id)
    if row is None:
        raise NotFound("模型不存在")
    previous = session.scalar(select(OpinionModel).where(OpinionModel.active.is_(True)))
    if previous is not None and previous.id != row.id:
        previous.active = False
        session.flush()  # the one-active index must see the old flag cleared first
    row.active = True
    audit.record(
        session,
        actor=actor,
        action="opinion.model_activate",
        target_type="opinion_model",
        target_id=row.id,
        before={"active": previous.version if previous else None},
        after={"active": row.version},
    )
    session.flush()
    return row


def deactivate_models(session: Session, *, actor: User | None) -> None:
    """Go back to the lexicon baseline."""
    require_cdc(session, actor, "deactivate model")
    for row in session.scalars(select(OpinionModel).where(OpinionModel.active.is_(True))):
        row.active = False
        audit.record(
            session,
            actor=actor,
            action="opinion.model_deactivate",
            target_type="opinion_model",
            target_id=row.id,
        )
    session.flush()


def evaluate_model(
    session: Session,
    *,
    actor: User | None,
    texts: Sequence[str],
    labels: Sequence[str],
    model_id: int | None = None,
) -> tuple[Evaluation, Evaluation]:
    """Scores of a stored model (default: the active one, else the lexicon) and of the lexicon
    baseline on a labelled set."""
    require_cdc(session, actor, "evaluate model")
    from fugong.opinion.text import LexiconSentiment, evaluate

    if model_id is not None:
        row = session.get(OpinionModel, model_id)
        if row is None:
            raise NotFound("模型不存在")
        pred: Any = model_from_row(row)
    else:
        pred = active_predictor(session)
    return evaluate(pred, texts, labels), evaluate(LexiconSentiment(), texts, labels)


def label_post(session: Session, *, actor: User | None, post_id: int, label: str) -> OpinionLabel:
    """Record (or change) an analyst's sentiment label of a post."""
    require_cdc(session, actor, "label")
    if label not in SENTIMENTS:
        raise ValidationFailed([FieldError("label", "标签应为 负面 / 中性 / 正面 之一")])
    post = session.get(OpinionPost, post_id)
    if post is None:
        raise NotFound("帖子不存在")
    row = session.get(OpinionLabel, post_id)
    before = {"label": row.label} if row else None
    if row is None:
        row = OpinionLabel(post_id=post_id, label=label)
        session.add(row)
    row.label = label
    row.labelled_by_id = actor.id if actor else None
    row.labelled_at = _now()
    audit.record(
        session,
        actor=actor,
        action="opinion.label",
        target_type="opinion_post",
        target_id=post_id,
        before=before,
        after={"label": label},
    )
    session.flush()
    return row


def labelled_set(session: Session) -> tuple[list[str], list[str]]:
    rows = session.execute(
        select(OpinionPost.text_norm, OpinionLabel.label)
        .join(OpinionLabel, OpinionLabel.post_id == OpinionPost.id)
        .order_by(OpinionLabel.post_id)
    ).all()
    return [r[0] for r in rows], [r[1] for r in rows]


def train_from_labels(
    session: Session, *, actor: User | None, activate: bool = False
) -> OpinionModel:
    texts, labels = labelled_set(session)
    return train_model(session, actor=actor, texts=texts, labels=labels, activate=activate)


# -- watch-list ------------------------------------------------------------------------------


def add_watch_phrase(
    session: Session, *, actor: User | None, phrase: str, note: str | None = None
) -> OpinionWatchPhrase:
    require_cdc(session, actor, "watch add")
    from fugong.opinion.text import RumourWatchlist

    phrase = phrase.strip()
    if not phrase or len(phrase) > 100:
        raise ValidationFailed([FieldError("phrase", "请填写 1–100 个字符的谣言短语")])
    try:
        RumourWatchlist([phrase])
    except ValueError:
        raise ValidationFailed([FieldError("phrase", "短语去掉标点后为空")]) from None
    if session.scalar(select(OpinionWatchPhrase.id).where(OpinionWatchPhrase.phrase == phrase)):
        raise Conflict(f"短语“{phrase}”已在监测列表中")
    row = OpinionWatchPhrase(
        phrase=phrase,
        note=(note or "").strip()[:300] or None,
        created_by_id=actor.id if actor else None,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="opinion.watch_add",
        target_type="opinion_watch_phrase",
        target_id=row.id,
        after={"phrase": phrase},
    )
    return row


def remove_watch_phrase(session: Session, *, actor: User | None, phrase_id: int) -> None:
    require_cdc(session, actor, "watch remove")
    row = session.get(OpinionWatchPhrase, phrase_id)
    if row is None:
        raise NotFound("短语不存在")
    audit.record(
        session,
        actor=actor,
        action="opinion.watch_remove",
        target_type="opinion_watch_phrase",
        target_id=row.id,
        before={"phrase": row.phrase},
    )
    session.delete(row)
    session.flush()


# -- alerts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertConfig:
    ears: EarsConfig
    negative_z: float = 2.58
    topics: int = 3


def parse_ears(spec: str) -> EarsConfig:
    """``C1=3,C2=3,C3=2,min_count=3,min_sd=1`` → :class:`EarsConfig` (unnamed keep defaults)."""
    from fugong.opinion.text import EarsConfig

    names = {
        "c1": "c1_threshold",
        "c2": "c2_threshold",
        "c3": "c3_threshold",
        "min_count": "min_count",
        "min_sd": "min_sd",
        "baseline_days": "baseline_days",
    }
    values: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        k, _, v = part.partition("=")
        name = names.get(k.strip().lower())
        try:
            if name is None:
                raise ValueError
            values[name] = int(v) if name in ("min_count", "baseline_days") else float(v)
        except ValueError:
            raise ValidationFailed(
                [FieldError("opinion_ears", f"无法识别 {part!r}（如 C1=3,C2=3,C3=2,min_count=3）")]
            ) from None
    return EarsConfig(**values)


def _cdc_users(session: Session) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == CDC_ROLE, User.is_active.is_(True))
            .order_by(User.id)
        )
    )


@dataclass
class _Counted:
    id: int
    time: datetime
    text: str
    label: str


def counted_posts(session: Session, start: date, end: date) -> list[_Counted]:
    """Analysed posts of CST days ``start..end`` that count (one per duplicate group)."""
    rows = session.execute(
        select(OpinionPost.id, OpinionPost.posted_at, OpinionPost.text_norm, OpinionPost.sentiment)
        .where(
            OpinionPost.posted_at >= day_start(start),
            OpinionPost.posted_at < day_start(end + timedelta(days=1)),
            OpinionPost.is_duplicate.is_(False),
            OpinionPost.analysed_at.is_not(None),
        )
        .order_by(OpinionPost.posted_at, OpinionPost.id)
    ).all()
    return [_Counted(r[0], r[1].astimezone(CST), r[2], r[3] or "neutral") for r in rows]


def detect_alerts(
    session: Session,
    *,
    actor: User | None,
    start: date,
    end: date,
    config: AlertConfig,
) -> list[OpinionAlert]:
    """Run the three rules for the CST days ``start..end``; returns the alerts raised for the
    first time (re-running is idempotent: a known alert gets its posts topped up, nothing else).

    Volume (EARS C1/C2/C3 against the baseline before each day) for all posts, each
    epidemic-dictionary keyword and the range's leading topics; the rumour watch-list
    per day; the negative share against the previous 7 days. New alerts notify every CDC
    analyst in the app and through the outbound channel (after commit).
    """
    require_cdc(session, actor, "detect alerts")
    from fugong.opinion.text import (
        Post,
        RumourWatchlist,
        cluster_topics,
        domain_terms,
        negative_share_alerts,
        volume_alerts,
    )

    if end < start:
        raise ValidationFailed([FieldError("end", "结束日期早于开始日期")])
    lookback = config.ears.baseline_days + config.ears.lag_c2 + 3
    posts = counted_posts(session, start - timedelta(days=lookback), end)
    if not posts:
        return []
    alert_posts = [Post(p.id, p.time.date(), p.text) for p in posts]
    in_range = [p for p in posts if start <= p.time.date() <= end]
    subjects: dict[str, Iterable[str]] = {t: [t] for t in domain_terms()}
    texts = [p.text for p in in_range]
    if texts:
        for topic in cluster_topics(texts[-3000:], k=None, seed=0)[: config.topics]:
            if len(topic.keywords) >= 2:
                subjects.setdefault(f"话题：{topic.label}"[:100], list(topic.keywords[:2]))
    volume = volume_alerts(alert_posts, config=config.ears)
    volume += volume_alerts(alert_posts, subjects=subjects, config=config.ears)
    # C1, C2 and C3 often fire together on one spike: one alert per subject and day, named
    # after the first method that fired, with every method's statistic in the detail.
    merged: dict[tuple[str, Any], Any] = {}
    stats: dict[tuple[str, Any], dict[str, float]] = defaultdict(dict)
    for a in volume:
        k = (a.subject, a.day)
        stats[k][str(a.detail["method"])] = round(a.statistic, 3)
        merged.setdefault(k, a)
    raw = [replace(a, detail={**a.detail, "methods": stats[k]}) for k, a in merged.items()]
    raw += negative_share_alerts(
        alert_posts, [p.label for p in posts], z_threshold=config.negative_z
    )
    phrases = list(session.scalars(select(OpinionWatchPhrase.phrase)))
    if phrases:
        watch = RumourWatchlist(phrases)
        by_day: dict[date, list[Any]] = defaultdict(list)
        for counted, ap in zip(posts, alert_posts, strict=True):
            by_day[counted.time.date()].append(ap)
        for d in sorted(by_day):
            if start <= d <= end:
                raw += watch.scan(by_day[d])
    created: list[OpinionAlert] = []
    for a in raw:
        if a.day is None or not start <= a.day <= end:
            continue
        method = str(a.detail.get("method", ""))
        subject = a.subject[:100]
        row = session.scalar(
            select(OpinionAlert).where(
                OpinionAlert.kind == a.kind,
                OpinionAlert.subject == subject,
                OpinionAlert.day == a.day,
                OpinionAlert.method == method,
            )
        )
        if row is None:
            row = OpinionAlert(
                kind=a.kind,
                subject=subject,
                day=a.day,
                method=method,
                statistic=float(a.statistic),
                threshold=float(a.threshold),
                detail={k: v for k, v in a.detail.items() if k != "method"},
                status="new",
            )
            session.add(row)
            session.flush()
            created.append(row)
            have: set[int] = set()
        else:
            have = set(
                session.scalars(
                    select(OpinionAlertPost.post_id).where(OpinionAlertPost.alert_id == row.id)
                )
            )
        links = [
            {"alert_id": row.id, "post_id": pid}
            for pid in dict.fromkeys(cast(tuple[int, ...], a.post_ids))
            if pid not in have
        ]
        if links:
            session.execute(insert(OpinionAlertPost), links)
    for row in created:
        audit.record(
            session,
            actor=actor,
            action="opinion.alert",
            target_type="opinion_alert",
            target_id=row.id,
            after={"kind": row.kind, "subject": row.subject, "day": row.day, "method": row.method},
        )
    if created:
        analysts = _cdc_users(session)
        for row in created:
            text = f"舆情预警：{ALERT_KINDS[row.kind]}「{row.subject}」{row.day.isoformat()}"
            if row.method:
                text += f"（EARS {row.method}）"
            for u in analysts:
                notify(session, u, text, f"/opinion/alerts/{row.id}")
    session.flush()
    return created


def _alert(session: Session, alert_id: int) -> OpinionAlert:
    row = session.get(OpinionAlert, alert_id)
    if row is None:
        raise NotFound("预警不存在")
    return row


def acknowledge_alert(
    session: Session, *, actor: User, alert_id: int, annotation: str | None = None
) -> OpinionAlert:
    """Mark an alert handled by ``actor`` now, with an optional note of what was done."""
    require_cdc(session, actor, "acknowledge alert")
    row = _alert(session, alert_id)
    if row.status == "acknowledged":
        raise Conflict("该预警已处理")
    note = (annotation or "").strip()
    if len(note) > 2000:
        raise ValidationFailed([FieldError("annotation", "备注不超过 2000 个字符")])
    before = audit.snapshot(row, ["status", "annotation"])
    row.status = "acknowledged"
    row.acknowledged_by_id = actor.id
    row.acknowledged_at = _now()
    if note:
        row.annotation = note
    audit.record(
        session,
        actor=actor,
        action="opinion.alert_ack",
        target_type="opinion_alert",
        target_id=row.id,
        before=before,
        after=audit.snapshot(row, ["status", "annotation"]),
    )
    session.flush()
    return row


def annotate_alert(
    session: Session, *, actor: User, alert_id: int, annotation: str
) -> OpinionAlert:
    require_cdc(session, actor, "annotate alert")
    row = _alert(session, alert_id)
    note = annotation.strip()
    if not note or len(note) > 2000:
        raise ValidationFailed([FieldError("annotation", "请填写 1–2000 个字符的备注")])
    before = {"annotation": row.annotation}
    row.annotation = note
    audit.record(
        session,
        actor=actor,
        action="opinion.alert_annotate",
        target_type="opinion_alert",
        target_id=row.id,
        before=before,
        after={"annotation": note},
    )
    session.flush()
    return row


# -- reports ---------------------------------------------------------------------------------


def build_report(session: Session, *, actor: User | None, week: str) -> OpinionReport:
    """Build (or rebuild) the weekly report of ISO week ``week`` (``2020-W10``): HTML and PDF."""
    require_cdc(session, actor, "build report")
    from fugong.opinion import report

    try:
        start, end = report.week_bounds(week)
    except ValueError as e:
        raise ValidationFailed([FieldError("week", str(e))]) from None
    data = report.gather(session, week)
    html = report.render_html(data)
    pdf = report.render_pdf(html)
    row = session.scalar(select(OpinionReport).where(OpinionReport.week == data.week))
    if row is None:
        row = OpinionReport(week=data.week, period_start=start, period_end=end)
        session.add(row)
    row.summary = data.summary
    row.html = html
    row.pdf = pdf
    row.created_at = _now()
    row.created_by_id = actor.id if actor else None
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="opinion.report",
        target_type="opinion_report",
        target_id=row.id,
        after={"week": row.week, "pdf_bytes": len(pdf)},
    )
    return row
