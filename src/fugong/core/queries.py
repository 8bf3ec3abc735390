"""Reads of the core domain. Every enterprise read goes through ``enterprise_scope``: what the
actor may not see does not exist for them (404, never 403, so existence does not leak)."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Engine,
    Row,
    Select,
    and_,
    column,
    event,
    func,
    or_,
    select,
    table,
)
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction

from fugong.core import audit
from fugong.core import uscc as uscc_rules
from fugong.core.models import AuditLog, Contact, Enterprise, Organisation, User, UserRole
from fugong.core.permissions import AUDIT_READERS, REGISTRY_READERS, enterprise_scope, require_role
from fugong.core.reference import INDUSTRIES, RESUMPTION_STATUSES, label
from fugong.core.schemas import EnterpriseRead
from fugong.errors import NotFound

MAX_PER_PAGE = 200


@dataclass
class EnterpriseFilter:
    q: str | None = None
    district: str | None = None
    street: str | None = None
    industry: str | None = None
    size: str | None = None
    key_category: str | None = None  # a code, or "any" / "none"
    resumption_status: str | None = None
    manager_id: int | None = None

    def active(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "")}


T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    per_page: int
    pages: int = field(init=False)

    def __post_init__(self) -> None:
        self.pages = max(1, -(-self.total // self.per_page))


#: The trigram index of organisation names that migration 0008 keeps on SQLite (by triggers).
NAME_FTS = table("organisations_name_fts", column("rowid"), column("organisations_name_fts"))
_CODE_CHARS = frozenset(uscc_rules.CHARSET)


def _name_search(term: str, dialect: str) -> ColumnElement[bool]:
    """Organisations whose name contains ``term`` or whose code starts with it, exactly as
    ``LIKE`` decides (case-insensitive for ASCII letters on SQLite, case-sensitive on
    PostgreSQL), made cheap where it can be:

    * on SQLite a term of 3 or more characters first asks the trigram index, which finds a
      superset of the names (it folds case more widely than LIKE); LIKE then decides, so the
      answer is the same, in 1 ms instead of 12-16 ms over 20,000 names;
    * a term that cannot begin a code (codes use the GB 32100 alphabet, checked on every
      write) skips the code branch, whose unindexable ``OR`` forced a scan of every row;
    * on PostgreSQL a pg_trgm index (migration 0008, where the extension is available)
      serves the same ``LIKE`` without any change here."""
    name: ColumnElement[bool] = Organisation.name.contains(term, autoescape=True)
    if dialect == "sqlite" and len(term) >= 3:
        phrase = '"' + term.replace('"', '""') + '"'
        candidates = select(NAME_FTS.c.rowid).where(NAME_FTS.c.organisations_name_fts.match(phrase))
        name = and_(Organisation.id.in_(candidates), name)
    code = term.upper()
    if not set(code) <= _CODE_CHARS:
        return name
    return or_(name, Organisation.uscc.startswith(code, autoescape=True))


def _conditions(
    actor: User, flt: EnterpriseFilter, dialect: str
) -> tuple[list[ColumnElement[bool]], bool]:
    """The WHERE terms of a filtered, scoped list, and whether they need the organisations
    table (only a name search does: everything else lives on ``enterprises``)."""
    terms: list[ColumnElement[bool]] = [enterprise_scope(actor)]
    needs_org = False
    if flt.q:
        term = flt.q.strip()
        needs_org = True
        # A full code is an exact lookup (the unique index); anything else searches names.
        if len(term) == 18 and term.isalnum():
            terms.append(Organisation.uscc == term.upper())
        else:
            terms.append(_name_search(term, dialect))
    if flt.district:
        terms.append(Enterprise.district == flt.district)
    if flt.street:
        terms.append(Enterprise.street == flt.street)
    if flt.industry:
        terms.append(Enterprise.industry == flt.industry)
    if flt.size:
        terms.append(Enterprise.size == flt.size)
    if flt.key_category == "any":
        terms.append(Enterprise.key_category.is_not(None))
    elif flt.key_category == "none":
        terms.append(Enterprise.key_category.is_(None))
    elif flt.key_category:
        terms.append(Enterprise.key_category == flt.key_category)
    if flt.resumption_status:
        terms.append(Enterprise.resumption_status == flt.resumption_status)
    if flt.manager_id:
        terms.append(Enterprise.manager_id == flt.manager_id)
    return terms, needs_org


# The list reads plain columns, not ORM objects: building 100 mapped instances per page cost
# more than the query itself (bench/web.py).
_LIST_COLUMNS = (
    Organisation.id, Organisation.uscc, Organisation.name, Enterprise.district,
    Enterprise.street, Organisation.address, Enterprise.industry, Enterprise.size,
    Enterprise.key_category, Enterprise.headcount, Enterprise.insured_employees,
    Enterprise.resumption_status, Enterprise.resumption_date, Enterprise.staff_back_pct,
    User.username.label("manager"),
)  # fmt: skip
_READ_FIELDS = tuple(EnterpriseRead.model_fields)


def _filtered(actor: User, flt: EnterpriseFilter, dialect: str) -> Select[*tuple[Any, ...]]:
    terms, _ = _conditions(actor, flt, dialect)
    # Newest registrations first: the primary key orders it, so a page is an index walk.
    return (
        select(*_LIST_COLUMNS)
        .join(Enterprise, Enterprise.id == Organisation.id)
        .outerjoin(User, User.id == Enterprise.manager_id)
        .where(*terms)
        .order_by(Enterprise.id.desc())
    )


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _row_read(row: Any) -> EnterpriseRead:
    return EnterpriseRead.model_construct(**dict(zip(_READ_FIELDS, row, strict=True)))


def count_enterprises(session: Session, *, actor: User, flt: EnterpriseFilter) -> int:
    terms, needs_org = _conditions(actor, flt, _dialect(session))
    stmt = select(func.count(Enterprise.id)).where(*terms)
    if needs_org:
        stmt = stmt.join(Organisation, Organisation.id == Enterprise.id)
    return session.scalar(stmt) or 0


def _read(org: Organisation, ent: Enterprise, managers: dict[int, str]) -> EnterpriseRead:
    return EnterpriseRead(
        id=org.id,
        uscc=org.uscc,
        name=org.name,
        district=org.district,
        street=ent.street,
        address=org.address,
        industry=ent.industry,
        size=ent.size,
        key_category=ent.key_category,
        headcount=ent.headcount,
        insured_employees=ent.insured_employees,
        resumption_status=ent.resumption_status,
        resumption_date=ent.resumption_date,
        staff_back_pct=ent.staff_back_pct,
        manager=managers.get(ent.manager_id) if ent.manager_id else None,
    )


def _manager_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.username).where(User.id.in_(ids)))
    return {row[0]: row[1] for row in rows}


def list_enterprises(
    session: Session, *, actor: User, flt: EnterpriseFilter, page: int = 1, per_page: int = 50
) -> Page[EnterpriseRead]:
    rows = list_enterprise_rows(session, actor=actor, flt=flt, page=page, per_page=per_page)
    return Page(
        items=[_row_read(r) for r in rows.items],
        total=rows.total,
        page=rows.page,
        per_page=rows.per_page,
    )


def list_enterprise_rows(
    session: Session, *, actor: User, flt: EnterpriseFilter, page: int = 1, per_page: int = 50
) -> Page[Row[Any]]:
    """The page as plain rows with the fields of ``EnterpriseRead`` as attributes, for a page
    that only prints them: building the models cost 6% of the list page (bench/web.py)."""
    require_role(actor, *REGISTRY_READERS)
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    total = count_enterprises(session, actor=actor, flt=flt)
    rows = session.execute(
        _filtered(actor, flt, _dialect(session)).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return Page(items=list(rows), total=total, page=page, per_page=per_page)


def iter_enterprises(
    session: Session, *, actor: User, flt: EnterpriseFilter, batch: int = 1000
) -> Iterator[EnterpriseRead]:
    """Every enterprise matching the filter, for exports, in batches of ``batch``."""
    require_role(actor, *REGISTRY_READERS)
    stmt = _filtered(actor, flt, _dialect(session))
    offset = 0
    while True:
        rows = session.execute(stmt.limit(batch).offset(offset)).all()
        if not rows:
            return
        yield from (_row_read(r) for r in rows)
        offset += batch


def get_enterprise(session: Session, *, actor: User, enterprise_id: int) -> Organisation:
    require_role(actor, *REGISTRY_READERS)
    org = session.scalar(
        select(Organisation)
        .join(Enterprise, Enterprise.id == Organisation.id)
        .where(Organisation.id == enterprise_id, enterprise_scope(actor))
    )
    if org is None:
        raise NotFound("企业不存在")
    return org


def enterprise_read(session: Session, org: Organisation) -> EnterpriseRead:
    assert org.enterprise is not None
    ent = org.enterprise
    return _read(org, ent, _manager_names(session, {ent.manager_id} if ent.manager_id else set()))


def read_contacts(session: Session, *, actor: User, org: Organisation) -> Sequence[Contact]:
    """Contacts are personal data: reading them leaves an audit row naming the reader."""
    contacts = session.scalars(
        select(Contact).where(Contact.organisation_id == org.id).order_by(Contact.id)
    ).all()
    if contacts:
        audit.record(
            session,
            actor=actor,
            action="personal.read",
            target_type="contacts",
            target_id=org.id,
            detail=f"{len(contacts)} contact(s) of {org.name}",
        )
    return contacts


@dataclass
class Dashboard:
    total: int
    by_status: list[tuple[str, str, int]]  # code, label, count
    by_street: list[tuple[str, dict[str, int]]]  # street, {status: count}
    by_industry: list[tuple[str, dict[str, int]]]
    key_enterprises: int
    headcount: int
    resumed_share: float


def dashboard(session: Session, *, actor: User, district: str | None = None) -> Dashboard:
    require_role(actor, *REGISTRY_READERS)
    base = select(
        Enterprise.resumption_status,
        Enterprise.street,
        Enterprise.industry,
        func.count().label("n"),
        func.sum(Enterprise.headcount).label("h"),
        func.count(Enterprise.key_category).label("k"),
    ).where(enterprise_scope(actor))
    if district:
        base = base.where(Enterprise.district == district)
    rows = session.execute(
        base.group_by(Enterprise.resumption_status, Enterprise.street, Enterprise.industry)
    ).all()
    status_n: dict[str, int] = dict.fromkeys(RESUMPTION_STATUSES, 0)
    streets: dict[str, dict[str, int]] = {}
    industries: dict[str, dict[str, int]] = {}
    total = headcount = key = 0
    for status, street, industry, n, h, k in rows:
        status_n[status] += n
        s = streets.setdefault(street or "（未填）", dict.fromkeys(RESUMPTION_STATUSES, 0))
        s[status] += n
        ind = industries.setdefault(
            label(INDUSTRIES, industry), dict.fromkeys(RESUMPTION_STATUSES, 0)
        )
        ind[status] += n
        total += n
        headcount += h or 0
        key += k
    resumed = status_n["partial"] + status_n["full"]
    return Dashboard(
        total=total,
        by_status=[(c, label(RESUMPTION_STATUSES, c), status_n[c]) for c in RESUMPTION_STATUSES],
        by_street=sorted(streets.items(), key=lambda kv: -sum(kv[1].values())),
        by_industry=sorted(industries.items(), key=lambda kv: -sum(kv[1].values())),
        key_enterprises=key,
        headcount=headcount,
        resumed_share=resumed / total if total else 0.0,
    )


@dataclass
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _audit_stmt(flt: AuditFilter) -> Select[AuditLog]:
    stmt = select(AuditLog)
    if flt.actor:
        stmt = stmt.where(AuditLog.actor_label == flt.actor)
    if flt.action:
        stmt = stmt.where(AuditLog.action.startswith(flt.action, autoescape=True))
    if flt.target_type:
        stmt = stmt.where(AuditLog.target_type == flt.target_type)
    if flt.target_id:
        stmt = stmt.where(AuditLog.target_id == flt.target_id)
    if flt.since:
        stmt = stmt.where(AuditLog.at >= flt.since)
    if flt.until:
        stmt = stmt.where(AuditLog.at < flt.until)
    return stmt


def list_audit(
    session: Session, *, actor: User, flt: AuditFilter, page: int = 1, per_page: int = 50
) -> tuple[list[AuditLog], int]:
    require_role(actor, *AUDIT_READERS)
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    stmt = _audit_stmt(flt)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(AuditLog.id.desc()).limit(per_page).offset((max(1, page) - 1) * per_page)
    ).all()
    return list(rows), total


def iter_audit(session: Session, *, actor: User, flt: AuditFilter) -> Iterator[AuditLog]:
    require_role(actor, *AUDIT_READERS)
    yield from session.scalars(
        _audit_stmt(flt).order_by(AuditLog.id).execution_options(yield_per=1000)
    )


MANAGERS_TTL_S = 30.0
_managers_lock = threading.Lock()
_managers_cache: weakref.WeakKeyDictionary[Engine, tuple[float, int, list[Row[int, str, str]]]]
_managers_cache = weakref.WeakKeyDictionary()
_users_generation = 0
_USERS_CHANGED = "fugong.users_changed"


def _bump_users_generation() -> None:
    global _users_generation
    with _managers_lock:
        _users_generation += 1


@event.listens_for(Session, "after_flush")
def _users_flushed(session: Session, _ctx: UOWTransaction) -> None:
    # A flush that touches users or roles voids the pick lists at once, and again when its
    # transaction ends (a rollback undoes what a reader may have cached meanwhile).
    touched = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(o, User | UserRole) for o in touched):
        session.info[_USERS_CHANGED] = True
        _bump_users_generation()


@event.listens_for(Session, "after_transaction_end")
def _users_settled(session: Session, transaction: SessionTransaction) -> None:
    # The outermost transaction ends on commit, rollback and close alike.
    if transaction.parent is None and session.info.pop(_USERS_CHANGED, False):
        _bump_users_generation()


def managers(session: Session) -> list[Row[int, str, str]]:
    """Account managers for pick lists: id, username and display name, nothing more.

    Every list page shows this pick list, so each process keeps it per database for
    ``MANAGERS_TTL_S`` seconds. A change of users or roles flushed by the ORM in this process
    voids it at once; one made by another worker process shows within the TTL (the list only
    offers filter choices: a stale entry filters to what that manager now has)."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    now = time.monotonic()
    with _managers_lock:
        generation = _users_generation
        hit = _managers_cache.get(engine)
    if hit is not None and hit[1] == generation and now - hit[0] < MANAGERS_TTL_S:
        return hit[2]
    rows = list(
        session.execute(
            select(User.id, User.username, User.display_name)
            .join(UserRole)
            .where(UserRole.role == "manager")
            .order_by(User.username)
        )
    )
    # A session with its own unflushed or uncommitted changes to users must not publish them.
    if not session.info.get(_USERS_CHANGED):
        with _managers_lock:
            if generation == _users_generation:
                _managers_cache[engine] = (now, generation, rows)
    return rows


def list_users(
    session: Session, *, actor: User, role: str | None = None, q: str | None = None
) -> list[User]:
    require_role(actor, "admin")
    stmt = select(User).order_by(User.username)
    if role:
        stmt = stmt.where(User.id.in_(select(UserRole.user_id).where(UserRole.role == role)))
    if q:
        stmt = stmt.where(
            or_(
                User.username.contains(q, autoescape=True),
                User.display_name.contains(q, autoescape=True),
            )
        )
    return list(session.scalars(stmt.limit(500)))


def list_organisations(
    session: Session, *, actor: User, kind: str | None = None
) -> list[Organisation]:
    """Non-enterprise organisations (enterprises have their own registry), for admin pages."""
    require_role(actor, "admin")
    stmt = select(Organisation).where(Organisation.kind != "enterprise").order_by(Organisation.id)
    if kind:
        stmt = stmt.where(Organisation.kind == kind)
    return list(session.scalars(stmt))
