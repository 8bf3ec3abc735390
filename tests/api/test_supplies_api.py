"""Supplies API and pages over HTTP: scoping (a supplier sees only its own offers and orders,
an enterprise only its own requests), CSRF, upload row errors, idempotent direct purchase."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from fugong.supplies import services
from tests.api.conftest import login
from tests.integration.test_supplies_services import offer, request, world


def test_supplier_sees_only_its_own_offers_and_orders(
    client: TestClient, session: Session, make
) -> None:
    a, b = world(session, make), world(session, make)
    # Stock for exactly one request each, so both suppliers get an order.
    mine, theirs = offer(session, a, stock=10), offer(session, b, stock=10)
    request(session, a, qty=10)
    request(session, b, qty=10)
    rnd = services.open_round(session, actor=a.official)
    services.commit_round(session, round_id=rnd.id, actor=a.official)
    login(client, a.supplier.username)
    offers = client.get("/api/v1/supplies/offers").json()
    assert {o["id"] for o in offers} == {mine.id}
    orders = client.get("/api/v1/supplies/orders").json()
    assert orders and {o["supplier_id"] for o in orders} == {a.supplier_org.id}
    other_order = next(o for o in services_orders(session, b) if o.supplier_id == b.supplier_org.id)
    assert client.get(f"/api/v1/supplies/orders/{other_order.id}").status_code == 404
    assert client.get("/api/v1/supplies/requests").json() == []
    del theirs


def services_orders(session: Session, w) -> list:
    from fugong.supplies import queries

    return queries.list_orders(session, actor=w.supplier)


def test_enterprise_sees_only_its_requests(client: TestClient, session: Session, make) -> None:
    a, b = world(session, make), world(session, make)
    ra = request(session, a, item="alcohol_75", qty=3)
    rb = request(session, b, item="alcohol_75", qty=3)
    login(client, a.enterprise.username)
    got = client.get("/api/v1/supplies/requests").json()
    assert [r["id"] for r in got] == [ra.id]
    assert client.get(f"/api/v1/supplies/requests/{rb.id}").status_code == 404
    assert "第三档" in got[0]["explanation"]


def test_api_writes_need_csrf_and_requests_get_tier(
    client: TestClient, session: Session, make
) -> None:
    w = world(session, make)
    csrf = login(client, w.enterprise.username)
    body = {
        "enterprise_id": w.ent_org.id,
        "item": "75% 酒精",
        "quantity": 4,
        "needed_by": "2099-01-01",
        "purpose": "消毒",
    }
    assert client.post("/api/v1/supplies/requests", json=body).status_code == 403
    r = client.post("/api/v1/supplies/requests", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    assert r.json()["tier"] == 3 and r.json()["approved_qty"] == 4


def test_direct_purchase_retry_makes_one_order(client: TestClient, session: Session, make) -> None:
    w = world(session, make)
    o = offer(session, w, stock=5)
    csrf = login(client, w.enterprise.username)
    body = {
        "offer_id": o.id,
        "enterprise_id": w.ent_org.id,
        "quantity": 2,
        "idempotency_key": "retry-1234",
    }
    h = {"X-CSRF-Token": csrf}
    first = client.post("/api/v1/supplies/orders/direct", json=body, headers=h)
    again = client.post("/api/v1/supplies/orders/direct", json=body, headers=h)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    big = {**body, "quantity": 4, "idempotency_key": "retry-5678"}
    assert client.post("/api/v1/supplies/orders/direct", json=big, headers=h).status_code == 409


def test_upload_reports_row_errors_and_writes_nothing(
    client: TestClient, session: Session, make
) -> None:
    w = world(session, make)
    csrf = login(client, w.supplier.username)
    h = {"X-CSRF-Token": csrf}
    csv = "物资,库存,单价,供货区\n医用外科口罩,100,0.8,黄埔区\n未知物资,-5,1,黄埔区\n"
    r = client.post(
        "/api/v1/supplies/offers/upload",
        files={"file": ("offers.csv", csv.encode(), "text/csv")},
        headers=h,
    )
    assert r.status_code == 422 and "第3行" in r.text
    assert client.get("/api/v1/supplies/offers").json() == []
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["item", "stock", "unit_price", "districts"])
    ws.append(["一次性手套", 1000, 0.5, "黄埔区,天河区"])
    buf = io.BytesIO()
    wb.save(buf)
    r = client.post(
        "/api/v1/supplies/offers/upload",
        files={"file": ("offers.xlsx", buf.getvalue(), "application/octet-stream")},
        headers=h,
    )
    assert r.status_code == 201 and r.json() == {"created": 1}
    [row] = client.get("/api/v1/supplies/offers").json()
    assert row["districts"] == ["黄埔区", "天河区"]


def test_order_actions_over_api(client: TestClient, session: Session, make) -> None:
    w = world(session, make)
    offer(session, w, stock=5)
    request(session, w, qty=5)
    rnd = services.open_round(session, actor=w.official)
    [order] = services.commit_round(session, round_id=rnd.id, actor=w.official)
    csrf = login(client, w.supplier.username)
    h = {"X-CSRF-Token": csrf}
    r = client.post(f"/api/v1/supplies/orders/{order.id}/ship", json={}, headers=h)
    assert r.status_code == 422
    r = client.post(
        f"/api/v1/supplies/orders/{order.id}/ship", json={"tracking_no": "SF001"}, headers=h
    )
    assert r.status_code == 200 and r.json()["status"] == "shipped"
    r = client.post(f"/api/v1/supplies/orders/{order.id}/deliver", json={}, headers=h)
    assert r.status_code == 403


def test_pages_render_for_each_role_and_forms_need_csrf(
    client: TestClient, session: Session, make
) -> None:
    w = world(session, make)
    offer(session, w, stock=5)
    req = request(session, w, qty=5)
    pages = {
        w.official: [
            "/supplies",
            "/supplies/offers",
            "/supplies/rounds",
            "/supplies/suppliers",
            "/supplies/policy",
            "/supplies/requests",
            "/supplies/orders",
        ],
        w.supplier: ["/supplies", "/supplies/offers", "/supplies/orders", "/supplies/suppliers"],
        w.enterprise: ["/supplies", "/supplies/requests/new", f"/supplies/requests/{req.id}"],
    }
    for who, urls in pages.items():
        client.cookies.clear()
        login(client, who.username)
        for url in urls:
            r = client.get(url)
            assert r.status_code == 200, (who.username, url, r.text[:300])
    assert client.get("/supplies/rounds").status_code == 403  # enterprise
    r = client.post("/supplies/requests/new", data={"item": "gloves"})
    assert r.status_code == 403  # no CSRF token


def test_round_pages_preview_commit_and_export(client: TestClient, session: Session, make) -> None:
    w = world(session, make)
    offer(session, w, stock=8)
    request(session, w, qty=10)
    csrf = login(client, w.official.username)
    r = client.post("/supplies/rounds", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    url = r.headers["location"].split("?")[0]
    page = client.get(url).text
    assert "80%" in page and "提交并生成订单" in page
    r = client.post(f"{url}/commit", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert "已提交" in client.get(url).text
    exported = client.get(f"{url}/export", params={"format": "json"}).json()
    assert exported["plan"]["requests"][0]["allocated"] == 8
    assert client.get(f"{url}/export", params={"format": "xlsx"}).content[:2] == b"PK"


def test_offer_page_upload_shows_row_errors(client: TestClient, session: Session, make) -> None:
    w = world(session, make)
    csrf = login(client, w.supplier.username)
    csv = "物资,库存,单价,供货区\n医用外科口罩,abc,0.8,黄埔区\n"
    r = client.post(
        "/supplies/offers/upload",
        data={"csrf_token": csrf},
        files={"file": ("o.csv", csv.encode(), "text/csv")},
    )
    assert r.status_code == 422 and "第2行" in r.text


def test_desk_supplies_need_becomes_a_request(client: TestClient, session: Session, make) -> None:
    from fugong.desk import services as desk_services
    from fugong.desk.schemas import NeedCreate
    from fugong.supplies.models import SupplyRequest

    w = world(session, make)
    need = desk_services.create_need(
        session,
        actor=w.manager,
        data=NeedCreate(
            organisation_id=w.ent_org.id,
            need_type="supplies",
            urgency="urgent",
            description="急需 75% 酒精 20 升",
        ),
    )
    csrf = login(client, w.manager.username)
    assert 'id="to-supplies"' in client.get(f"/desk/needs/{need.id}").text
    r = client.post(
        f"/desk/needs/{need.id}/supplies-request", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/supplies/requests/new?")
    form = client.get(r.headers["location"]).text
    assert f'name="need_id" value="{need.id}"' in form and "急需 75% 酒精" in form
    r = client.post(
        "/supplies/requests/new",
        data={
            "csrf_token": csrf,
            "need_id": str(need.id),
            "enterprise_id": str(w.ent_org.id),
            "item": "alcohol_75",
            "quantity": "20",
            "needed_by": "2099-01-01",
            "purpose": "急需 75% 酒精 20 升",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    session.expire_all()
    req = session.scalars(
        select(SupplyRequest).where(SupplyRequest.enterprise_id == w.ent_org.id)
    ).one()
    assert need.linked_ref == f"supplies_request:{req.id}" and need.status == "in_progress"
    assert f"/supplies/requests/{req.id}" in client.get(f"/desk/needs/{need.id}").text


def test_requests_not_shipped_within_24_hours_are_highlighted(
    client: TestClient, session: Session, make
) -> None:
    from datetime import UTC, datetime, timedelta

    w = world(session, make)
    old = request(session, w, item="alcohol_75", qty=3)
    fresh = request(session, w, item="gloves", qty=3)
    old.created_at = datetime.now(UTC) - timedelta(hours=30)
    session.flush()
    login(client, w.official.username)
    dash = client.get("/supplies").text
    late_list = dash.split('id="late-list"')[1].split("</ul>")[0]
    assert f"申请 #{old.id}" in late_list and f"申请 #{fresh.id}" not in late_list
    rows = client.get("/supplies/requests").text
    assert (
        f'<tr class="overdue"><td data-label="编号"><a href="/supplies/requests/{old.id}"' in rows
    )
