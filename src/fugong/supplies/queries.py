"""Supplies reads: scoped lists, the round preview and its exports, stock and shortage per
item, response times per item and district, and requests not shipped within 24 hours."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fugong.core.models import Enterprise, Organisation, User
from fugong.core.permissions import enterprise_scope, require_role
from fugong.core.tabular import write_xlsx
from fugong.supplies.models import (
    AllocationRound,
    Offer,
    PreEpidemicPrice,
    PriceCap,
    SupplierVetting,
    SupplyItem,
    SupplyOrder,
    SupplyRequest,
)
from fugong.supplies.permissions import (
    READERS,
    offer_scope,
    order_scope,
    request_scope,
    round_scope,
)
from fugong.supplies.rules import SHIP_WITHIN_HOURS, WAITING


def _now() -> datetime:
    return datetime.now(UTC)


def items(session: Session) -> list[SupplyItem]:
    return list(session.scalars(select(SupplyItem).order_by(SupplyItem.reference_price)))


def price_caps(session: Session) -> dict[str, PriceCap]:
    return {c.item_code: c for c in session.scalars(select(PriceCap))}


def pre_prices(
    session: Session, *, actor: User, status: str | None = None
) -> list[PreEpidemicPrice]:
    """Pre-epidemic prices: officials, admins and auditors see all; a supplier its own."""
    require_role(actor, "admin", "official", "auditor", "supplier")
    stmt = select(PreEpidemicPrice)
    if not actor.has_role("admin", "official", "auditor"):
        stmt = stmt.where(PreEpidemicPrice.supplier_id == actor.organisation_id)
    if status is not None:
        stmt = stmt.where(PreEpidemicPrice.status == status)
    return list(session.scalars(stmt.order_by(PreEpidemicPrice.id)))


def list_offers(
    session: Session, *, actor: User, status: str | None = None, item: str | None = None
) -> list[Offer]:
    require_role(actor, *READERS)
    stmt = select(Offer).where(offer_scope(actor))
    if status:
        stmt = stmt.where(Offer.status == status)
    if item:
        stmt = stmt.where(Offer.item_code == item)
    if actor.has_role("enterprise", "manager") and not actor.has_role("admin", "official"):
        # Buyers see only what they may buy: offers of approved suppliers.
        stmt = stmt.join(
            SupplierVetting, SupplierVetting.organisation_id == Offer.supplier_id
        ).where(SupplierVetting.status == "approved")
    return list(session.scalars(stmt.order_by(Offer.item_code, Offer.unit_price, Offer.id)))


def list_requests(
    session: Session, *, actor: User, status: str | None = None, limit: int = 500
) -> list[SupplyRequest]:
    require_role(actor, *READERS)
    stmt = select(SupplyRequest).where(request_scope(actor))
    if status == "waiting":
        stmt = stmt.where(SupplyRequest.status.in_(WAITING))
    elif status:
        stmt = stmt.where(SupplyRequest.status == status)
    return list(session.scalars(stmt.order_by(SupplyRequest.id.desc()).limit(limit)))


def list_orders(
    session: Session,
    *,
    actor: User,
    status: str | None = None,
    request_id: int | None = None,
    limit: int = 500,
) -> list[SupplyOrder]:
    require_role(actor, *READERS)
    stmt = select(SupplyOrder).where(order_scope(actor))
    if status:
        stmt = stmt.where(SupplyOrder.status == status)
    if request_id is not None:
        stmt = stmt.where(SupplyOrder.request_id == request_id)
    return list(session.scalars(stmt.order_by(SupplyOrder.id.desc()).limit(limit)))


def list_rounds(session: Session, *, actor: User) -> list[AllocationRound]:
    require_role(actor, "admin", "official", "auditor")
    stmt = select(AllocationRound).where(round_scope(actor))
    return list(session.scalars(stmt.order_by(AllocationRound.id.desc())))


def vettings(session: Session, *, actor: User) -> list[tuple[Organisation, SupplierVetting | None]]:
    """Every supplier organisation with its vetting (officials); a supplier sees its own."""
    require_role(actor, "admin", "official", "auditor", "supplier")
    stmt = (
        select(Organisation, SupplierVetting)
        .outerjoin(SupplierVetting, SupplierVetting.organisation_id == Organisation.id)
        .where(Organisation.kind == "supplier")
    )
    if not actor.has_role("admin", "official", "auditor"):
        stmt = stmt.where(Organisation.id == actor.organisation_id)
    return [(o, v) for o, v in session.execute(stmt.order_by(Organisation.name))]


def names(session: Session, org_ids: set[int]) -> dict[int, str]:
    if not org_ids:
        return {}
    return dict(
        session.execute(
            select(Organisation.id, Organisation.name).where(Organisation.id.in_(org_ids))
        ).all()
    )


def late(req: SupplyRequest, now: datetime | None = None) -> bool:
    """Not shipped within 24 hours of asking (still waiting, or shipped late)."""
    if req.status == "withdrawn":
        return False
    shipped = req.shipped_at or (now or _now())
    return shipped - req.created_at > timedelta(hours=SHIP_WITHIN_HOURS)


# -- round preview -------------------------------------------------------------------------


@dataclass
class Group:
    key: str
    requested: int = 0
    allocated: int = 0

    @property
    def fill(self) -> float:
        return self.allocated / self.requested if self.requested else 1.0


@dataclass
class PreviewRow:
    request_id: int
    enterprise: str
    item: str
    district: str
    tier: int
    requested: int
    allocated: int
    fill: float
    sources: list[tuple[str, int, float]]  # supplier, quantity, unit price


@dataclass
class Preview:
    tiers: list[Group] = field(default_factory=list)
    items: list[Group] = field(default_factory=list)
    districts: list[Group] = field(default_factory=list)
    rows: list[PreviewRow] = field(default_factory=list)
    cost: float = 0.0
    offers: int = 0


def round_preview(session: Session, rnd: AllocationRound) -> Preview:
    """Who gets what, with totals per tier, item and district, from the stored problem/plan."""
    problem, plan = rnd.problem, rnd.plan
    offers = {o["id"]: o for o in problem["offers"]}
    allocated = {r["id"]: (r["allocated"], r["fill"]) for r in plan["requests"]}
    lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ln in plan["lines"]:
        lines[ln["request"]].append(ln)
    org_ids = {int(r["enterprise"][1:]) for r in problem["requests"]} | {
        int(o["supplier"][1:]) for o in problem["offers"]
    }
    label = names(session, org_ids)
    item_names = {i.code: i.name for i in items(session)}
    groups: dict[str, dict[str, Group]] = {"tier": {}, "item": {}, "district": {}}
    out = Preview(cost=plan["cost"], offers=len(problem["offers"]))
    for r in problem["requests"]:
        got, fill = allocated.get(r["id"], (0, 0.0))
        for kind, key in (
            ("tier", f"第{r['tier']}档"),
            ("item", item_names.get(r["item"], r["item"])),
            ("district", r["region"]),
        ):
            g = groups[kind].setdefault(key, Group(key))
            g.requested += r["quantity"]
            g.allocated += got
        out.rows.append(
            PreviewRow(
                request_id=int(r["id"][1:]),
                enterprise=label.get(int(r["enterprise"][1:]), r["enterprise"]),
                item=item_names.get(r["item"], r["item"]),
                district=r["region"],
                tier=r["tier"],
                requested=r["quantity"],
                allocated=got,
                fill=fill,
                sources=[
                    (
                        label.get(int(offers[ln["offer"]]["supplier"][1:]), ln["offer"]),
                        ln["quantity"],
                        offers[ln["offer"]]["unit_price"],
                    )
                    for ln in lines[r["id"]]
                ],
            )
        )
    out.tiers = sorted(groups["tier"].values(), key=lambda g: g.key)
    out.items = sorted(groups["item"].values(), key=lambda g: g.key)
    out.districts = sorted(groups["district"].values(), key=lambda g: g.key)
    out.rows.sort(key=lambda r: (r.tier, r.item, r.fill, r.request_id))
    return out


def round_json(rnd: AllocationRound) -> bytes:
    """The stored problem and plan in the file contract's shapes: `fugong supplies allocate`
    on the problem reproduces the plan."""
    doc = {"round": rnd.id, "status": rnd.status, "problem": rnd.problem, "plan": rnd.plan}
    return json.dumps(doc, ensure_ascii=False, indent=2).encode()


def round_xlsx(session: Session, rnd: AllocationRound) -> bytes:
    pv = round_preview(session, rnd)
    rows = [
        [
            r.request_id,
            r.enterprise,
            r.item,
            r.district,
            r.tier,
            r.requested,
            r.allocated,
            round(r.fill, 4),
            "；".join(f"{s} {q}@{p:g}" for s, q, p in r.sources),
        ]
        for r in pv.rows
    ]
    return write_xlsx(
        ["申请编号", "企业", "物资", "区", "档次", "申请数量", "分配数量", "满足率", "来源"],
        rows,
        title=f"第{rnd.id}轮分配",
    )


# -- dashboard -----------------------------------------------------------------------------


@dataclass
class StockRow:
    code: str
    name: str
    unit: str
    stock: int
    demand: int

    @property
    def shortage(self) -> int:
        return max(0, self.demand - self.stock)


def stock_and_shortage(session: Session, *, actor: User) -> list[StockRow]:
    """Per item: stock in active offers of approved suppliers against the approved demand still
    waiting (in the actor's scope)."""
    require_role(actor, *READERS)
    stock = dict(
        session.execute(
            select(Offer.item_code, func.coalesce(func.sum(Offer.stock), 0))
            .join(SupplierVetting, SupplierVetting.organisation_id == Offer.supplier_id)
            .where(Offer.status == "active", SupplierVetting.status == "approved")
            .where(offer_scope(actor))
            .group_by(Offer.item_code)
        ).all()
    )
    demand = dict(
        session.execute(
            select(
                SupplyRequest.item_code,
                func.coalesce(
                    func.sum(SupplyRequest.approved_qty - SupplyRequest.allocated_qty), 0
                ),
            )
            .where(SupplyRequest.status.in_(WAITING), request_scope(actor))
            .group_by(SupplyRequest.item_code)
        ).all()
    )
    return [
        StockRow(i.code, i.name, i.unit, int(stock.get(i.code, 0)), int(demand.get(i.code, 0)))
        for i in items(session)
    ]


@dataclass
class TimeRow:
    key: str
    requests: int = 0
    late: int = 0
    to_allocation: list[float] = field(default_factory=list)
    to_shipment: list[float] = field(default_factory=list)
    to_delivery: list[float] = field(default_factory=list)

    @staticmethod
    def _median(xs: list[float]) -> float | None:
        return statistics.median(xs) if xs else None

    @property
    def median_allocation_h(self) -> float | None:
        return self._median(self.to_allocation)

    @property
    def median_shipment_h(self) -> float | None:
        return self._median(self.to_shipment)

    @property
    def median_delivery_h(self) -> float | None:
        return self._median(self.to_delivery)


def response_times(session: Session, *, actor: User, by: str = "item") -> list[TimeRow]:
    """Hours from request to allocation, to first shipment and to first delivery (medians),
    per item or district, and how many requests were not shipped within 24 hours."""
    require_role(actor, *READERS)
    item_names = {i.code: i.name for i in items(session)}
    rows: dict[str, TimeRow] = {}
    now = _now()
    stmt = select(SupplyRequest).where(request_scope(actor), SupplyRequest.status != "withdrawn")
    for r in session.scalars(stmt):
        key = r.district if by == "district" else item_names.get(r.item_code, r.item_code)
        row = rows.setdefault(key, TimeRow(key))
        row.requests += 1
        row.late += late(r, now)
        for attr, xs in (
            ("allocated_at", row.to_allocation),
            ("shipped_at", row.to_shipment),
            ("delivered_at", row.to_delivery),
        ):
            at = getattr(r, attr)
            if at is not None:
                xs.append((at - r.created_at).total_seconds() / 3600)
    return sorted(rows.values(), key=lambda r: r.key)


def hours(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() / 3600


def buyer_choices(session: Session, *, actor: User, limit: int = 300) -> list[tuple[int, str]]:
    """Enterprises the actor may request for (the portfolio of a manager, the own one of an
    enterprise user; officials type the credit code instead of scrolling a district)."""
    stmt = (
        select(Enterprise.id, Organisation.name)
        .join(Organisation, Organisation.id == Enterprise.id)
        .where(enterprise_scope(actor))
    )
    if actor.has_role("admin", "official") and not actor.has_role("manager", "enterprise"):
        return []
    return [(i, n) for i, n in session.execute(stmt.order_by(Organisation.name).limit(limit))]


def enterprise_by_uscc(session: Session, *, actor: User, uscc: str) -> int | None:
    return session.scalar(
        select(Enterprise.id)
        .join(Organisation, Organisation.id == Enterprise.id)
        .where(Organisation.uscc == uscc.strip().upper(), enterprise_scope(actor))
    )
