"""``fugong db | users | tokens | enterprises | demo`` on a database file of their own, and the
actor the trail names for them: ``cli``, where work nobody signs for is ``system``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from fugong.cli import app
from fugong.core import audit
from fugong.core.demo import DEMO_PASSWORD, DEMO_SUPPLIERS, enterprise_rows
from fugong.core.models import ApiToken, AuditLog, Organisation, User, UserRole
from fugong.core.reference import ROLES
from fugong.core.schemas import OrganisationCreate
from fugong.core.security import token_digest, verify_password
from fugong.core.services import create_organisation
from fugong.core.tabular import ENTERPRISE_COLUMNS
from fugong.db import make_engine, make_session_factory, migrate, unit_of_work
from fugong.settings import get_settings
from fugong.supplies.models import Offer, SupplierVetting

runner = CliRunner()
HEAD = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated database file, copied for each test: migrating costs seconds."""
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty database file the commands use (FUGONG_DATABASE_URL), data kept in tmp_path."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FUGONG_DATABASE_URL", url)
    monkeypatch.setenv("FUGONG_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("FUGONG_OPINION_AUTHOR_KEY_FILE", str(tmp_path / "keys" / "author.key"))
    monkeypatch.setenv("FUGONG_TRACING_KEY_FILE", str(tmp_path / "keys" / "tracing.key"))
    monkeypatch.delenv("FUGONG_DEMO", raising=False)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


@pytest.fixture
def db(url: str, migrated: Path) -> Iterator[sessionmaker[Session]]:
    """The commands' database, migrated, and sessions on it for the test's own look."""
    shutil.copy(migrated, url.removeprefix("sqlite:///"))
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    # The label is the command's alone: once it has ended, this process writes as itself.
    assert audit.default_actor.get() == audit.SYSTEM_LABEL
    return result.exit_code, result.output


def audit_rows(factory: sessionmaker[Session], action: str) -> list[AuditLog]:
    with factory() as s:
        return list(s.scalars(select(AuditLog).where(AuditLog.action == action)))


def test_db_upgrade_from_empty(url: str) -> None:
    path = Path(url.removeprefix("sqlite:///"))
    assert invoke("db", "current") == (0, "(空库)\n")
    code, out = invoke("db", "upgrade")
    assert code == 0, out
    assert "数据库已升级到 head" in out and path.name in out
    assert invoke("db", "current") == (0, f"{HEAD}\n")
    engine = make_engine(url)
    assert {"organisations", "users", "audit_log", "supply_offers"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()
    # Again: nothing left to apply, and nothing breaks.
    assert invoke("db", "upgrade")[0] == 0


def test_users_create_hashes_the_password_and_audits_as_cli(
    db: sessionmaker[Session],
) -> None:
    with unit_of_work(db) as s:
        org = create_organisation(
            s, actor=None, data=OrganisationCreate(kind="government", name="黄埔区命令行测试局")
        )
    # Written outside any command: nobody signs for it, so the trail says ``system``.
    [made] = audit_rows(db, "organisation.create")
    assert made.actor_label == "system" and made.actor_id is None

    code, out = invoke(
        "users", "create", "clerk", "--role", "official", "--org", "黄埔区命令行测试局",
        "--name", "命令行科员", "--password", "a-long-enough-pass",
    )  # fmt: skip
    assert code == 0, out
    assert "已创建用户 clerk（official）" in out
    with db() as s:
        user = s.scalar(select(User).where(User.username == "clerk"))
        assert user is not None and user.roles == {"official"}
        assert user.organisation_id == org.id and user.display_name == "命令行科员"
        assert "a-long-enough-pass" not in user.password_hash
        assert user.password_hash.startswith("$argon2")
        assert verify_password(user.password_hash, "a-long-enough-pass")
    [row] = audit_rows(db, "user.create")
    assert (row.actor_label, row.actor_id, row.ip) == ("cli", None, None)
    assert row.target_type == "user" and row.target_id == str(user.id)
    assert row.after == {"username": "clerk", "organisation_id": org.id, "roles": ["official"]}

    # Refused: a weak password, an unknown organisation, a name taken. Nothing is written.
    for username, org_name, password, message in (
        ("weak", "黄埔区命令行测试局", "short", "至少需要10个字符"),
        ("nowhere", "无此机构", "a-long-enough-pass", "机构不存在：无此机构"),
        ("clerk", "黄埔区命令行测试局", "a-long-enough-pass", "用户名“clerk”已被使用"),
    ):
        code, out = invoke(
            "users", "create", username, "-r", "official", "--org", org_name, "--password", password
        )
        assert code == 2 and message in out, out
    with db() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 1
    assert len(audit_rows(db, "user.create")) == 1

    # A token for the new user: printed once, kept only as its hash, audited as ``cli``.
    code, out = invoke("tokens", "create", "clerk", "gateway")
    assert code == 0, out
    token = out.strip()
    with db() as s:
        stored = s.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
        assert stored is not None and stored.token_hash == token_digest(token)
    [row] = audit_rows(db, "token.create")
    assert row.actor_label == "cli" and row.target_id == str(stored.id)
    assert invoke("tokens", "create", "nobody", "x")[0] == 2


def _csv(rows: list[dict[str, object]]) -> str:
    fields = [name for name, _ in ENTERPRISE_COLUMNS[:13]]
    lines = [",".join(label for _, label in ENTERPRISE_COLUMNS[:13])]
    lines += [",".join("" if r.get(f) is None else str(r[f]) for f in fields) for r in rows]
    return "\n".join(lines) + "\n"


def test_enterprises_import_is_all_or_nothing(db: sessionmaker[Session], tmp_path: Path) -> None:
    rows = enterprise_rows(4, seed=3030)
    bad = [dict(r) for r in rows]
    bad[2]["headcount"] = "很多"
    file = tmp_path / "bad.csv"
    file.write_text(_csv(bad), encoding="utf-8")
    code, out = invoke("enterprises", "import", str(file))
    # Row 4 of the file (the header is row 1) and the field are named; nothing is imported.
    assert code != 0
    assert "第4行 headcount" in out and "未导入任何数据" in out, out
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Organisation)) == 0
    assert audit_rows(db, "enterprise.import") == audit_rows(db, "enterprise.import_batch") == []

    file = tmp_path / "good.csv"
    file.write_text(_csv(rows), encoding="utf-8")
    code, out = invoke("enterprises", "import", str(file))
    assert code == 0, out
    assert "已导入 4 家企业" in out
    with db() as s:
        codes = set(s.scalars(select(Organisation.uscc).where(Organisation.kind == "enterprise")))
    assert codes == {r["uscc"] for r in rows}
    [batch] = audit_rows(db, "enterprise.import_batch")
    assert (batch.actor_label, batch.after) == ("cli", {"created": 4})
    assert {r.actor_label for r in audit_rows(db, "enterprise.import")} == {"cli"}

    # The same file again: every code is already registered, so again nothing goes in.
    code, out = invoke("enterprises", "import", str(file))
    assert code != 0 and out.count("已登记") == 4
    assert invoke("enterprises", "import", str(tmp_path / "missing.csv"))[0] == 2


