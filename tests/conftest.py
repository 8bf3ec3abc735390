"""Fixtures on the real thing: migrations applied once per database (SQLite and PostgreSQL),
a rolled-back savepoint per test, factories instead of literal fixtures.

PostgreSQL comes from FUGONG_TEST_PG_URL (default: the local server, trust auth, database
``test``); each run works in a schema of its own, dropped at the end. Without the server the
PostgreSQL half is skipped loudly on a laptop and fails under CI=true."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from fugong.core import services
from fugong.core.demo import enterprise_rows, make_uscc
from fugong.core.models import Organisation, User
from fugong.core.schemas import EnterpriseCreate, OrganisationCreate, UserCreate
from fugong.db import make_engine, migrate

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get("FUGONG_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PASSWORD = "correct-horse-battery"


def need_service(name: str, reason: str) -> None:
    """Skip loudly on a laptop; fail in CI, where every service must be there."""
    msg = f"{name} unavailable: {reason}"
    if IN_CI:
        pytest.fail(f"{msg} (CI=true: services are required, not optional)")
    pytest.skip(f"!!! SKIPPED — {msg}")


@contextmanager
def pg_schema(prefix: str) -> Iterator[str]:
    """A PostgreSQL schema of its own (``prefix_<random>``), dropped afterwards; yields a URL
    whose connections work in it (a child process can use it too). Without a server the test
    is skipped loudly, or fails under CI=true."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as e:  # any driver error means "no usable server"
        admin.dispose()
        need_service("PostgreSQL", f"{PG_URL}: {type(e).__name__}: {str(e).splitlines()[0]}")
    try:
        yield (
            make_url(PG_URL)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def pg_engine(prefix: str) -> Iterator[Engine]:
    """An engine on a schema of its own (see :func:`pg_schema`), disposed afterwards."""
    with pg_schema(prefix) as url:
        eng = make_engine(url)
        try:
            yield eng
        finally:
            eng.dispose()


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "test.db"
        eng = make_engine(f"sqlite:///{path}")
        migrate.upgrade(eng)
        yield eng
        eng.dispose()
        return
    with pg_engine("fugong_test") as eng:
        migrate.upgrade(eng)
        yield eng


@pytest.fixture
def session_factory(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions that share one connection whose outer transaction is rolled back after the
    test: every commit inside becomes a savepoint release."""
    conn = engine.connect()
    outer = conn.begin()
    if engine.dialect.name == "sqlite":
        # Python's sqlite3 opens a transaction only before a data change, never before a
        # SAVEPOINT: without this BEGIN the first savepoint is the outermost transaction and
        # releasing it (a test's ``session.commit()``) commits for real, leaking rows into the
        # next tests.
        conn.exec_driver_sql("BEGIN")
    factory = sessionmaker(
        bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    yield factory
    outer.rollback()
    conn.close()


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    s = session_factory()
    yield s
    s.close()


class Factory:
    """Builds organisations, users and enterprises through the real services."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.n = 0

    def _seq(self) -> int:
        self.n += 1
        return self.n

    def org(
        self, kind: str = "government", district: str | None = "黄埔区", **kw: Any
    ) -> Organisation:
        i = self._seq()
        if kind == "institution":
            # Institutions must say which kind they are (migration 0009); most tests don't care.
            kw.setdefault("institution_type", "other")
        return services.create_organisation(
            self.session,
            actor=None,
            data=OrganisationCreate(
                kind=kind, name=kw.pop("name", f"测试机构{i}"), district=district, **kw
            ),
        )

    def user(
        self, *roles: str, org: Organisation | None = None, username: str | None = None
    ) -> User:
        i = self._seq()
        org = org or self.org()
        return services.create_user(
            self.session,
            actor=None,
            data=UserCreate(
                username=username or f"{roles[0]}{i}",
                display_name=f"用户{i}",
                password=PASSWORD,
                organisation_id=org.id,
                roles=list(roles),
            ),
        )

    def enterprise(self, **overrides: Any) -> Organisation:
        i = self._seq()
        row = enterprise_rows(1, seed=1000 + i)[0]
        row.update(manager=None)
        row.update(overrides)
        return services.create_enterprise(self.session, actor=None, data=EnterpriseCreate(**row))

    def uscc(self) -> str:
        import random

        return make_uscc(random.Random(5000 + self._seq()))


@pytest.fixture
def make(session: Session) -> Factory:
    return Factory(session)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
