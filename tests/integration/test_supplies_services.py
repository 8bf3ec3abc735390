"""Supplies services on the real databases: vetting, price caps, offers and their upload,
requests with tier and cap, rounds, orders, direct purchases under concurrency."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from fugong.core.models import AuditLog, Notification, Organisation, User
from fugong.db import migrate
from fugong.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fugong.supplies import queries, services
from fugong.supplies.models import Offer, PreEpidemicPrice, SupplyOrder, SupplyRequest
from fugong.supplies.schemas import (
    DirectPurchase,
    OfferCreate,
    PreEpidemicPriceCreate,
    RequestCreate,
    VettingDocument,
)
from tests.conftest import pg_engine

LICENCE = VettingDocument(type="licence", name="营业执照", number="91440112MA5ABCDE1X")
MEDICAL = VettingDocument(type="medical_device", name="医疗器械经营备案", number="粤穗械备2020")


@dataclass
class World:
    official: User
    supplier: User
    supplier_org: Organisation
    enterprise: User
    ent_org: Organisation
    manager: User


def world(session: Session, make: Any, *, approve: bool = True, **ent: Any) -> World:
    official = make.user("official")
    manager = make.user("manager")
    sorg = make.org(kind="supplier", name=f"测试防疫物资{uuid.uuid4().hex[:6]}公司")
    supplier = make.user("supplier", org=sorg)
    facts = {
        "key_category": None,
        "headcount": 50,
        "resumption_status": "not_resumed",
        "resumption_date": None,
        "staff_back_pct": None,
        "manager": manager.username,
    }
    facts.update(ent)
    eorg = make.enterprise(**facts)
    enterprise = make.user("enterprise", org=eorg)
    services.submit_vetting(session, documents=[LICENCE, MEDICAL], actor=supplier)
    if approve:
        services.review_vetting(
            session, organisation_id=sorg.id, approve=True, reason=None, actor=official
        )
    return World(official, supplier, sorg, enterprise, eorg, manager)


def offer(
    session: Session, w: World, item: str = "mask_kn95", stock: int = 100, **kw: Any
) -> Offer:
    data = {"item": item, "stock": stock, "unit_price": 3.5, "districts": ["黄埔区"], **kw}
    return services.create_offer(session, data=OfferCreate(**data), actor=w.supplier)


def request(
    session: Session, w: World, item: str = "mask_kn95", qty: int = 100, actor: User | None = None
) -> SupplyRequest:
    return services.create_request(
        session,
        actor=actor or w.enterprise,
        data=RequestCreate(
            enterprise_id=w.ent_org.id,
            item=item,
            quantity=qty,
            needed_by=date.today() + timedelta(days=3),
            purpose="复工防护",
        ),
    )


def test_vetting_refusal_needs_reason_and_notifies(session: Session, make) -> None:
    w = world(session, make, approve=False)
    with pytest.raises(ValidationFailed, match="原因"):
        services.review_vetting(
            session, organisation_id=w.supplier_org.id, approve=False, reason=" ", actor=w.official
        )
    with pytest.raises(PermissionDenied):
        services.review_vetting(
            session, organisation_id=w.supplier_org.id, approve=True, reason=None, actor=w.supplier
        )
    v = services.review_vetting(
        session,
        organisation_id=w.supplier_org.id,
        approve=False,
        reason="执照已过期",
        actor=w.official,
    )
    assert v.status == "refused" and v.reviewed_by_id == w.official.id
    note = session.scalar(select(Notification).where(Notification.user_id == w.supplier.id))
    assert note is not None and "执照已过期" in note.text


def test_offer_needs_registration_for_medical_items(session: Session, make) -> None:
    official = make.user("official")
    sorg = make.org(kind="supplier")
    supplier = make.user("supplier", org=sorg)
    with pytest.raises(ValidationFailed, match="资质"):
        services.create_offer(
            session,
            actor=supplier,
            data=OfferCreate(item="mask_kn95", stock=1, unit_price=3, districts=["黄埔区"]),
        )
    services.submit_vetting(session, documents=[LICENCE], actor=supplier)
    with pytest.raises(ValidationFailed, match="医疗器械注册证"):
        services.create_offer(
            session,
            actor=supplier,
            data=OfferCreate(item="KN95/N95 口罩", stock=1, unit_price=3, districts=["黄埔区"]),
        )
    ok = services.create_offer(
        session,
        actor=supplier,
        data=OfferCreate(item="84 消毒液", stock=5, unit_price=8, districts="黄埔区、天河区"),
    )
    assert ok.item_code == "disinfectant_84" and ok.districts == ["黄埔区", "天河区"]
    del official


def test_price_cap_flags_and_official_clears_with_reason(session: Session, make) -> None:
    w = world(session, make)
    cheap = offer(session, w, unit_price=4.0)
    services.set_price_cap(session, item_code="mask_kn95", factor=1.5, actor=w.official)
    dear = offer(session, w, unit_price=9.0)
    assert cheap.status == "active"  # 4.0 <= 3.5 x 1.5
    assert dear.status == "flagged" and "限价 5.25" in (dear.flag_reason or "")
    request(session, w, qty=500)
    rnd = services.open_round(session, actor=w.official)
    assert [o["id"] for o in rnd.problem["offers"]] == [f"O{cheap.id}"]  # flagged left out
    with pytest.raises(ValidationFailed):
        services.clear_offer(session, offer_id=dear.id, reason="", actor=w.official)
    with pytest.raises(PermissionDenied):
        services.clear_offer(session, offer_id=dear.id, reason="x", actor=w.supplier)
    services.clear_offer(session, offer_id=dear.id, reason="进口原料成本核实", actor=w.official)
    assert dear.status == "active" and dear.cleared_by_id == w.official.id
    assert (
        services.open_round(session, actor=w.official).problem["offers"][1]["id"] == f"O{dear.id}"
    )


def test_tier_cap_and_explanation(session: Session, make) -> None:
    w = world(session, make, key_category="epidemic", headcount=10)
    req = request(session, w, qty=500)
    # Masks: 2 per employee per working day x 10 people x 5 working days = 100.
    assert (req.tier, req.cap, req.requested_qty, req.approved_qty) == (1, 100, 500, 100)
    assert "防疫必需" in req.explanation and "= 100" in req.explanation
    soon = world(
        session,
        make,
        resumption_status="approved",
        resumption_date=date.today() + timedelta(days=3),
    )
    assert request(session, soon, item="alcohol_75", qty=30).tier == 2
    other = world(session, make)
    r3 = request(session, other, item="alcohol_75", qty=30)
    assert (r3.tier, r3.cap, r3.approved_qty) == (3, None, 30)


def test_frequency_limit_and_policy_edit(session: Session, make) -> None:
    w = world(session, make)
    request(session, w, item="alcohol_75", qty=5)
    with pytest.raises(ValidationFailed, match="7 天内"):
        request(session, w, item="alcohol_75", qty=5)
    with pytest.raises(ValidationFailed, match="未知的政策项"):
        services.set_policy(session, doc={"bogus": 1}, actor=w.official)
    services.set_policy(session, doc={"frequency_days": 0, "caps": {}}, actor=w.official)
    assert request(session, w, item="alcohol_75", qty=5).status == "open"
    assert request(session, w, item="mask_kn95", qty=5000).approved_qty == 5000  # no caps now


def test_manager_requests_on_behalf_and_enterprise_is_told(session: Session, make) -> None:
    w = world(session, make)
    req = request(session, w, item="alcohol_75", qty=5, actor=w.manager)
    assert req.created_by_id == w.manager.id
    note = session.scalar(select(Notification).where(Notification.user_id == w.enterprise.id))
    assert note is not None and "代为申请" in note.text
    stranger = make.user("manager")
    with pytest.raises(NotFound):
        request(session, w, item="gloves", qty=5, actor=stranger)


def test_round_commit_creates_orders_takes_stock_and_carries_forward(
    session: Session, make
) -> None:
    w = world(session, make, headcount=100)
    o = offer(session, w, stock=60)
    req = request(session, w, qty=100)
    rnd = services.open_round(session, actor=w.official)
    assert rnd.status == "draft" and rnd.plan["requests"][0]["allocated"] == 60
    preview = queries.round_preview(session, rnd)
    assert preview.rows[0].allocated == 60 and preview.rows[0].sources[0][1] == 60
    assert preview.tiers[0].requested == 100
    orders = services.commit_round(session, round_id=rnd.id, actor=w.official)
    session.refresh(o)
    assert [x.quantity for x in orders] == [60] and o.stock == 0
    assert (req.status, req.allocated_qty, req.carried_forward) == ("partly", 60, 40)
    assert req.allocated_at is not None
    with pytest.raises(Conflict):
        services.commit_round(session, round_id=rnd.id, actor=w.official)
    # More stock arrives: the unmet 40 carry into the next round.
    offer(session, w, stock=100)
    rnd2 = services.open_round(session, actor=w.official)
    assert rnd2.problem["requests"] == [
        {
            "id": f"R{req.id}",
            "enterprise": f"E{w.ent_org.id}",
            "item": "mask_kn95",
            "quantity": 40,
            "tier": 3,
            "region": "黄埔区",
            "max_unit_price": None,
        }
    ]
    services.commit_round(session, round_id=rnd2.id, actor=w.official)
    assert (req.status, req.carried_forward) == ("allocated", 0)
    assert b'"problem"' in queries.round_json(rnd2)
    assert queries.round_xlsx(session, rnd2)[:2] == b"PK"


def test_commit_refused_when_stock_moved_after_preview(session: Session, make) -> None:
    w = world(session, make)
    o = offer(session, w, stock=10)
    request(session, w, qty=10)
    rnd = services.open_round(session, actor=w.official)
    services.buy_direct(
        session,
        actor=w.enterprise,
        data=DirectPurchase(
            offer_id=o.id, enterprise_id=w.ent_org.id, quantity=5, idempotency_key="k" * 20
        ),
    )
    with pytest.raises(Conflict, match="重新生成"):
        services.commit_round(session, round_id=rnd.id, actor=w.official)


def test_order_lifecycle_times_and_permissions(session: Session, make) -> None:
    w = world(session, make)
    offer(session, w, stock=100)
    req = request(session, w, qty=50)
    rnd = services.open_round(session, actor=w.official)
    [order] = services.commit_round(session, round_id=rnd.id, actor=w.official)
    with pytest.raises(PermissionDenied):
        services.order_action(session, order_id=order.id, action="confirm", actor=w.enterprise)
    with pytest.raises(Conflict):
        services.order_action(session, order_id=order.id, action="deliver", actor=w.enterprise)
    services.order_action(session, order_id=order.id, action="confirm", actor=w.supplier)
    with pytest.raises(ValidationFailed, match="物流单号"):
        services.order_action(session, order_id=order.id, action="ship", actor=w.supplier)
    services.order_action(
        session, order_id=order.id, action="ship", actor=w.supplier, tracking_no="SF1234567890"
    )
    assert req.shipped_at is not None
    with pytest.raises(PermissionDenied):
        services.order_action(session, order_id=order.id, action="deliver", actor=w.supplier)
    services.order_action(session, order_id=order.id, action="deliver", actor=w.enterprise)
    assert order.status == "delivered" and req.status == "fulfilled" and req.delivered_at
    rows = queries.response_times(session, actor=w.official, by="item")
    row = next(r for r in rows if r.key == "KN95/N95 口罩")
    assert row.median_delivery_h is not None and row.median_delivery_h >= 0 and row.late == 0
    actions = set(
        session.scalars(
            select(AuditLog.action).where(
                AuditLog.target_type == "order", AuditLog.target_id == str(order.id)
            )
        )
    )
    assert {"order.create", "order.confirm", "order.ship", "order.deliver"} <= actions
    texts = session.scalars(
        select(Notification.text).where(Notification.user_id == w.enterprise.id)
    )
    assert any("已发货" in t for t in texts)


def test_cancel_returns_stock_and_demand(session: Session, make) -> None:
    w = world(session, make)
    o = offer(session, w, stock=30)
    req = request(session, w, qty=30)
    rnd = services.open_round(session, actor=w.official)
    [order] = services.commit_round(session, round_id=rnd.id, actor=w.official)
    with pytest.raises(ValidationFailed, match="原因"):
        services.order_action(session, order_id=order.id, action="cancel", actor=w.supplier)
    services.order_action(
        session, order_id=order.id, action="cancel", actor=w.supplier, reason="仓库受损"
    )
    session.refresh(o)
    assert o.stock == 30 and order.cancel_reason == "仓库受损"
    assert (req.status, req.allocated_qty, req.carried_forward) == ("open", 0, 30)


def test_direct_purchase_idempotent_and_never_negative(session: Session, make) -> None:
    w = world(session, make)
    o = offer(session, w, stock=10)
    buy = DirectPurchase(
        offer_id=o.id, enterprise_id=w.ent_org.id, quantity=7, idempotency_key="a" * 16
    )
    first = services.buy_direct(session, data=buy, actor=w.enterprise)
    again = services.buy_direct(session, data=buy, actor=w.enterprise)
    assert first.id == again.id
    session.refresh(o)
    assert o.stock == 3
    with pytest.raises(Conflict, match="库存不足"):
        services.buy_direct(
            session,
            actor=w.enterprise,
            data=buy.model_copy(update={"idempotency_key": "b" * 16}),
        )
    session.refresh(o)
    assert o.stock == 3
    with pytest.raises(Conflict, match="幂等键"):
        services.buy_direct(
            session, actor=w.enterprise, data=buy.model_copy(update={"quantity": 1})
        )


def test_upload_is_all_or_nothing_with_row_errors(session: Session, make) -> None:
    w = world(session, make)
    rows = [
        {"item": "医用外科口罩", "stock": "1000", "unit_price": "0.8", "districts": "黄埔区"},
        {"item": "口罩王", "stock": "-1", "unit_price": "x", "districts": "火星区"},
    ]
    report = services.import_offers(session, rows=rows, actor=w.supplier)
    assert report.created == 0
    assert {(e.row, e.field) for e in report.errors} >= {(3, "item"), (3, "stock")}
    assert (
        session.scalar(select(func.count(Offer.id)).where(Offer.supplier_id == w.supplier_org.id))
        == 0
    )
    report = services.import_offers(session, rows=rows[:1], actor=w.supplier)
    assert report.created == 1 and not report.errors


def test_scoping_supplier_and_enterprise(session: Session, make) -> None:
    w = world(session, make)
    other = world(session, make)
    offer(session, w, stock=10)
    offer(session, other, stock=10)
    request(session, w, item="alcohol_75", qty=1)
    request(session, other, item="alcohol_75", qty=1)
    mine = queries.list_offers(session, actor=w.supplier)
    assert {o.supplier_id for o in mine} == {w.supplier_org.id}
    reqs = queries.list_requests(session, actor=w.enterprise)
    assert {r.enterprise_id for r in reqs} == {w.ent_org.id}
    assert queries.list_requests(session, actor=w.supplier) == []
    stock = {s.code: s for s in queries.stock_and_shortage(session, actor=w.official)}
    assert stock["alcohol_75"].demand >= 2 and stock["alcohol_75"].shortage >= 2


@pytest.fixture
def pg_only(engine: Engine) -> Engine:
    if engine.dialect.name != "postgresql":
        pytest.skip("concurrency needs PostgreSQL's row locks; SQLite serialises writers")
    return engine


def test_concurrent_direct_purchases_sell_exactly_the_stock(pg_only: Engine) -> None:
    """Many buyers at once, each in its own transaction on its own connection: exactly the
    stock is sold, never more, and the stock never goes negative. A schema of its own, since
    the rows must be committed for other connections to see them."""
    with pg_engine("fugong_conc") as eng:
        migrate.upgrade(eng)
        factory = sessionmaker(bind=eng, expire_on_commit=False)
        with factory.begin() as s:
            from tests.conftest import Factory

            make = Factory(s)
            w = world(s, make)
            o = offer(s, w, stock=50)
            ids = (o.id, w.ent_org.id, w.enterprise.id)
        offer_id, ent_id, user_id = ids
        outcomes: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(20)

        def buyer(n: int) -> None:
            start.wait()
            for k in range(5):
                with factory() as s:
                    actor = s.get(User, user_id)
                    assert actor is not None
                    try:
                        services.buy_direct(
                            s,
                            actor=actor,
                            data=DirectPurchase(
                                offer_id=offer_id,
                                enterprise_id=ent_id,
                                quantity=1,
                                idempotency_key=f"buyer-{n}-{k}-xxxx",
                            ),
                        )
                        s.commit()
                        result = "sold"
                    except Conflict:
                        s.rollback()
                        result = "refused"
                with lock:
                    outcomes.append(result)

        threads = [threading.Thread(target=buyer, args=(n,)) for n in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with factory() as s:
            sold = s.scalar(select(func.sum(SupplyOrder.quantity)))
            stock = s.scalar(select(Offer.stock).where(Offer.id == offer_id))
        assert outcomes.count("sold") == 50 and outcomes.count("refused") == 50
        assert sold == 50 and stock == 0


def test_offers_need_an_approved_supplier_with_registration_on_file(session: Session, make) -> None:
    w = world(session, make)
    mask = offer(session, w, stock=10)
    spray = offer(session, w, item="alcohol_75", stock=10, unit_price=20)
    request(session, w, qty=10)
    services.submit_vetting(session, documents=[LICENCE], actor=w.supplier)  # back to pending
    assert services.open_round(session, actor=w.official).problem["offers"] == []
    services.review_vetting(
        session, organisation_id=w.supplier_org.id, approve=True, reason=None, actor=w.official
    )
    offered = [o["id"] for o in services.open_round(session, actor=w.official).problem["offers"]]
    assert offered == [f"O{spray.id}"]  # masks need the medical-device registration
    del mask


def pre_price(
    session: Session, w: World, item: str = "mask_kn95", price: float = 2.0
) -> PreEpidemicPrice:
    data = PreEpidemicPriceCreate(
        item=item, unit_price=price, invoice_no="44001912030001", invoice_date=date(2019, 12, 3)
    )
    return services.submit_pre_price(session, data=data, actor=w.supplier)


def test_margin_cap_uses_the_reviewed_pre_epidemic_price(session: Session, make) -> None:
    w = world(session, make)
    row = pre_price(session, w, price=2.0)
    assert row.status == "pending"
    # Margin 50% over 2.00 = 3.00; no factor, so without an approved price nothing to measure.
    services.set_price_cap(
        session, item_code="mask_kn95", mode="margin", margin=0.5, actor=w.official
    )
    o = offer(session, w, unit_price=2.8)
    assert o.status == "flagged"
    assert "未登记经审核的疫情前价格" in (o.flag_reason or "") and "50%" in (o.flag_reason or "")
    with pytest.raises(PermissionDenied):
        services.review_pre_price(
            session, price_id=row.id, approve=True, reason=None, actor=w.supplier
        )
    # Approval re-checks the supplier's offers: 2.8 <= 3.00, so the flag is cleared, with why.
    services.review_pre_price(session, price_id=row.id, approve=True, reason=None, actor=w.official)
    assert o.status == "active" and "疫情前价格 2 元经审核通过" in (o.clear_reason or "")
    dear = offer(session, w, unit_price=3.2)
    assert dear.status == "flagged"
    assert "限价 3 元" in (dear.flag_reason or "") and "疫情前价格 2 元" in (dear.flag_reason or "")
    actions = set(
        session.scalars(
            select(AuditLog.action).where(
                AuditLog.action.in_(
                    ("supplier.pre_price_submit", "supplier.pre_price_review", "offer.clear")
                )
            )
        )
    )
    assert actions == {"supplier.pre_price_submit", "supplier.pre_price_review", "offer.clear"}


def test_margin_cap_falls_back_to_the_factor_without_a_price(session: Session, make) -> None:
    w = world(session, make)
    services.set_price_cap(
        session, item_code="mask_kn95", mode="margin", margin=0.2, factor=1.5, actor=w.official
    )
    within = offer(session, w, unit_price=5.0)  # 3.5 x 1.5 = 5.25
    over = offer(session, w, unit_price=5.5)
    assert within.status == "active"
    assert over.status == "flagged" and "按参考价 3.5 × 1.5" in (over.flag_reason or "")
    # A refused price is no price: the fallback still applies, and refusing needs a reason.
    row = pre_price(session, w, price=1.0)
    with pytest.raises(ValidationFailed, match="原因"):
        services.review_pre_price(
            session, price_id=row.id, approve=False, reason="", actor=w.official
        )
    services.review_pre_price(
        session, price_id=row.id, approve=False, reason="发票与品名不符", actor=w.official
    )
    assert row.status == "refused" and within.status == "active"
    # Resubmitting goes back to review; approving 1.00 x 1.2 = 1.20 flags the 5.00 offer.
    row = pre_price(session, w, price=4.5)
    row = pre_price(session, w, price=1.0)
    assert row.status == "pending" and row.reason is None
    services.review_pre_price(session, price_id=row.id, approve=True, reason=None, actor=w.official)
    assert within.status == "flagged" and "限价 1.2 元" in (within.flag_reason or "")


def test_price_cap_validation_and_constraints(session: Session, make) -> None:
    w = world(session, make)
    for kw, field in (
        ({"mode": "margin"}, "margin"),
        ({"mode": "margin", "margin": -0.1}, "margin"),
        ({"mode": "factor"}, "factor"),
        ({"mode": "factor", "factor": 0.5}, "factor"),
        ({"mode": "auction", "factor": 2.0}, "mode"),
    ):
        with pytest.raises(ValidationFailed) as exc:
            services.set_price_cap(session, item_code="gloves", actor=w.official, **kw)
        assert exc.value.errors[0].field == field, kw
    with pytest.raises(ValidationError, match="2020-01-23"):
        PreEpidemicPriceCreate(
            item="gloves", unit_price=0.3, invoice_no="A-1", invoice_date=date(2020, 2, 1)
        )
    with pytest.raises(ValidationError, match="一并填写"):
        OfferCreate(
            item="gloves", stock=1, unit_price=0.3, districts=["黄埔区"], pre_epidemic_price=0.2
        )
    # The database refuses what the edge refuses, should a write ever bypass the services.
    for sql in (
        "INSERT INTO supply_price_caps (item_code, mode, factor, margin, set_at)"
        " VALUES ('goggles', 'margin', NULL, NULL, '2020-02-01')",
        "INSERT INTO supply_price_caps (item_code, mode, factor, margin, set_at)"
        " VALUES ('goggles', 'margin', NULL, -1, '2020-02-01')",
        "INSERT INTO supply_price_caps (item_code, mode, factor, margin, set_at)"
        " VALUES ('goggles', 'other', 2, NULL, '2020-02-01')",
    ):
        with pytest.raises(IntegrityError), session.begin_nested():
            session.execute(text(sql))


def test_offer_with_pre_epidemic_price_records_it_for_review(session: Session, make) -> None:
    w = world(session, make)
    o = offer(
        session,
        w,
        item="gloves",
        unit_price=0.45,
        pre_epidemic_price="0.3",
        pre_epidemic_invoice_no="INV-2019-88",
        pre_epidemic_invoice_date="2019-11-30",
    )
    rows = queries.pre_prices(session, actor=w.supplier)
    assert [(r.item_code, r.unit_price, r.status) for r in rows] == [("gloves", 0.3, "pending")]
    other = world(session, make)
    assert queries.pre_prices(session, actor=other.supplier) == []
    assert len(queries.pre_prices(session, actor=w.official, status="pending")) >= 1
    # The same evidence again (a re-uploaded sheet) keeps the review already made.
    services.review_pre_price(
        session, price_id=rows[0].id, approve=True, reason=None, actor=w.official
    )
    offer(
        session,
        w,
        item="gloves",
        unit_price=0.45,
        pre_epidemic_price=0.3,
        pre_epidemic_invoice_no="INV-2019-88",
        pre_epidemic_invoice_date=date(2019, 11, 30),
    )
    assert rows[0].status == "approved"
    del o


def test_rounds_are_scoped_to_the_officials_district(session: Session, make) -> None:
    w = world(session, make)
    request(session, w, item="alcohol_75", qty=3)
    rnd = services.open_round(session, actor=w.official)
    elsewhere = make.user("official", org=make.org(district="天河区"))
    with pytest.raises(NotFound):
        services.get_round(session, round_id=rnd.id, actor=elsewhere)
    assert rnd.id not in {r.id for r in queries.list_rounds(session, actor=elsewhere)}
    assert rnd.id in {r.id for r in queries.list_rounds(session, actor=w.official)}
