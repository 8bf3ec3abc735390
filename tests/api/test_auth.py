"""Login, CSRF, throttling, sessions and API tokens."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fugong.core.models import ApiToken, AuditLog
from tests.api.conftest import csrf_of, login
from tests.conftest import PASSWORD


def test_pages_need_login(client: TestClient) -> None:
    r = client.get("/enterprises", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me").headers["content-type"] == "application/problem+json"


def test_login_cookie_flags_and_me(client: TestClient, make) -> None:
    user = make.user("official")
    token = csrf_of(client.get("/login").text)
    r = client.post(
        "/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert client.get("/api/v1/me").json()["username"] == user.username


def test_login_form_without_csrf_is_refused(client: TestClient, make) -> None:
    user = make.user("official")
    client.get("/login")
    r = client.post(
        "/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": "forged"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert client.get("/api/v1/me").status_code == 401


def test_login_is_throttled_and_audited(client: TestClient, session: Session, make) -> None:
    user = make.user("official")
    token = csrf_of(client.get("/login").text)
    for _ in range(3):
        r = client.post(
            "/login",
            data={"username": user.username, "password": "wrong-password", "csrf_token": token},
        )
        assert r.status_code == 401
    # Locked now: even the right password is refused until the window passes.
    r = client.post(
        "/login", data={"username": user.username, "password": PASSWORD, "csrf_token": token}
    )
    assert r.status_code == 429 and "登录失败次数过多" in r.text
    failed = session.scalars(select(AuditLog).where(AuditLog.action == "auth.login_failed")).all()
    assert len(failed) == 3


def test_password_change_logs_out_other_sessions(app, make) -> None:
    user = make.user("official")
    with TestClient(app) as a, TestClient(app) as b:
        csrf_a = login(a, user.username)
        login(b, user.username)
        r = a.post(
            "/account/password",
            data={
                "old_password": PASSWORD,
                "new_password": "a-new-long-secret",
                "new_password2": "a-new-long-secret",
                "csrf_token": csrf_a,
            },
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert a.get("/api/v1/me").status_code == 200  # the session that changed it stays
        assert b.get("/api/v1/me").status_code == 401  # every other session is void


def test_password_change_refuses_weak_password(client: TestClient, make) -> None:
    user = make.user("official")
    csrf = login(client, user.username)
    r = client.post(
        "/account/password",
        data={
            "old_password": PASSWORD,
            "new_password": "short",
            "new_password2": "short",
            "csrf_token": csrf,
        },
    )
    assert r.status_code == 422 and "至少需要10个字符" in r.text


def test_api_token_is_hashed_and_works_without_csrf(
    client: TestClient, session: Session, app, make
) -> None:
    user = make.user("admin")
    csrf = login(client, user.username)
    r = client.post("/api/v1/tokens", params={"name": "gateway"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    row = session.scalar(select(ApiToken).where(ApiToken.name == "gateway"))
    assert row is not None and token not in row.token_hash and len(row.token_hash) == 64
    with TestClient(app) as machine:
        h = {"Authorization": f"Bearer {token}"}
        assert machine.get("/api/v1/me", headers=h).json()["username"] == user.username
        assert (
            machine.get("/api/v1/me", headers={"Authorization": "Bearer fgt_nope"}).status_code
            == 401
        )


def test_cookie_api_write_needs_csrf_header(client: TestClient, make) -> None:
    user = make.user("admin")
    login(client, user.username)
    r = client.post("/api/v1/tokens", params={"name": "x"})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    client.cookies.clear()  # no session at all: nothing to forge, so plainly unauthenticated
    r = client.post("/api/v1/tokens", params={"name": "x"})
    assert r.status_code == 401


def test_open_redirect_after_login_is_refused(client: TestClient, make) -> None:
    user = make.user("official")
    token = csrf_of(client.get("/login").text)
    r = client.post(
        "/login",
        data={
            "username": user.username,
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert r.headers["location"] == "/"


def test_pages_send_security_headers_and_no_external_assets(client: TestClient, make) -> None:
    r = client.get("/login")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "http://" not in r.text.replace("http://www.w3.org", "")
    assert "https://" not in r.text
    docs = client.get("/docs").text
    assert "cdn" not in docs.lower() and "/docs-static/swagger-ui-bundle.js" in docs
    assert client.get("/docs-static/swagger-ui-bundle.js").status_code == 200
