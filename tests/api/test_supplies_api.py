"""Supplies API and pages over HTTP: scoping (a supplier sees only its own offers and orders,
an enterprise only its own requests), CSRF, upload row errors, idempotent direct purchase."""

from __future__ import annotations

import io
import re

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


API = "/api/v1/supplies"


def test_rounds_over_api_open_preview_commit_export(
    client: TestClient, session: Session, make
) -> None:
    w = world(session, make)
    offer(session, w, stock=8)
    req = request(session, w, qty=10)
    # A supplier or an enterprise may not run or see rounds.
    for who in (w.supplier, w.enterprise):
        client.cookies.clear()
        csrf = login(client, who.username)
        assert client.post(f"{API}/rounds", headers={"X-CSRF-Token": csrf}).status_code == 403
        assert client.get(f"{API}/rounds").status_code == 403
    client.cookies.clear()
    csrf = login(client, w.official.username)
    h = {"X-CSRF-Token": csrf}
    assert client.post(f"{API}/rounds").status_code == 403  # no CSRF token
    r = client.post(f"{API}/rounds", headers=h)
    assert r.status_code == 201, r.text
    rnd = r.json()
    assert (rnd["status"], rnd["requests"], rnd["offers"]) == ("draft", 1, 1)
    assert rnd["id"] in [x["id"] for x in client.get(f"{API}/rounds").json()]
    pv = client.get(f"{API}/rounds/{rnd['id']}").json()
    assert [(t["key"], t["requested"], t["allocated"]) for t in pv["tiers"]] == [("第3档", 10, 8)]
    [row] = pv["rows"]
    assert (row["request_id"], row["allocated"], row["fill"]) == (req.id, 8, 0.8)
    assert row["sources"][0]["quantity"] == 8 and row["sources"][0]["unit_price"] == 3.5
    exported = client.get(f"{API}/rounds/{rnd['id']}/export").json()
    assert exported["problem"]["requests"][0]["quantity"] == 10
    assert exported["plan"]["requests"][0]["allocated"] == 8
    xlsx = client.get(f"{API}/rounds/{rnd['id']}/export", params={"format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert client.get(f"{API}/rounds/{rnd['id']}/export?format=pdf").status_code == 422
    # An official of another district does not see the round at all.
    elsewhere = make.user("official", org=make.org(district="天河区"))
    client.cookies.clear()
    csrf2 = login(client, elsewhere.username)
    assert client.get(f"{API}/rounds/{rnd['id']}").status_code == 404
    r = client.post(f"{API}/rounds/{rnd['id']}/commit", headers={"X-CSRF-Token": csrf2})
    assert r.status_code == 404
    client.cookies.clear()
    csrf = login(client, w.official.username)
    h = {"X-CSRF-Token": csrf}
    r = client.post(f"{API}/rounds/{rnd['id']}/commit", headers=h)
    assert r.status_code == 200, r.text
    assert [(o["request_id"], o["quantity"]) for o in r.json()] == [(req.id, 8)]
    assert client.post(f"{API}/rounds/{rnd['id']}/commit", headers=h).status_code == 409
    assert client.get(f"{API}/rounds/{rnd['id']}").json()["round"]["status"] == "committed"


def test_vetting_over_api(client: TestClient, session: Session, make) -> None:
    sorg = make.org(kind="supplier", name="接口测试供应商")
    supplier = make.user("supplier", org=sorg)
    official = make.user("official")
    csrf = login(client, supplier.username)
    h = {"X-CSRF-Token": csrf}
    bad = {"documents": [{"type": "medical_device", "name": "备案凭证", "number": "粤械2020"}]}
    r = client.post(f"{API}/suppliers/vetting", json=bad, headers=h)
    assert r.status_code == 422 and "营业执照" in r.text
    docs = {"documents": [{"type": "licence", "name": "营业执照", "number": "91440112MA5X"}]}
    r = client.post(f"{API}/suppliers/vetting", json=docs, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "pending"
    assert [s["organisation_id"] for s in client.get(f"{API}/suppliers").json()] == [sorg.id]
    # The supplier cannot approve itself.
    r = client.post(f"{API}/suppliers/{sorg.id}/review", json={"approve": True}, headers=h)
    assert r.status_code == 403
    client.cookies.clear()
    h = {"X-CSRF-Token": login(client, official.username)}
    r = client.post(f"{API}/suppliers/{sorg.id}/review", json={"approve": False}, headers=h)
    assert r.status_code == 422 and "原因" in r.text
    r = client.post(
        f"{API}/suppliers/{sorg.id}/review",
        json={"approve": False, "reason": "执照号码无法核实"},
        headers=h,
    )
    assert r.status_code == 200 and r.json()["status"] == "refused"
    assert r.json()["reason"] == "执照号码无法核实"
    assert (
        client.post(f"{API}/suppliers/999999/review", json={"approve": True}, headers=h).status_code
        == 404
    )


def test_price_caps_pre_prices_and_flag_clearing_over_api(
    client: TestClient, session: Session, make
) -> None:
    w = world(session, make)
    cap = {"mode": "margin", "margin": 0.3}
    csrf = login(client, w.supplier.username)
    hs = {"X-CSRF-Token": csrf}
    assert client.put(f"{API}/price-caps/mask_kn95", json=cap, headers=hs).status_code == 403
    body = {
        "item": "mask_kn95",
        "unit_price": 2.5,
        "invoice_no": "44001912030001",
        "invoice_date": "2019-12-03",
    }
    late = body | {"invoice_date": "2020-02-01"}
    r = client.post(f"{API}/pre-epidemic-prices", json=late, headers=hs)
    assert r.status_code == 422 and "invoice_date" in r.text
    r = client.post(f"{API}/pre-epidemic-prices", json=body, headers=hs)
    assert r.status_code == 201 and r.json()["status"] == "pending"
    price_id = r.json()["id"]
    r = client.post(
        f"{API}/pre-epidemic-prices/{price_id}/review", json={"approve": True}, headers=hs
    )
    assert r.status_code == 403
    r = client.post(
        f"{API}/offers",
        json={"item": "mask_kn95", "stock": 10, "unit_price": 3.6, "districts": ["黄埔区"]},
        headers=hs,
    )
    offer_id = r.json()["id"]

    client.cookies.clear()
    ho = {"X-CSRF-Token": login(client, w.official.username)}
    r = client.put(f"{API}/price-caps/mask_kn95", json={"mode": "margin"}, headers=ho)
    assert r.status_code == 422 and "加价率" in r.text
    r = client.put(f"{API}/price-caps/mask_kn95", json=cap, headers=ho)
    assert r.status_code == 200 and (r.json()["mode"], r.json()["margin"]) == ("margin", 0.3)
    assert {c["item_code"]: c["mode"] for c in client.get(f"{API}/price-caps").json()} == {
        "mask_kn95": "margin"
    }
    flagged = client.get(f"{API}/offers", params={"status": "flagged"}).json()
    assert [o["id"] for o in flagged] == [offer_id]
    assert "待人工核查" in flagged[0]["flag_reason"]
    pending = client.get(f"{API}/pre-epidemic-prices", params={"status": "pending"}).json()
    assert price_id in [p["id"] for p in pending]
    r = client.post(
        f"{API}/pre-epidemic-prices/{price_id}/review", json={"approve": True}, headers=ho
    )
    assert r.status_code == 200 and r.json()["status"] == "approved"
    # 3.6 > 2.5 x 1.3 = 3.25: still flagged, now naming the margin rule and the cap.
    [o] = [o for o in client.get(f"{API}/offers").json() if o["id"] == offer_id]
    assert o["status"] == "flagged" and "限价 3.25 元" in o["flag_reason"]
    client.cookies.clear()
    hs = {"X-CSRF-Token": login(client, w.supplier.username)}
    r = client.post(f"{API}/offers/{offer_id}/clear", json={"reason": "自己说没问题"}, headers=hs)
    assert r.status_code == 403
    client.cookies.clear()
    ho = {"X-CSRF-Token": login(client, w.official.username)}
    r = client.post(f"{API}/offers/{offer_id}/clear", json={"reason": ""}, headers=ho)
    assert r.status_code == 422
    r = client.post(f"{API}/offers/{offer_id}/clear", json={"reason": "原料涨价有据"}, headers=ho)
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert (
        client.post(f"{API}/offers/{offer_id}/clear", json={"reason": "x"}, headers=ho).status_code
        == 409
    )


def test_policy_and_supplier_pages_set_caps_and_pre_prices(
    client: TestClient, session: Session, make
) -> None:
    w = world(session, make)
    csrf = login(client, w.supplier.username)
    form = {"csrf_token": csrf, "item": "gloves", "unit_price": "0.3", "invoice_no": "X"}
    r = client.post("/supplies/suppliers/pre-prices", data=form | {"invoice_date": "2019-10-01"})
    assert r.status_code == 422
    assert re.search(r'name="invoice_no"[^>]*value="X"><span class="field-error">', r.text)
    form |= {"invoice_no": "INV-001", "invoice_date": "2019-10-01"}
    r = client.post("/supplies/suppliers/pre-prices", data=form, follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/supplies/suppliers").text
    assert "INV-001" in page and "待审核" in page
    client.cookies.clear()
    csrf = login(client, w.official.username)
    data = {"csrf_token": csrf, "item": "gloves", "mode": "margin", "margin": "20", "factor": ""}
    r = client.post("/supplies/price-caps", data=data, follow_redirects=False)
    assert r.status_code == 303
    assert "疫情前价格 × 1.2" in client.get("/supplies/policy").text
    r = client.post("/supplies/price-caps", data=data | {"margin": "abc"})
    assert r.status_code == 422 and "加价率应为数字" in r.text
    [row] = services_pre_prices(session, w)
    r = client.post(
        f"/supplies/suppliers/pre-prices/{row.id}/review",
        data={"csrf_token": csrf, "decision": "approve", "reason": ""},
        follow_redirects=False,
    )
    assert r.status_code == 303
    session.refresh(row)
    assert row.status == "approved"


def services_pre_prices(session: Session, w) -> list:
    from fugong.supplies import queries

    return queries.pre_prices(session, actor=w.supplier)


def test_offer_upload_takes_the_optional_pre_epidemic_columns(
    client: TestClient, session: Session, make
) -> None:
    w = world(session, make)
    h = {"X-CSRF-Token": login(client, w.supplier.username)}
    head = "物资,库存,单价,供货区,疫情前单价,疫情前发票号,疫情前发票日期\n"
    bad = head + "一次性手套,100,0.4,黄埔区,0.3,INV-9,2020-03-01\n84 消毒液,5,8,黄埔区,6,,\n"
    r = client.post(
        f"{API}/offers/upload", files={"file": ("o.csv", bad.encode(), "text/csv")}, headers=h
    )
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert {e["row"] for e in errors} == {2, 3}
    assert any(e["row"] == 2 and "2020-01-23" in e["message"] for e in errors)
    assert any(e["row"] == 3 and "一并填写" in e["message"] for e in errors)
    assert services_pre_prices(session, w) == []
    good = head + "一次性手套,100,0.4,黄埔区,0.3,INV-9,2019-12-01\n84 消毒液,5,8,黄埔区,,,\n"
    r = client.post(
        f"{API}/offers/upload", files={"file": ("o.csv", good.encode(), "text/csv")}, headers=h
    )
    assert r.status_code == 201 and r.json()["created"] == 2
    got = [(p.item_code, p.unit_price, p.invoice_no) for p in services_pre_prices(session, w)]
    assert got == [("gloves", 0.3, "INV-9")]
