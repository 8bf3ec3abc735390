"""The enterprise list's fast paths on both databases: the rows the list page prints agree with
the API's models for every kind of filter and search, its counts agree with a full walk and
(on SQLite) are index-only searches, and the cached manager pick list follows changes."""

from __future__ import annotations

import string
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from fugong.core import queries, services
from fugong.core.models import AuditLog, UserRole
from fugong.core.schemas import EnterpriseUpdate
from fugong.settings import Settings
from fugong.web.app import create_app
from tests.api.conftest import login

NAMES = [
    "广州黄埔科技有限公司",
    "黄埔精密制造厂",
    "Alpha Robotics 科技",
    "alpha 贸易商行",
    "百分之百_50%食品店",
    "南岗物流中心",
]

SEARCHES = [
    "科",  # one Chinese character
    "科技",  # two
    "黄埔科技",  # three and more
    "a",  # one Latin letter: a case-insensitive LIKE on SQLite, case-sensitive on PostgreSQL
    "Al",
    "alpha",
    "Robotics",
    "50%",  # LIKE wildcards in the term are literal
    "_",
    "不存在的名字",
]


@pytest.fixture
def registry(session: Session, make: Any) -> dict[str, Any]:
    orgs = [make.enterprise(name=name) for name in NAMES]
    return {"official": make.user("official"), "orgs": orgs}


def _as_dict(item: Any) -> dict[str, Any]:
    return {k: getattr(item, k) for k in queries.EnterpriseRead.model_fields}


def _filters(registry: dict[str, Any]) -> list[queries.EnterpriseFilter]:
    first = registry["orgs"][0]
    return [
        queries.EnterpriseFilter(),
        *(queries.EnterpriseFilter(q=term) for term in SEARCHES),
        queries.EnterpriseFilter(q=first.uscc),  # a full code: the exact lookup
        queries.EnterpriseFilter(q=first.uscc[:6].lower()),  # a code prefix, any case
        queries.EnterpriseFilter(resumption_status=first.enterprise.resumption_status),
        queries.EnterpriseFilter(industry=first.enterprise.industry, size=first.enterprise.size),
        queries.EnterpriseFilter(key_category="any"),
        queries.EnterpriseFilter(key_category="none", q="科"),
        queries.EnterpriseFilter(street=first.enterprise.street),
    ]