def test_demo_loads_vetted_suppliers_and_prints_one_login_per_role(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out = invoke("demo", "--enterprises", "30")
    assert code == 2 and "FUGONG_DEMO=1" in out  # never outside demo mode
    monkeypatch.setenv("FUGONG_DEMO", "1")
    get_settings.cache_clear()
    code, out = invoke("demo", "--enterprises", "30")
    assert code == 0, out
    assert DEMO_PASSWORD in out
    logins = [line.split() for line in out.splitlines() if line.startswith("    ")]
    assert [login[-1] for login in logins] == list(ROLES)
    assert [login[0] for login in logins] == list(ROLES.values())

    factory = make_session_factory(make_engine(url))
    with factory() as s:
        for role in ROLES:  # each printed login exists and takes the printed password
            user = s.scalar(select(User).where(User.username == role))
            assert user is not None and role in user.roles
            assert verify_password(user.password_hash, DEMO_PASSWORD)
        suppliers = s.scalars(select(Organisation).where(Organisation.kind == "supplier")).all()
        assert sorted(o.name for o in suppliers) == sorted(n for n, _, _ in DEMO_SUPPLIERS)
        vetted = s.scalars(select(SupplierVetting.status)).all()
        assert vetted == ["approved"] * len(DEMO_SUPPLIERS)
        offers = dict(
            s.execute(select(Offer.supplier_id, func.count()).group_by(Offer.supplier_id)).all()
        )
        assert set(offers) == {o.id for o in suppliers}  # every supplier has something on offer
        # One login for the supplier role, at the first supplier.
        [login] = s.scalars(select(User).join(UserRole).where(UserRole.role == "supplier"))
        assert login.organisation.name == DEMO_SUPPLIERS[0][0]
        labels = set(s.scalars(select(AuditLog.actor_label).where(AuditLog.actor_id.is_(None))))
    assert labels == {"cli"}

    # A second run leaves the data as it is.
    code, out = invoke("demo", "--enterprises", "30")
    assert code == 0 and "演示数据已存在" in out


def test_a_domain_command_writes_as_cli_too(db: sessionmaker[Session]) -> None:
    # The domains' commands load on first use, after the root has set the label.
    code, out = invoke("screening", "purge")
    assert code == 0, out
    [row] = audit_rows(db, "screening.purge")
    assert (row.actor_label, row.actor_id) == ("cli", None)
