"""User and organisation administration pages."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fugong.core.models import AuditLog, User
from tests.api.conftest import login


def test_only_admins_manage_users(client: TestClient, make) -> None:
    login(client, make.user("official").username)
    assert client.get("/admin/users").status_code == 403
    assert client.get("/admin/organisations").status_code == 403


def test_admin_creates_user_and_deactivation_ends_sessions(app, session: Session, make) -> None:
    admin = make.user("admin")
    org = make.org(name="黄埔区测试局")
    with TestClient(app) as a, TestClient(app) as b:
        csrf = login(a, admin.username)
        r = a.post(
            "/admin/users",
            data={
                "username": "newclerk",
                "display_name": "新科员",
                "password": "short",
                "organisation_id": str(org.id),
                "roles": ["official"],
                "csrf_token": csrf,
            },
        )
        assert r.status_code == 422 and "至少需要10个字符" in r.text
        r = a.post(
            "/admin/users",
            data={
                "username": "newclerk",
                "display_name": "新科员",
                "password": "a-long-enough-pass",
                "organisation_id": str(org.id),
                "roles": ["official"],
                "csrf_token": csrf,
            },
            follow_redirects=False,
        )
        assert r.status_code == 303
        clerk = session.scalar(select(User).where(User.username == "newclerk"))
        assert clerk is not None and clerk.roles == {"official"}
        login(b, "newclerk", "a-long-enough-pass")
        assert b.get("/api/v1/me").status_code == 200
        r = a.post(
            f"/admin/users/{clerk.id}/active",
            data={"active": "0", "csrf_token": csrf},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert b.get("/api/v1/me").status_code == 401
    actions = set(
        session.scalars(
            select(AuditLog.action).where(
                AuditLog.target_type == "user", AuditLog.target_id == str(clerk.id)
            )
        )
    )
    assert {"user.create", "user.deactivate"} <= actions


def test_enterprise_login_attached_by_credit_code(
    client: TestClient, session: Session, make
) -> None:
    ent = make.enterprise()
    csrf = login(client, make.user("admin").username)
    r = client.post(
        "/admin/users",
        data={
            "username": "firm1",
            "display_name": "企业行政",
            "password": "a-long-enough-pass",
            "uscc": ent.uscc,
            "roles": ["enterprise"],
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    firm = session.scalar(select(User).where(User.username == "firm1"))
    assert firm is not None and firm.organisation_id == ent.id


def test_admin_creates_organisation_with_checked_code(client: TestClient, make) -> None:
    csrf = login(client, make.user("admin").username)
    r = client.post(
        "/admin/organisations",
        data={
            "kind": "supplier",
            "name": "测试供应商",
            "uscc": "91440112MA5CXXXXX1",
            "csrf_token": csrf,
        },
    )
    assert r.status_code == 422 and "校验码错误" in r.text
    r = client.post(
        "/admin/organisations",
        data={"kind": "supplier", "name": "测试供应商", "uscc": make.uscc(), "csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "测试供应商" in client.get("/admin/organisations").text