def test_page_rows_agree_with_models_and_counts_with_a_full_walk(
    session: Session, registry: dict[str, Any]
) -> None:
    official = registry["official"]
    for flt in _filters(registry):
        rows = queries.list_enterprise_rows(session, actor=official, flt=flt, per_page=3)
        models = queries.list_enterprises(session, actor=official, flt=flt, per_page=3)
        assert [_as_dict(r) for r in rows.items] == [m.model_dump() for m in models.items], flt
        every = list(queries.iter_enterprises(session, actor=official, flt=flt))
        assert rows.total == models.total == len(every), flt
        assert rows.pages == max(1, -(-len(every) // 3))


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _like_oracle(sqlite: bool, term: str, name: str, code: str | None) -> bool:
    """``name LIKE '%term%' OR code LIKE 'TERM%'`` as each database decides it: SQLite folds
    ASCII letters only, PostgreSQL folds nothing."""
    fold = _ASCII_LOWER if sqlite else {}
    return term.translate(fold) in name.translate(fold) or (
        code is not None and code.startswith(term.upper())
    )


def test_search_answers_exactly_as_like(session: Session, make: Any) -> None:
    names = [
        *NAMES,
        'Say "Hi" 商贸',  # a double quote must not break the trigram query
        "ÄBC 贸易",  # LIKE folds ASCII only; the trigram index folds Ä too, LIKE decides
        "Robotics Works",
    ]
    orgs = [make.enterprise(name=n) for n in names]
    official = make.user("official")
    sqlite = session.get_bind().dialect.name == "sqlite"
    every = [
        (e.id, e.name, e.uscc)
        for e in queries.iter_enterprises(session, actor=official, flt=queries.EnterpriseFilter())
    ]
    terms = [
        *SEARCHES,
        "ROBOTICS",
        "robotics",
        "Works",
        '"Hi"',
        "äbc",
        "ÄBC",
        "BC 贸",
        orgs[0].uscc[:2].lower(),
        orgs[1].uscc[:7],
    ]
    for term in terms:
        flt = queries.EnterpriseFilter(q=term)
        got = {e.id for e in queries.iter_enterprises(session, actor=official, flt=flt)}
        expected = {i for i, name, code in every if _like_oracle(sqlite, term, name, code)}
        assert got == expected, term
        assert queries.count_enterprises(session, actor=official, flt=flt) == len(expected)
    # The trigram path is really taken for 3+ characters, and finds these.
    assert {
        e.name
        for e in queries.iter_enterprises(
            session, actor=official, flt=queries.EnterpriseFilter(q="黄埔科技")
        )
    } == {"广州黄埔科技有限公司"}


def test_renamed_names_are_found_by_their_new_name(session: Session, make: Any) -> None:
    org = make.enterprise(name="旧名称贸易公司")
    official = make.user("official")
    services.update_enterprise(
        session, enterprise_id=org.id, actor=official, data=EnterpriseUpdate(name="新名称科技公司")
    )
    session.flush()

    def ids(term: str) -> list[int]:
        flt = queries.EnterpriseFilter(q=term)
        return [e.id for e in queries.iter_enterprises(session, actor=official, flt=flt)]

    assert ids("新名称科技") == [org.id]
    assert ids("旧名称贸易") == []


def test_filtered_counts_are_index_only_searches_on_sqlite(
    session: Session, registry: dict[str, Any]
) -> None:
    bind = session.get_bind()
    if bind.dialect.name != "sqlite":
        # PostgreSQL plans by its own statistics (a handful of rows is a sequential scan):
        # there the indexes must exist with the district first.
        indexes = {
            i["name"]: i["column_names"]
            for i in inspect(session.connection()).get_indexes("enterprises")
        }
        assert indexes["ix_enterprises_district_street"] == [
            "district",
            "street",
            "resumption_status",
        ]
        for suffix in ("status", "industry", "key", "manager"):
            assert indexes[f"ix_enterprises_district_{suffix}"][0] == "district"
        return
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cur: Any, stmt: str, params: Any, _ctx: Any, _many: Any) -> None:
        if stmt.lstrip().upper().startswith("SELECT COUNT"):
            statements.append((stmt, params))

    engine: Engine = bind if isinstance(bind, Engine) else bind.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        cases = {
            "ix_enterprises_district_status": queries.EnterpriseFilter(resumption_status="full"),
            "ix_enterprises_district_street": queries.EnterpriseFilter(
                street="南岗街道", resumption_status="full"
            ),
            "ix_enterprises_district_industry": queries.EnterpriseFilter(
                industry="manufacturing", size="small"
            ),
            "ix_enterprises_district_key": queries.EnterpriseFilter(key_category="any"),
            "ix_enterprises_district_manager": queries.EnterpriseFilter(manager_id=1),
        }
        for index, flt in cases.items():
            statements.clear()
            queries.count_enterprises(session, actor=registry["official"], flt=flt)
            [(stmt, params)] = statements
            plan = " ".join(
                row[3]
                for row in session.connection().exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {stmt}", params
                )
            )
            assert f"COVERING INDEX {index}" in plan, (flt, plan)
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def test_manager_pick_list_follows_changes(
    session_factory: sessionmaker[Session], make: Any, session: Session
) -> None:
    # No commits here: the test's sessions share one connection, so a second session sees
    # the first one's flushed writes, as another request would see committed ones.
    before = {m.id for m in queries.managers(session)}
    manager = make.user("manager")
    # The writing session sees its own new manager at once.
    assert {m.id for m in queries.managers(session)} == before | {manager.id}

    reader = session_factory()
    try:
        listed = queries.managers(reader)
        assert {m.id for m in listed} == before | {manager.id}
        assert queries.managers(reader) is listed  # served from the cache while nothing changed

        manager.role_rows = [UserRole(role="official")]
        session.flush()
        assert {m.id for m in queries.managers(reader)} == before
    finally:
        reader.close()


def test_a_rolled_back_manager_leaves_the_pick_list(
    session_factory: sessionmaker[Session], make: Any, session: Session
) -> None:
    before = {m.id for m in queries.managers(session)}
    writer = session_factory()
    try:
        ghost = type(make)(writer).user("manager", username="ghost_manager")
        reader = session_factory()  # sees (and caches) the write before it is rolled back
        try:
            assert ghost.id in {m.id for m in queries.managers(reader)}
        finally:
            reader.close()
        writer.rollback()
    finally:
        writer.close()
    assert {m.id for m in queries.managers(session)} == before


@pytest.fixture
def client(session_factory: sessionmaker[Session]) -> Iterator[TestClient]:
    settings = Settings(secret_key="t" * 40, database_url="sqlite://")
    with TestClient(create_app(settings, session_factory=session_factory)) as c:
        yield c


def test_the_list_page_costs_four_queries_and_audits_the_client_address(
    client: TestClient, make: Any, session: Session, registry: dict[str, Any]
) -> None:
    make.user("official", username="list_official")
    session.flush()
    login(client, "list_official")
    # The session dependency runs in the request's own context now, so audit rows written by
    # the handler's thread carry the client address (it used to be lost in a thread's copy).
    logins = session.scalars(
        select(AuditLog.ip).where(
            AuditLog.action == "auth.login", AuditLog.actor_label == "list_official"
        )
    ).all()
    assert logins == ["testclient"]

    engine: Engine = session.get_bind().engine
    statements: list[str] = []

    def capture(_conn: Any, _cur: Any, stmt: str, *_args: Any) -> None:
        if stmt.lstrip().upper().startswith("SELECT"):
            statements.append(stmt)

    client.get("/enterprises")  # fills the manager pick list
    event.listen(engine, "before_cursor_execute", capture)
    try:
        page = client.get("/enterprises", params={"q": "黄埔科技"})
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert page.status_code == 200
    assert "广州黄埔科技有限公司" in page.text
    # The user with organisation and roles, the unread count, the count, the page.
    assert len(statements) == 4, statements
