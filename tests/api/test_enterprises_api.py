"""The enterprise registry through the API and the UI: scoping, validation, audit."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fugong.core.demo import enterprise_rows
from fugong.core.models import AuditLog
from tests.api.conftest import login


def test_enterprise_user_gets_404_for_another_enterprise(client: TestClient, make) -> None:
    mine, other = make.enterprise(), make.enterprise()
    login(client, make.user("enterprise", org=mine).username)
    assert client.get(f"/api/v1/enterprises/{mine.id}").status_code == 200
    r = client.get(f"/api/v1/enterprises/{other.id}")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert client.get(f"/api/v1/enterprises/{other.id}/history").status_code == 404
    # The UI says the same: not found, and it does not reveal the name.
    page = client.get(f"/enterprises/{other.id}")
    assert page.status_code == 404 and other.name not in page.text
    assert client.get(f"/enterprises/{other.id}/edit").status_code == 404
    listing = client.get("/api/v1/enterprises").json()
    assert [e["id"] for e in listing["items"]] == [mine.id]


def test_supplier_cannot_read_registry(client: TestClient, make) -> None:
    make.enterprise()
    login(client, make.user("supplier", org=make.org(kind="supplier")).username)
    assert client.get("/api/v1/enterprises").status_code == 403
    assert client.get("/enterprises").status_code == 403


def test_create_via_api_validates_uscc_and_audits(
    client: TestClient, session: Session, make
) -> None:
    admin = make.user("admin")
    csrf = login(client, admin.username)
    row = enterprise_rows(1, seed=404)[0] | {"manager": None}
    row["resumption_date"] = None if row["resumption_date"] is None else str(row["resumption_date"])
    bad = row | {"uscc": row["uscc"][:17] + ("0" if row["uscc"][17] != "0" else "1")}
    r = client.post("/api/v1/enterprises", json=bad, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 422
    assert any(e["field"] == "uscc" and "校验码错误" in e["message"] for e in r.json()["errors"])
    r = client.post("/api/v1/enterprises", json=row, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    eid = r.json()["id"]
    entry = session.scalar(
        select(AuditLog).where(
            AuditLog.action == "enterprise.create", AuditLog.target_id == str(eid)
        )
    )
    assert entry is not None and entry.actor_label == admin.username
    r = client.patch(
        f"/api/v1/enterprises/{eid}",
        json={"resumption_status": "partial", "staff_back_pct": 40},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code == 200 and r.json()["staff_back_pct"] == 40
    history = client.get(f"/api/v1/enterprises/{eid}/history").json()
    assert history[0]["status"] == "partial" and history[0]["recorded_by"] == admin.username


def test_ui_create_with_wrong_uscc_shows_error_and_stores_nothing(
    client: TestClient, session: Session, make
) -> None:
    csrf = login(client, make.user("official").username)
    row = enterprise_rows(1, seed=405)[0]
    form = {k: "" if v is None else str(v) for k, v in row.items() if k != "manager"}
    form["uscc"] = row["uscc"][:17] + ("0" if row["uscc"][17] != "0" else "1")
    r = client.post("/enterprises/new", data=form | {"csrf_token": csrf})
    assert r.status_code == 422 and "校验码错误" in r.text
    assert session.scalar(select(AuditLog).where(AuditLog.action == "enterprise.create")) is None
    r = client.post(
        "/enterprises/new",
        data=form | {"csrf_token": csrf, "uscc": row["uscc"]},
        follow_redirects=False,
    )
    assert r.status_code == 303


def test_ui_form_post_without_csrf_is_refused(client: TestClient, make) -> None:
    login(client, make.user("official").username)
    r = client.post("/enterprises/new", data={"name": "x"})
    assert r.status_code == 403 and "CSRF" in r.text


def test_ui_import_reports_bad_rows_and_imports_nothing(client: TestClient, make) -> None:
    admin = make.user("admin")
    csrf = login(client, admin.username)
    rows = enterprise_rows(3, seed=406)
    header = "统一社会信用代码,企业名称,区,街道,行业,规模,从业人数,复工状态,复工日期,返岗比例\n"

    def line(r: dict, **kw: str) -> str:
        r = r | kw
        return (
            ",".join(
                str(r[k] if r[k] is not None else "")
                for k in (
                    "uscc",
                    "name",
                    "district",
                    "street",
                    "industry",
                    "size",
                    "headcount",
                    "resumption_status",
                    "resumption_date",
                    "staff_back_pct",
                )
            )
            + "\n"
        )

    bad = header + line(rows[0]) + line(rows[1], size="巨型") + line(rows[2])
    r = client.post(
        "/enterprises/import",
        data={"csrf_token": csrf},
        files={"file": ("e.csv", bad.encode("utf-8"), "text/csv")},
    )
    assert r.status_code == 422 and "“巨型”不是有效的企业规模" in r.text and "未导入" in r.text
    assert client.get("/api/v1/enterprises", params={"q": rows[0]["uscc"]}).json()["total"] == 0
    good = header + line(rows[0]) + line(rows[2])
    r = client.post(
        "/enterprises/import",
        data={"csrf_token": csrf},
        files={"file": ("e.csv", good.encode("utf-8"), "text/csv")},
    )
    assert r.status_code == 200 and "已导入 2 家企业" in r.text


def test_export_round_trips_through_import(client: TestClient, make) -> None:
    for _ in range(3):
        make.enterprise()
    csrf = login(client, make.user("admin").username)
    xlsx = client.get("/enterprises/export", params={"format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    csv_text = client.get("/enterprises/export", params={"format": "csv"}).content
    # Re-importing the same file must find every code already registered, row by row.
    r = client.post(
        "/enterprises/import",
        data={"csrf_token": csrf},
        files={"file": ("again.xlsx", xlsx.content, "application/octet-stream")},
    )
    assert r.status_code == 422 and r.text.count("已登记") == 3
    assert csv_text.startswith("\ufeff".encode())


def test_audit_page_filters_and_exports_for_auditors_only(client: TestClient, make) -> None:
    make.enterprise()
    login(client, make.user("official").username)
    assert client.get("/audit").status_code == 403
    client.cookies.clear()
    login(client, make.user("auditor").username)
    r = client.get("/audit", params={"action": "enterprise."})
    assert r.status_code == 200 and "enterprise.create" in r.text
    csv = client.get("/audit/export.csv", params={"action": "enterprise."})
    assert "enterprise.create" in csv.text and "auth.login" not in csv.text
    assert (
        client.get("/api/v1/audit", params={"action": "auth.login"}).json()[0]["action"]
        == "auth.login"
    )


def test_dashboard_renders_svg_charts(client: TestClient, make) -> None:
    make.enterprise(street="大沙街道")
    login(client, make.user("official").username)
    r = client.get("/dashboard")
    assert r.status_code == 200 and "<svg" in r.text and "大沙街道" in r.text


def test_contacts_are_added_and_removed_with_audit(
    client: TestClient, session: Session, make
) -> None:
    org = make.enterprise()
    other = make.enterprise()
    csrf = login(client, make.user("official").username)
    r = client.post(
        f"/enterprises/{org.id}/contacts",
        data={"csrf_token": csrf, "name": "雷华美", "title": "客户经理", "phone": "138-0000-0000"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = client.post(
        f"/enterprises/{org.id}/contacts",
        data={"csrf_token": csrf, "name": "某某", "phone": "call me"},
    )
    assert r.status_code == 422 and "phone" in r.text
    page = client.get(f"/enterprises/{org.id}").text
    assert "雷华美" in page
    from fugong.core.models import Contact

    contact = session.scalar(select(Contact).where(Contact.name == "雷华美"))
    assert contact is not None
    # A contact of one enterprise cannot be deleted through another's address.
    client.cookies.clear()
    csrf2 = login(client, make.user("enterprise", org=other).username)
    r = client.post(
        f"/enterprises/{org.id}/contacts/{contact.id}/delete", data={"csrf_token": csrf2}
    )
    assert r.status_code == 404
    client.cookies.clear()
    csrf = login(client, make.user("official").username)
    r = client.post(
        f"/enterprises/{org.id}/contacts/{contact.id}/delete",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    actions = set(
        session.scalars(
            select(AuditLog.action).where(
                AuditLog.target_type == "contacts", AuditLog.target_id == str(org.id)
            )
        )
    )
    assert {"contact.create", "contact.delete", "personal.read"} <= actions
