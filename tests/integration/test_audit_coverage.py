"""Every core write leaves its audit row, through the entry point people use (the UI form with
its CSRF token, or the API), and the row lives and dies with the change: a refused write leaves
neither, and a commit that fails takes the row down with the change.

Exports are reads of personal data: the file is the "change", so the row is what must not be
lost (a commit that fails sends no file)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker

from fugong.core import services
from fugong.core.demo import enterprise_rows
from fugong.core.models import ApiToken, AuditLog, Organisation, User
from fugong.core.security import verify_password
from fugong.settings import Settings
from fugong.web.app import create_app
from tests.api.conftest import login
from tests.conftest import PASSWORD, Factory

NEW_PASSWORD = "a-new-long-secret"


class CommitRefused(Exception):
    """The database refusing a commit (disk full, a serialisation failure)."""


@contextmanager
def refused_commits(factory: sessionmaker[Session]) -> Iterator[None]:
    def refuse(_session: Session) -> None:
        raise CommitRefused

    event.listen(factory, "before_commit", refuse)
    try:
        yield
    finally:
        event.remove(factory, "before_commit", refuse)


@dataclass
class World:
    """One browser (or API client) on the app, the test's view of the database, and what the
    case set up."""

    client: TestClient
    session: Session
    make: Factory
    actor: User | None = None
    csrf: str = ""
    ctx: dict[str, Any] = field(default_factory=dict)

    def login(self, user: User) -> None:
        self.client.cookies.clear()
        self.csrf = login(self.client, user.username)
        self.actor = user

    def form(self, path: str, files: Any = None, **data: str) -> Any:
        return self.client.post(
            path, data={**data, "csrf_token": self.csrf}, files=files, follow_redirects=False
        )

    def value(self, stmt: Any) -> Any:
        self.session.expire_all()
        return self.session.scalar(stmt)


@dataclass(frozen=True)
class Case:
    """One audited write: ``arrange`` logs the actor in and makes what the write needs;
    ``perform(world, valid)`` does it (``valid=False``: a variant the platform refuses);
    ``state`` reads what the write changes; ``check`` looks at the audit row."""

    action: str
    arrange: Callable[[World], None]
    perform: Callable[[World, bool], Any]
    state: Callable[[World], Any]
    check: Callable[[World, AuditLog, Any], None]
    ok: int
    refused: int
    #: An export changes no row: its audit row is the whole write.
    read_only: bool = False


# -- organisation.create ------------------------------------------------------------------------


def org_arrange(w: World) -> None:
    w.login(w.make.user("admin"))
    w.ctx["uscc"] = w.make.uscc()


def org_perform(w: World, valid: bool) -> Any:
    uscc = (
        w.ctx["uscc"] if valid else w.ctx["uscc"][:17] + ("0" if w.ctx["uscc"][17] != "0" else "1")
    )
    return w.form(
        "/admin/organisations",
        kind="supplier",
        name="广州审计测试供应有限公司",
        uscc=uscc,
        district="黄埔区",
    )


def org_state(w: World) -> Any:
    return w.value(select(Organisation.id).where(Organisation.name == "广州审计测试供应有限公司"))


def org_check(w: World, row: AuditLog, _r: Any) -> None:
    assert row.target_type == "organisation" and row.target_id == str(org_state(w))
    assert row.before is None
    assert row.after == {
        "kind": "supplier",
        "name": "广州审计测试供应有限公司",
        "uscc": w.ctx["uscc"],
        "district": "黄埔区",
        "street": None,
        "address": None,
    }


# -- user.create ---------------------------------------------------------------------------------


def user_create_arrange(w: World) -> None:
    w.login(w.make.user("admin"))
    w.ctx["org"] = w.make.org(name="黄埔区审计测试局")


def user_create_perform(w: World, valid: bool) -> Any:
    return w.form(
        "/admin/users",
        username="auditclerk",
        display_name="审计测试科员",
        password=NEW_PASSWORD if valid else "short",
        organisation_id=str(w.ctx["org"].id),
        roles="official",
    )


def user_create_state(w: World) -> Any:
    return w.value(select(User.id).where(User.username == "auditclerk"))


def user_create_check(w: World, row: AuditLog, _r: Any) -> None:
    assert row.target_type == "user" and row.target_id == str(user_create_state(w))
    assert row.after == {
        "username": "auditclerk",
        "organisation_id": w.ctx["org"].id,
        "roles": ["official"],
    }
    assert NEW_PASSWORD not in str(row.after)


# -- user.activate / user.deactivate -------------------------------------------------------------


def activate_arrange(w: World) -> None:
    admin = w.make.user("admin")
    target = w.make.user("official")
    services.set_user_active(w.session, user_id=target.id, active=False, actor=admin)
    w.ctx["target"] = target
    w.login(admin)


def activate_perform(w: World, valid: bool) -> Any:
    if not valid:  # only an administrator may: an official is refused
        w.login(w.make.user("official"))
    return w.form(f"/admin/users/{w.ctx['target'].id}/active", active="1")


def deactivate_arrange(w: World) -> None:
    w.ctx["target"] = w.make.user("official")
    w.login(w.make.user("admin"))


def deactivate_perform(w: World, valid: bool) -> Any:
    assert w.actor is not None
    # Refused: an administrator cannot lock themselves out.
    who = w.ctx["target"].id if valid else w.actor.id
    return w.form(f"/admin/users/{who}/active", active="0")


def active_state(w: World) -> Any:
    assert w.actor is not None
    ids = (w.ctx["target"].id, w.actor.id)
    return tuple(w.value(select(User.is_active).where(User.id == i)) for i in ids)


def active_check(to: bool) -> Callable[[World, AuditLog, Any], None]:
    def check(w: World, row: AuditLog, _r: Any) -> None:
        assert row.target_type == "user" and row.target_id == str(w.ctx["target"].id)
        assert row.before == {"is_active": not to} and row.after == {"is_active": to}

    return check


# -- user.password_change / user.password_reset --------------------------------------------------


def change_arrange(w: World) -> None:
    w.ctx["target"] = w.make.user("official")
    w.login(w.ctx["target"])


def change_perform(w: World, valid: bool) -> Any:
    return w.form(
        "/account/password",
        old_password=PASSWORD if valid else "not-the-old-password",
        new_password=NEW_PASSWORD,
        new_password2=NEW_PASSWORD,
    )


def reset_arrange(w: World) -> None:
    w.ctx["target"] = w.make.user("official")
    w.login(w.make.user("admin"))


def reset_perform(w: World, valid: bool) -> Any:
    return w.form(
        f"/admin/users/{w.ctx['target'].id}/password",
        password=NEW_PASSWORD if valid else "short",
    )


def password_state(w: World) -> Any:
    return w.value(select(User.password_hash).where(User.id == w.ctx["target"].id))


def password_check(w: World, row: AuditLog, _r: Any) -> None:
    assert row.target_type == "user" and row.target_id == str(w.ctx["target"].id)
    assert verify_password(password_state(w), NEW_PASSWORD)
    # Neither the password nor its hash belongs in the trail.
    assert row.before is None and row.after is None and row.detail is None


# -- token.create / token.revoke -----------------------------------------------------------------


def token_create_arrange(w: World) -> None:
    w.login(w.make.user("official"))


def token_create_perform(w: World, valid: bool) -> Any:
    return w.client.post(
        "/api/v1/tokens",
        params={"name": "gateway" if valid else "   "},
        headers={"X-CSRF-Token": w.csrf},
    )


def token_create_state(w: World) -> Any:
    assert w.actor is not None
    return w.value(select(func.count()).select_from(ApiToken).where(ApiToken.user_id == w.actor.id))


def token_create_check(w: World, row: AuditLog, r: Any) -> None:
    assert w.actor is not None
    body = r.json()
    assert row.target_type == "api_token" and row.target_id == str(body["id"])
    assert row.after == {"user_id": w.actor.id, "name": "gateway", "prefix": body["token"][:12]}
    assert body["token"] not in str(row.after)


def token_revoke_arrange(w: World) -> None:
    user, other = w.make.user("official"), w.make.user("official")
    _, mine = services.create_api_token(w.session, user=user, name="mine", actor=user)
    _, theirs = services.create_api_token(w.session, user=other, name="theirs", actor=other)
    w.ctx.update(mine=mine.id, theirs=theirs.id)
    w.login(user)


def token_revoke_perform(w: World, valid: bool) -> Any:
    # Refused: a user revokes only their own tokens; another's is "not found".
    token_id = w.ctx["mine"] if valid else w.ctx["theirs"]
    return w.form(f"/account/tokens/{token_id}/revoke")


def token_revoke_state(w: World) -> Any:
    ids = (w.ctx["mine"], w.ctx["theirs"])
    return tuple(w.value(select(ApiToken.revoked_at).where(ApiToken.id == i)) for i in ids)


def token_revoke_check(w: World, row: AuditLog, _r: Any) -> None:
    assert row.target_type == "api_token" and row.target_id == str(w.ctx["mine"])
    assert token_revoke_state(w)[0] is not None


# -- enterprise.import_batch ---------------------------------------------------------------------

IMPORT_FIELDS = (
    "uscc", "name", "district", "street", "industry", "size", "headcount",
    "resumption_status", "resumption_date", "staff_back_pct",
)  # fmt: skip


def import_arrange(w: World) -> None:
    w.ctx["rows"] = enterprise_rows(2, seed=6060)
    w.login(w.make.user("official"))


def import_perform(w: World, valid: bool) -> Any:
    rows = [dict(r) for r in w.ctx["rows"]]
    if not valid:
        rows[1]["size"] = "巨型"
    lines = [",".join(IMPORT_FIELDS)] + [
        ",".join("" if r[k] is None else str(r[k]) for k in IMPORT_FIELDS) for r in rows
    ]
    content = ("\n".join(lines) + "\n").encode("utf-8")
    return w.form("/enterprises/import", files={"file": ("e.csv", content, "text/csv")})


def import_state(w: World) -> Any:
    codes = [r["uscc"] for r in w.ctx["rows"]]
    return w.value(
        select(func.count()).select_from(Organisation).where(Organisation.uscc.in_(codes))
    )


def import_check(w: World, row: AuditLog, r: Any) -> None:
    assert "已导入 2 家企业" in r.text
    assert row.target_type == "enterprise" and row.target_id is None
    assert row.after == {"created": 2}
    # Each enterprise has its own row as well, with what was stored.
    per_row = w.session.scalars(
        select(AuditLog).where(AuditLog.action == "enterprise.import", AuditLog.id < row.id)
    ).all()
    codes = {r["uscc"] for r in w.ctx["rows"]}
    assert {e.after["uscc"] for e in per_row if e.after} == codes
    assert {e.actor_id for e in per_row} == {row.actor_id}


# -- enterprise.export / audit.export ------------------------------------------------------------


def export_arrange(w: World) -> None:
    w.ctx["ent"] = w.make.enterprise(street="大沙街道")
    w.login(w.make.user("official"))


def export_perform(w: World, valid: bool) -> Any:
    if not valid:  # a supplier may not read the registry, let alone take it home
        w.login(w.make.user("supplier", org=w.make.org(kind="supplier")))
    return w.client.get("/enterprises/export", params={"format": "csv", "street": "大沙街道"})


def export_check(w: World, row: AuditLog, r: Any) -> None:
    assert w.ctx["ent"].uscc in r.text
    assert row.target_type == "enterprise" and row.target_id is None
    assert row.detail is not None and "format=csv" in row.detail and "大沙街道" in row.detail


def audit_export_arrange(w: World) -> None:
    w.make.org(name="审计导出测试机构")
    w.login(w.make.user("auditor"))


def audit_export_perform(w: World, valid: bool) -> Any:
    params = {"action": "organisation.create"}
    return w.client.get(
        "/audit/export.csv", params=params | ({} if valid else {"since": "2020-13-45"})
    )


def audit_export_check(w: World, row: AuditLog, r: Any) -> None:
    assert "审计导出测试机构" in r.text and "auth.login" not in r.text
    assert row.target_type == "audit_log" and row.target_id is None
    assert row.detail is not None and "organisation.create" in row.detail


def nothing(_w: World) -> Any:
    return None


CASES = [
    Case("organisation.create", org_arrange, org_perform, org_state, org_check, 303, 422),
    Case(
        "user.create",
        user_create_arrange,
        user_create_perform,
        user_create_state,
        user_create_check,
        303,
        422,
    ),
    Case(
        "user.activate",
        activate_arrange,
        activate_perform,
        active_state,
        active_check(True),
        303,
        403,
    ),
    Case(
        "user.deactivate",
        deactivate_arrange,
        deactivate_perform,
        active_state,
        active_check(False),
        303,
        422,
    ),
    Case(
        "user.password_change",
        change_arrange,
        change_perform,
        password_state,
        password_check,
        303,
        422,
    ),
    Case(
        "user.password_reset",
        reset_arrange,
        reset_perform,
        password_state,
        password_check,
        303,
        422,
    ),
    Case(
        "token.create",
        token_create_arrange,
        token_create_perform,
        token_create_state,
        token_create_check,
        201,
        422,
    ),
    Case(
        "token.revoke",
        token_revoke_arrange,
        token_revoke_perform,
        token_revoke_state,
        token_revoke_check,
        303,
        404,
    ),
    Case(
        "enterprise.import_batch",
        import_arrange,
        import_perform,
        import_state,
        import_check,
        200,
        422,
    ),
    Case(
        "enterprise.export",
        export_arrange,
        export_perform,
        nothing,
        export_check,
        200,
        403,
        read_only=True,
    ),
    Case(
        "audit.export",
        audit_export_arrange,
        audit_export_perform,
        nothing,
        audit_export_check,
        200,
        422,
        read_only=True,
    ),
]


@pytest.fixture
def world(
    session_factory: sessionmaker[Session], session: Session, make: Factory
) -> Iterator[World]:
    settings = Settings(secret_key="t" * 40, database_url="sqlite://")
    app = create_app(settings, session_factory=session_factory)
    with TestClient(app, base_url="http://testserver") as client:
        yield World(client=client, session=session, make=make)


def rows_since(w: World, action: str, mark: int) -> list[AuditLog]:
    w.session.expire_all()
    return list(
        w.session.scalars(
            select(AuditLog)
            .where(AuditLog.action == action, AuditLog.id > mark)
            .order_by(AuditLog.id)
        )
    )


def last_id(w: World) -> int:
    return int(w.value(select(func.coalesce(func.max(AuditLog.id), 0))))


parametrise = pytest.mark.parametrize("case", CASES, ids=[c.action for c in CASES])


@parametrise
def test_each_write_leaves_its_audit_row(case: Case, world: World) -> None:
    case.arrange(world)
    before, mark = case.state(world), last_id(world)
    r = case.perform(world, True)
    assert r.status_code == case.ok, r.text
    if not case.read_only:
        assert case.state(world) != before
    [row] = rows_since(world, case.action, mark)
    assert world.actor is not None
    assert (row.actor_id, row.actor_label) == (world.actor.id, world.actor.username)
    assert row.ip == "testclient"
    case.check(world, row, r)


@parametrise
def test_a_refused_write_leaves_neither_change_nor_row(case: Case, world: World) -> None:
    case.arrange(world)
    before, mark = case.state(world), last_id(world)
    r = case.perform(world, False)
    assert r.status_code == case.refused, r.text
    assert case.state(world) == before
    assert rows_since(world, case.action, mark) == []


@parametrise
def test_a_failed_commit_takes_the_row_down_with_the_change(
    case: Case, world: World, session_factory: sessionmaker[Session]
) -> None:
    case.arrange(world)
    before, mark = case.state(world), last_id(world)
    with refused_commits(session_factory), pytest.raises(CommitRefused):
        case.perform(world, True)
    assert case.state(world) == before
    assert rows_since(world, case.action, mark) == []
    # The same write goes through once the database accepts it again: the test did refuse a
    # write that would otherwise have been stored.
    assert case.perform(world, True).status_code == case.ok
    assert len(rows_since(world, case.action, mark)) == 1
