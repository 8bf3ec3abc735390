"""Supplies writes: supplier vetting, pre-epidemic prices and their review, price caps (by
factor or by margin) and policy, offers (form, API, upload), requests with tier and cap,
allocation rounds, orders and direct purchases.

Each takes the actor, checks scope, writes the audit row in the same transaction and flushes;
the request or the CLI command owns the transaction. Stock only ever moves through a single
conditional UPDATE, so concurrent buyers can never oversell it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fugong.core import audit
from fugong.core.models import Enterprise, Organisation, User, UserRole
from fugong.core.notify import notify
from fugong.core.permissions import require_role
from fugong.core.reference import KEY_CATEGORIES
from fugong.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from fugong.supplies.allocation import Offer as EngineOffer
from fugong.supplies.allocation import Problem, allocate, plan_to_dict
from fugong.supplies.allocation import Request as EngineRequest
from fugong.supplies.models import (
    AllocationRound,
    Offer,
    PreEpidemicPrice,
    PriceCap,
    SupplierVetting,
    SupplyItem,
    SupplyOrder,
    SupplyPolicy,
    SupplyRequest,
)
from fugong.supplies.permissions import (
    OFFICIALS,
    REQUESTERS,
    manages,
    order_scope,
    request_scope,
    round_scope,
)
from fugong.supplies.rules import (
    CAP_MODES,
    ORDER_ACTORS,
    ORDER_STATUSES,
    WAITING,
    CapRule,
    Facts,
    Policy,
    RuleError,
    approved_quantity,
    cap_flag,
    cap_for,
    next_order_status,
    policy_from_dict,
    request_status,
    tier_for,
)
from fugong.supplies.schemas import (
    DirectPurchase,
    OfferCreate,
    PreEpidemicPriceCreate,
    RequestCreate,
    VettingDocument,
)


def _now() -> datetime:
    return datetime.now(UTC)


def field_errors(exc: ValidationError, row: int | None = None) -> list[FieldError]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(整行)"
        out.append(FieldError(loc, err["msg"].removeprefix("Value error, "), row))
    return out


def _users_of(session: Session, org_id: int, role: str | None = None) -> list[User]:
    stmt = select(User).where(User.organisation_id == org_id, User.is_active.is_(True))
    if role:
        stmt = stmt.join(UserRole).where(UserRole.role == role)
    return list(session.scalars(stmt))


def _notify_org(
    session: Session, org_id: int, text: str, link: str, skip: User | None = None
) -> None:
    for u in _users_of(session, org_id):
        if skip is None or u.id != skip.id:
            notify(session, u, text, link)


def _officials(session: Session, district: str | None) -> list[User]:
    stmt = (
        select(User)
        .join(UserRole)
        .join(Organisation, Organisation.id == User.organisation_id)
        .where(UserRole.role == "official", User.is_active.is_(True))
    )
    if district is not None:
        stmt = stmt.where((Organisation.district == district) | Organisation.district.is_(None))
    return list(session.scalars(stmt))


def item(session: Session, code: str) -> SupplyItem:
    found = session.get(SupplyItem, code)
    if found is None:
        raise ValidationFailed([FieldError("item", f"未知物资“{code}”")])
    return found


# -- vetting -------------------------------------------------------------------------------


def submit_vetting(
    session: Session, *, documents: list[VettingDocument], actor: User
) -> SupplierVetting:
    """A supplier lists its documents; a new submission goes back to pending review."""
    require_role(actor, "supplier")
    if actor.organisation.kind != "supplier":
        raise PermissionDenied("只有供应商机构可以提交资质")
    if not any(d.type == "licence" for d in documents):
        raise ValidationFailed([FieldError("documents", "必须提供营业执照")])
    vetting = session.get(SupplierVetting, actor.organisation_id)
    docs = [d.model_dump() for d in documents]
    if vetting is None:
        vetting = SupplierVetting(organisation_id=actor.organisation_id, documents=docs)
        session.add(vetting)
    else:
        vetting.documents = docs
        vetting.status = "pending"
        vetting.reason = None
        vetting.reviewed_by_id = None
        vetting.reviewed_at = None
        vetting.submitted_at = _now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="supplier.vetting_submit",
        target_type="organisation",
        target_id=actor.organisation_id,
        after={"documents": docs},
    )
    for official in _officials(session, actor.organisation.district):
        notify(
            session,
            official,
            f"供应商“{actor.organisation.name}”提交了资质材料",
            "/supplies/suppliers",
        )
    return vetting


def review_vetting(
    session: Session, *, organisation_id: int, approve: bool, reason: str | None, actor: User
) -> SupplierVetting:
    require_role(actor, *OFFICIALS)
    vetting = session.get(SupplierVetting, organisation_id)
    if vetting is None:
        raise NotFound("该供应商尚未提交资质")
    reason = (reason or "").strip() or None
    if not approve and reason is None:
        raise ValidationFailed([FieldError("reason", "不通过时必须填写原因")])
    before = vetting.status
    vetting.status = "approved" if approve else "refused"
    vetting.reason = reason
    vetting.reviewed_by_id = actor.id
    vetting.reviewed_at = _now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="supplier.vetting_review",
        target_type="organisation",
        target_id=organisation_id,
        before={"status": before},
        after={"status": vetting.status, "reason": reason},
    )
    text = "资质审核已通过，您的报价将参与分配" if approve else f"资质审核未通过：{reason}"
    _notify_org(session, organisation_id, text, "/supplies/suppliers")
    return vetting


def has_medical_registration(vetting: SupplierVetting | None) -> bool:
    return vetting is not None and any(d.get("type") == "medical_device" for d in vetting.documents)


# -- price caps and policy -----------------------------------------------------------------


def cap_rule(cap: PriceCap | None) -> CapRule | None:
    if cap is None:
        return None
    return CapRule(mode=cap.mode, factor=cap.factor, margin=cap.margin)


def set_price_cap(
    session: Session,
    *,
    item_code: str,
    factor: float | None = None,
    mode: str = "factor",
    margin: float | None = None,
    actor: User,
) -> PriceCap:
    """Set an item's cap (see ``models.PriceCap``); active offers above it are flagged at once,
    each with the rule that applied and the cap value."""
    require_role(actor, *OFFICIALS)
    it = item(session, item_code)
    try:
        rule = CapRule(mode=mode, factor=factor, margin=margin)
    except RuleError as e:
        field = "mode" if mode not in CAP_MODES else ("margin" if "加价率" in str(e) else "factor")
        raise ValidationFailed([FieldError(field, str(e))]) from None
    cap = session.get(PriceCap, it.code)
    before = {"mode": cap.mode, "factor": cap.factor, "margin": cap.margin} if cap else None
    if cap is None:
        cap = PriceCap(item_code=it.code, set_by_id=actor.id)
        session.add(cap)
    else:
        cap.set_by_id = actor.id
        cap.set_at = _now()
    cap.mode, cap.factor, cap.margin = rule.mode, rule.factor, rule.margin
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="supplies.price_cap",
        target_type="supply_item",
        target_id=it.code,
        before=before,
        after={"mode": rule.mode, "factor": rule.factor, "margin": rule.margin},
    )
    for offer in session.scalars(
        select(Offer).where(Offer.item_code == it.code, Offer.status == "active")
    ):
        _flag_if_over(session, offer, it, rule, actor)
    return cap


def approved_pre_price(session: Session, supplier_id: int, item_code: str) -> float | None:
    """The supplier's reviewed pre-epidemic price for the item (None: none approved)."""
    return session.scalar(
        select(PreEpidemicPrice.unit_price).where(
            PreEpidemicPrice.supplier_id == supplier_id,
            PreEpidemicPrice.item_code == item_code,
            PreEpidemicPrice.status == "approved",
        )
    )


def _flag_if_over(
    session: Session, offer: Offer, it: SupplyItem, rule: CapRule | None, actor: User
) -> None:
    if rule is None:
        return
    pre = approved_pre_price(session, offer.supplier_id, it.code) if rule.mode == "margin" else None
    reason = cap_flag(offer.unit_price, it.reference_price, rule, pre)
    if reason is None:
        return
    offer.status = "flagged"
    offer.flag_reason = reason
    offer.cleared_by_id = None
    offer.clear_reason = None
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="offer.flag",
        target_type="offer",
        target_id=offer.id,
        after={"status": "flagged", "flag_reason": offer.flag_reason},
    )
    _notify_org(
        session, offer.supplier_id, f"报价 #{offer.id} 因超过限价被标记", "/supplies/offers"
    )
    for official in _officials(session, None):
        notify(
            session,
            official,
            f"报价 #{offer.id} 超过限价，待核查",
            "/supplies/offers?status=flagged",
        )


# -- pre-epidemic prices -------------------------------------------------------------------


def submit_pre_price(
    session: Session, *, data: PreEpidemicPriceCreate, actor: User
) -> PreEpidemicPrice:
    """A supplier records its pre-epidemic price for an item with the invoice that shows it;
    a new submission replaces the old one and goes back to review."""
    require_role(actor, "supplier")
    if actor.organisation.kind != "supplier":
        raise PermissionDenied("只有供应商机构可以登记疫情前价格")
    return _put_pre_price(session, data, item(session, data.item), actor)


def _put_pre_price(
    session: Session, data: PreEpidemicPriceCreate, it: SupplyItem, actor: User
) -> PreEpidemicPrice:
    row = session.scalar(
        select(PreEpidemicPrice).where(
            PreEpidemicPrice.supplier_id == actor.organisation_id,
            PreEpidemicPrice.item_code == it.code,
        )
    )
    fields = ["unit_price", "invoice_no", "invoice_date", "status"]
    before = audit.snapshot(row, fields) if row else None
    if row is None:
        row = PreEpidemicPrice(supplier_id=actor.organisation_id, item_code=it.code)
        session.add(row)
    elif (row.unit_price, row.invoice_no, row.invoice_date) == (
        data.unit_price,
        data.invoice_no,
        data.invoice_date,
    ):
        return row  # the same evidence again (an upload repeating it): keep its review
    row.unit_price = data.unit_price
    row.invoice_no = data.invoice_no
    row.invoice_date = data.invoice_date
    row.status = "pending"
    row.reason = None
    row.reviewed_by_id = None
    row.reviewed_at = None
    row.submitted_by_id = actor.id
    row.submitted_at = _now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="supplier.pre_price_submit",
        target_type="pre_epidemic_price",
        target_id=row.id,
        before=before,
        after=audit.snapshot(row, ["item_code", *fields]),
    )
    for official in _officials(session, actor.organisation.district):
        notify(
            session,
            official,
            f"供应商“{actor.organisation.name}”登记了{it.name}的疫情前价格，待审核",
            "/supplies/suppliers",
        )
    return row


def review_pre_price(
    session: Session, *, price_id: int, approve: bool, reason: str | None, actor: User
) -> PreEpidemicPrice:
    """An official approves or refuses (with a reason) a pre-epidemic price. The supplier's
    offers of that item are then checked again under the item's margin cap: an active offer
    now over it is flagged; a flagged one gets the reason that applies now, or is cleared,
    with the review as the reason, when it is now within the cap."""
    require_role(actor, *OFFICIALS)
    row = session.get(PreEpidemicPrice, price_id)
    if row is None:
        raise NotFound("疫情前价格记录不存在")
    reason = (reason or "").strip() or None
    if not approve and reason is None:
        raise ValidationFailed([FieldError("reason", "不通过时必须填写原因")])
    before = row.status
    row.status = "approved" if approve else "refused"
    row.reason = reason
    row.reviewed_by_id = actor.id
    row.reviewed_at = _now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="supplier.pre_price_review",
        target_type="pre_epidemic_price",
        target_id=row.id,
        before={"status": before},
        after={"status": row.status, "reason": reason},
    )
    text = (
        f"{row.item.name}的疫情前价格 {row.unit_price:g} 元已审核通过"
        if approve
        else f"{row.item.name}的疫情前价格未通过审核：{reason}"
    )
    _notify_org(session, row.supplier_id, text, "/supplies/suppliers")
    rule = cap_rule(session.get(PriceCap, row.item_code))
    if rule is None or rule.mode != "margin":
        return row
    pre = row.unit_price if approve else None
    for offer in session.scalars(
        select(Offer).where(
            Offer.supplier_id == row.supplier_id,
            Offer.item_code == row.item_code,
            Offer.status.in_(("active", "flagged")),
        )
    ):
        flagged = cap_flag(offer.unit_price, row.item.reference_price, rule, pre)
        if flagged is None:
            if offer.status == "flagged":
                why = f"疫情前价格 {row.unit_price:g} 元经审核通过，单价未超限"
                _clear(session, offer, why, actor)
        elif offer.status == "active" or offer.flag_reason != flagged:
            # Still (or newly) over: the flag names the rule and the cap that apply now.
            _flag_if_over(session, offer, row.item, rule, actor)
    return row


def current_policy(session: Session) -> Policy:
    row = session.scalar(select(SupplyPolicy).order_by(SupplyPolicy.id.desc()).limit(1))
    return Policy() if row is None else policy_from_dict(row.rules)


def set_policy(session: Session, *, doc: dict[str, Any], actor: User) -> SupplyPolicy:
    require_role(actor, *OFFICIALS)
    try:
        policy = policy_from_dict(doc)
    except RuleError as e:
        raise ValidationFailed([FieldError("policy", str(e))]) from None
    before = current_policy(session).to_dict()
    row = SupplyPolicy(rules=policy.to_dict(), set_by_id=actor.id)
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="supplies.policy",
        target_type="supply_policy",
        target_id=row.id,
        before=before,
        after=policy.to_dict(),
    )
    return row


# -- offers --------------------------------------------------------------------------------


def _check_offer(session: Session, data: OfferCreate, actor: User) -> tuple[SupplyItem, str | None]:
    """The item and an error message (None when the supplier may offer it)."""
    it = item(session, data.item)
    vetting = session.get(SupplierVetting, actor.organisation_id)
    if vetting is None:
        return it, "请先提交资质材料（营业执照等）"
    if it.needs_registration and not has_medical_registration(vetting):
        return it, f"{it.name}需要医疗器械注册证，请先在资质材料中提供"
    return it, None


def create_offer(session: Session, *, data: OfferCreate, actor: User) -> Offer:
    require_role(actor, "supplier")
    if actor.organisation.kind != "supplier":
        raise PermissionDenied("只有供应商机构可以发布报价")
    it, problem = _check_offer(session, data, actor)
    if problem:
        raise ValidationFailed([FieldError("item", problem)])
    return _insert_offer(session, data, it, actor)


def _insert_offer(session: Session, data: OfferCreate, it: SupplyItem, actor: User) -> Offer:
    offer = Offer(
        supplier_id=actor.organisation_id,
        item_code=it.code,
        stock=data.stock,
        daily_capacity=data.daily_capacity,
        unit_price=data.unit_price,
        lead_time_days=data.lead_time_days,
        districts=list(dict.fromkeys(data.districts)),
        created_by_id=actor.id,
    )
    session.add(offer)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="offer.create",
        target_type="offer",
        target_id=offer.id,
        after=audit.snapshot(
            offer,
            ["item_code", "stock", "daily_capacity", "unit_price", "lead_time_days", "districts"],
        ),
    )
    pre = data.pre_price()
    if pre is not None:
        _put_pre_price(session, pre, it, actor)
    _flag_if_over(session, offer, it, cap_rule(session.get(PriceCap, it.code)), actor)
    return offer


OFFER_COLUMNS: list[tuple[str, str]] = [
    ("item", "物资"),
    ("stock", "库存"),
    ("daily_capacity", "日产能"),
    ("unit_price", "单价"),
    ("lead_time_days", "交货天数"),
    ("districts", "供货区"),
    ("pre_epidemic_price", "疫情前单价"),
    ("pre_epidemic_invoice_no", "疫情前发票号"),
    ("pre_epidemic_invoice_date", "疫情前发票日期"),
]


@dataclass
class ImportReport:
    created: int
    errors: list[FieldError]


def import_offers(
    session: Session, *, rows: list[dict[str, Any]], actor: User, first_row: int = 2
) -> ImportReport:
    """All or nothing: every row is validated before any offer is written."""
    require_role(actor, "supplier")
    if actor.organisation.kind != "supplier":
        raise PermissionDenied("只有供应商机构可以发布报价")
    errors: list[FieldError] = []
    valid: list[tuple[OfferCreate, SupplyItem]] = []
    for i, raw in enumerate(rows):
        rownum = first_row + i
        unknown = sorted(set(raw) - {name for name, _ in OFFER_COLUMNS})
        if unknown:
            errors.append(FieldError("(表头)", f"未知列：{'、'.join(unknown)}", rownum))
            continue
        try:
            data = OfferCreate.model_validate(
                {k: v for k, v in raw.items() if not (isinstance(v, str) and not v.strip())}
            )
        except ValidationError as e:
            errors.extend(field_errors(e, rownum))
            continue
        it, problem = _check_offer(session, data, actor)
        if problem:
            errors.append(FieldError("item", problem, rownum))
            continue
        valid.append((data, it))
    if not rows:
        errors.append(FieldError("(文件)", "文件中没有数据行"))
    if errors:
        return ImportReport(created=0, errors=errors)
    for data, it in valid:
        _insert_offer(session, data, it, actor)
    audit.record(
        session,
        actor=actor,
        action="offer.import_batch",
        target_type="offer",
        after={"created": len(valid)},
    )
    return ImportReport(created=len(valid), errors=[])


def get_offer(session: Session, *, offer_id: int, actor: User) -> Offer:
    from fugong.supplies.permissions import offer_scope

    offer = session.scalar(select(Offer).where(Offer.id == offer_id, offer_scope(actor)))
    if offer is None:
        raise NotFound("报价不存在")
    return offer


def clear_offer(session: Session, *, offer_id: int, reason: str, actor: User) -> Offer:
    """An official clears a flagged offer (e.g. the price is justified) with a reason."""
    require_role(actor, *OFFICIALS)
    offer = get_offer(session, offer_id=offer_id, actor=actor)
    if offer.status != "flagged":
        raise Conflict("只有被标记的报价需要核查")
    reason = reason.strip()
    if not reason:
        raise ValidationFailed([FieldError("reason", "请填写核查说明")])
    return _clear(session, offer, reason, actor)


def _clear(session: Session, offer: Offer, reason: str, actor: User) -> Offer:
    offer.status = "active"
    offer.cleared_by_id = actor.id
    offer.clear_reason = reason[:300]
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="offer.clear",
        target_type="offer",
        target_id=offer.id,
        before={"status": "flagged", "flag_reason": offer.flag_reason},
        after={"status": "active", "clear_reason": offer.clear_reason},
    )
    _notify_org(
        session, offer.supplier_id, f"报价 #{offer.id} 已核查通过：{reason}", "/supplies/offers"
    )
    return offer


def withdraw_offer(session: Session, *, offer_id: int, actor: User) -> Offer:
    offer = get_offer(session, offer_id=offer_id, actor=actor)
    if not (
        actor.has_role(*OFFICIALS)
        or (actor.has_role("supplier") and offer.supplier_id == actor.organisation_id)
    ):
        raise PermissionDenied("只有供应商本人可以撤回报价")
    before = offer.status
    offer.status = "withdrawn"
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="offer.withdraw",
        target_type="offer",
        target_id=offer.id,
        before={"status": before},
        after={"status": "withdrawn"},
    )
    return offer


def _take_stock(session: Session, offer_id: int, quantity: int) -> bool:
    """Decrement stock iff enough is left, in one statement: the row lock and the re-checked
    WHERE make concurrent buyers queue, and the loser sees rowcount 0 instead of overselling."""
    result = session.execute(
        update(Offer)
        .where(Offer.id == offer_id, Offer.stock >= quantity)
        .values(stock=Offer.stock - quantity)
        .execution_options(synchronize_session=False)
    )
    taken = bool(result.rowcount == 1)  # type: ignore[attr-defined]
    _expire_offer(session, offer_id)
    return taken


def _return_stock(session: Session, offer_id: int, quantity: int) -> None:
    session.execute(
        update(Offer)
        .where(Offer.id == offer_id)
        .values(stock=Offer.stock + quantity)
        .execution_options(synchronize_session=False)
    )
    _expire_offer(session, offer_id)


def _expire_offer(session: Session, offer_id: int) -> None:
    loaded = session.identity_map.get(session.identity_key(Offer, (offer_id,)))
    if loaded is not None:
        session.expire(loaded, ["stock"])


# -- requests ------------------------------------------------------------------------------


def _enterprise(session: Session, actor: User, enterprise_id: int) -> Enterprise:
    ent = session.get(Enterprise, enterprise_id)
    if ent is None or not manages(actor, ent):
        raise NotFound("企业不存在")
    return ent


def facts_of(ent: Enterprise) -> Facts:
    return Facts(
        org_kind=ent.organisation.kind,
        key_category=ent.key_category,
        key_category_label=KEY_CATEGORIES.get(ent.key_category or ""),
        resumption_status=ent.resumption_status,
        resumption_date=ent.resumption_date,
        headcount=ent.headcount,
    )


def create_request(session: Session, *, data: RequestCreate, actor: User) -> SupplyRequest:
    """Tier and cap come from the district's policy, with the reasons the enterprise sees."""
    require_role(actor, *REQUESTERS)
    ent = _enterprise(session, actor, data.enterprise_id)
    it = item(session, data.item)
    policy = current_policy(session)
    now = _now()
    if data.needed_by < now.date():
        raise ValidationFailed([FieldError("needed_by", "需要日期不能早于今天")])
    if policy.frequency_days:
        since = now - timedelta(days=policy.frequency_days)
        recent = session.scalar(
            select(SupplyRequest.id).where(
                SupplyRequest.enterprise_id == ent.id,
                SupplyRequest.item_code == it.code,
                SupplyRequest.status != "withdrawn",
                SupplyRequest.created_at >= since,
            )
        )
        if recent is not None:
            raise ValidationFailed(
                [
                    FieldError(
                        "item",
                        f"{policy.frequency_days} 天内每种物资只能申请一次（已有申请 #{recent}）",
                    )
                ]
            )
    facts = facts_of(ent)
    tier, tier_why = tier_for(facts, now.date(), policy)
    cap, cap_why = cap_for(it.code, it.unit, facts, policy)
    approved = approved_quantity(data.quantity, cap)
    req = SupplyRequest(
        enterprise_id=ent.id,
        item_code=it.code,
        district=ent.district,
        requested_qty=data.quantity,
        approved_qty=approved,
        carried_forward=approved,
        needed_by=data.needed_by,
        purpose=data.purpose,
        max_unit_price=data.max_unit_price,
        tier=tier,
        cap=cap,
        explanation=f"{tier_why}。{cap_why}。核定数量 {approved} {it.unit}。",
        created_by_id=actor.id,
        created_at=now,
    )
    session.add(req)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="supply_request.create",
        target_type="supply_request",
        target_id=req.id,
        after=audit.snapshot(
            req, ["enterprise_id", "item_code", "requested_qty", "approved_qty", "tier", "cap"]
        ),
    )
    link = f"/supplies/requests/{req.id}"
    if actor.organisation_id != ent.id:
        _notify_org(session, ent.id, f"已代为申请{it.name} {data.quantity}{it.unit}", link)
    elif ent.manager_id:
        notify(
            session,
            session.get(User, ent.manager_id),
            f"{ent.organisation.name}申请{it.name} {data.quantity}{it.unit}",
            link,
        )
    return req


def get_request(session: Session, *, request_id: int, actor: User) -> SupplyRequest:
    req = session.scalar(
        select(SupplyRequest).where(SupplyRequest.id == request_id, request_scope(actor))
    )
    if req is None:
        raise NotFound("申请不存在")
    return req


def withdraw_request(session: Session, *, request_id: int, actor: User) -> SupplyRequest:
    """Withdraw the unmet part: it stops carrying forward; orders already made stand."""
    req = get_request(session, request_id=request_id, actor=actor)
    ent = session.get(Enterprise, req.enterprise_id)
    # The district does not withdraw an enterprise's demand for it; the enterprise or its
    # manager does.
    may = ent is not None and (
        actor.has_role("admin")
        or (actor.has_role("enterprise") and actor.organisation_id == ent.id)
        or (actor.has_role("manager") and ent.manager_id == actor.id)
    )
    if not may:
        raise PermissionDenied("只有申请企业或其客户经理可以撤回")
    if req.status not in WAITING:
        raise Conflict("该申请已无待分配数量，不能撤回")
    before = req.status
    req.status = "withdrawn"
    req.withdrawn_at = _now()
    req.carried_forward = 0
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="supply_request.withdraw",
        target_type="supply_request",
        target_id=req.id,
        before={"status": before},
        after={"status": "withdrawn"},
    )
    return req


# -- rounds --------------------------------------------------------------------------------


def open_round(session: Session, *, actor: User) -> AllocationRound:
    """Build the problem from waiting requests (approved minus allocated: the carried-forward
    part) and active offers of approved suppliers, run the engine, store both for preview."""
    require_role(actor, *OFFICIALS)
    district = None if actor.has_role("admin") else actor.organisation.district
    req_stmt = select(SupplyRequest).where(
        SupplyRequest.status.in_(WAITING),
        SupplyRequest.approved_qty > SupplyRequest.allocated_qty,
    )
    if district is not None:
        req_stmt = req_stmt.where(SupplyRequest.district == district)
    requests = list(session.scalars(req_stmt.order_by(SupplyRequest.id)))
    offers = list(
        session.scalars(
            select(Offer)
            .join(SupplierVetting, SupplierVetting.organisation_id == Offer.supplier_id)
            .where(Offer.status == "active", Offer.stock > 0, SupplierVetting.status == "approved")
            .order_by(Offer.id)
        )
    )
    if district is not None:
        offers = [o for o in offers if district in o.districts]
    # A re-vetted supplier may have dropped its medical-device registration since it posted:
    # such items then take no part until it is on file again.
    registered = {
        v.organisation_id
        for v in session.scalars(
            select(SupplierVetting).where(
                SupplierVetting.organisation_id.in_({o.supplier_id for o in offers})
            )
        )
        if has_medical_registration(v)
    }
    offers = [o for o in offers if not o.item.needs_registration or o.supplier_id in registered]
    problem = Problem(
        offers=tuple(
            EngineOffer(
                id=f"O{o.id}",
                supplier=f"S{o.supplier_id}",
                item=o.item_code,
                quantity=o.stock,
                unit_price=o.unit_price,
                regions=tuple(o.districts),
            )
            for o in offers
        ),
        requests=tuple(
            EngineRequest(
                id=f"R{r.id}",
                enterprise=f"E{r.enterprise_id}",
                item=r.item_code,
                quantity=r.remaining,
                tier=r.tier,
                region=r.district,
                max_unit_price=r.max_unit_price,
            )
            for r in requests
        ),
    )
    plan = allocate(problem)
    rnd = AllocationRound(
        district=district,
        problem={
            "offers": [
                {
                    "id": o.id,
                    "supplier": o.supplier,
                    "item": o.item,
                    "quantity": o.quantity,
                    "unit_price": o.unit_price,
                    "regions": list(o.regions),
                }
                for o in problem.offers
            ],
            "requests": [
                {
                    "id": r.id,
                    "enterprise": r.enterprise,
                    "item": r.item,
                    "quantity": r.quantity,
                    "tier": r.tier,
                    "region": r.region,
                    "max_unit_price": r.max_unit_price,
                }
                for r in problem.requests
            ],
        },
        plan=plan_to_dict(plan),
        created_by_id=actor.id,
    )
    session.add(rnd)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="round.open",
        target_type="round",
        target_id=rnd.id,
        after={"requests": len(requests), "offers": len(offers), "cost": plan.cost},
    )
    return rnd


def get_round(session: Session, *, round_id: int, actor: User) -> AllocationRound:
    require_role(actor, "admin", "official", "auditor")
    rnd = session.scalar(
        select(AllocationRound).where(AllocationRound.id == round_id, round_scope(actor))
    )
    if rnd is None:
        raise NotFound("分配轮次不存在")
    return rnd


def commit_round(session: Session, *, round_id: int, actor: User) -> list[SupplyOrder]:
    """Create the plan's orders and take their stock. Anything that moved since the preview
    (stock sold directly, a request withdrawn) refuses the commit: preview again."""
    require_role(actor, *OFFICIALS)
    rnd = get_round(session, round_id=round_id, actor=actor)
    now = _now()
    # A conditional update, so two officials pressing "commit" make one set of orders.
    claimed = session.execute(
        update(AllocationRound)
        .where(AllocationRound.id == rnd.id, AllocationRound.status == "draft")
        .values(status="committed", committed_at=now, committed_by_id=actor.id)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("该轮次已提交")
    session.expire(rnd)
    asked = {r["id"]: r["quantity"] for r in rnd.problem["requests"]}
    requests = {
        f"R{r.id}": r
        for r in session.scalars(
            select(SupplyRequest).where(SupplyRequest.id.in_([int(k[1:]) for k in asked]))
        )
    }
    for key, qty in asked.items():
        req = requests.get(key)
        if req is None or req.status not in WAITING or req.remaining != qty:
            raise Conflict(f"申请 #{key[1:]} 自预览后已变化，请重新生成分配方案")
    offers = {
        f"O{o.id}": o
        for o in session.scalars(
            select(Offer).where(Offer.id.in_([int(o["id"][1:]) for o in rnd.problem["offers"]]))
        )
    }
    orders: list[SupplyOrder] = []
    for line in rnd.plan["lines"]:
        req, offer, qty = requests[line["request"]], offers[line["offer"]], line["quantity"]
        if qty <= 0:
            continue
        if offer.status != "active" or not _take_stock(session, offer.id, qty):
            raise Conflict(f"报价 #{offer.id} 库存或状态自预览后已变化，请重新生成分配方案")
        order = SupplyOrder(
            kind="round",
            round_id=rnd.id,
            request_id=req.id,
            offer_id=offer.id,
            supplier_id=offer.supplier_id,
            enterprise_id=req.enterprise_id,
            item_code=req.item_code,
            district=req.district,
            quantity=qty,
            unit_price=offer.unit_price,
            created_by_id=actor.id,
            created_at=now,
        )
        session.add(order)
        orders.append(order)
        req.allocated_qty += qty
        req.allocated_at = req.allocated_at or now
    for req in requests.values():
        req.status = request_status(req.approved_qty, req.allocated_qty)
        req.carried_forward = req.remaining
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="round.commit",
        target_type="round",
        target_id=rnd.id,
        after={"orders": len(orders), "units": sum(o.quantity for o in orders)},
    )
    for order in orders:
        audit.record(
            session,
            actor=actor,
            action="order.create",
            target_type="order",
            target_id=order.id,
            after=audit.snapshot(
                order, ["kind", "round_id", "request_id", "offer_id", "quantity", "unit_price"]
            ),
        )
        link = f"/supplies/orders/{order.id}"
        _notify_org(
            session,
            order.enterprise_id,
            f"已为您分配{order.item.name} {order.quantity}{order.item.unit}（订单 #{order.id}）",
            link,
        )
        _notify_org(
            session,
            order.supplier_id,
            f"新订单 #{order.id}：{order.item.name} {order.quantity}{order.item.unit}，请确认发货",
            link,
        )
    return orders


# -- orders --------------------------------------------------------------------------------


def get_order(session: Session, *, order_id: int, actor: User) -> SupplyOrder:
    order = session.scalar(
        select(SupplyOrder).where(SupplyOrder.id == order_id, order_scope(actor))
    )
    if order is None:
        raise NotFound("订单不存在")
    return order


def _may(actor: User, session: Session, order: SupplyOrder, action: str) -> bool:
    if actor.has_role("admin"):
        return True
    is_supplier = actor.has_role("supplier") and actor.organisation_id == order.supplier_id
    ent = session.get(Enterprise, order.enterprise_id)
    is_buyer = ent is not None and actor.has_role("enterprise", "manager") and manages(actor, ent)
    who = ORDER_ACTORS[action]
    if who == "supplier":
        return is_supplier
    if who == "enterprise":
        return is_buyer
    return is_supplier or is_buyer or actor.has_role("official")


def order_action(
    session: Session,
    *,
    order_id: int,
    action: str,
    actor: User,
    tracking_no: str | None = None,
    reason: str | None = None,
) -> SupplyOrder:
    """Move an order: confirm / ship (tracking number) by the supplier, deliver by the
    enterprise, cancel (with a reason) by either or an official; cancelling returns the
    quantity to the offer and the unmet demand to the request."""
    order = get_order(session, order_id=order_id, actor=actor)
    if action not in ORDER_ACTORS:
        raise ValidationFailed([FieldError("action", f"未知操作：{action}")])
    if not _may(actor, session, order, action):
        raise PermissionDenied("您无权对该订单执行此操作")
    try:
        to = next_order_status(action, order.status)
    except RuleError as e:
        raise Conflict(str(e)) from None
    tracking_no = (tracking_no or "").strip() or None
    reason = (reason or "").strip() or None
    if action == "ship" and tracking_no is None:
        raise ValidationFailed([FieldError("tracking_no", "发货必须填写物流单号")])
    if action == "cancel" and reason is None:
        raise ValidationFailed([FieldError("reason", "取消订单必须填写原因")])
    now = _now()
    before = order.status
    # Load the request before changing anything: a lazy load autoflushes, and a half-made
    # change (shipped without its tracking number yet) would trip a CHECK constraint.
    req = order.request
    order.status = to
    if action == "confirm":
        order.confirmed_at = now
    elif action == "ship":
        order.tracking_no = tracking_no[:60] if tracking_no else None
        order.shipped_at = now
        if req is not None and req.shipped_at is None:
            req.shipped_at = now
    elif action == "deliver":
        order.delivered_at = now
        if req is not None:
            req.delivered_at = req.delivered_at or now
    else:
        order.cancel_reason = reason[:300] if reason else None
        order.cancelled_at = now
        _return_stock(session, order.offer_id, order.quantity)
        if req is not None:
            req.allocated_qty -= order.quantity
            if req.status != "withdrawn":
                req.status = request_status(req.approved_qty, req.allocated_qty)
                req.carried_forward = req.remaining
    session.flush()
    if req is not None and action == "deliver" and req.status == "allocated":
        live = session.scalars(
            select(SupplyOrder.status).where(
                SupplyOrder.request_id == req.id, SupplyOrder.status != "cancelled"
            )
        ).all()
        if all(s == "delivered" for s in live):
            req.status = "fulfilled"
            session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"order.{action}",
        target_type="order",
        target_id=order.id,
        before={"status": before},
        after={
            "status": to,
            "tracking_no": order.tracking_no,
            "cancel_reason": order.cancel_reason,
        },
    )
    what = f"{order.item.name} {order.quantity}{order.item.unit}"
    text = f"订单 #{order.id}（{what}）{ORDER_STATUSES[to]}"
    if to == "shipped":
        text += f"，物流单号 {order.tracking_no}"
    if to == "cancelled":
        text += f"：{order.cancel_reason}"
    link = f"/supplies/orders/{order.id}"
    _notify_org(session, order.enterprise_id, text, link, skip=actor)
    _notify_org(session, order.supplier_id, text, link, skip=actor)
    return order


def buy_direct(session: Session, *, data: DirectPurchase, actor: User) -> SupplyOrder:
    """Buy from an offer outside rounds. A retried submit with the same idempotency key
    returns the first order; stock is taken by the conditional UPDATE or not at all."""
    existing = session.scalar(
        select(SupplyOrder).where(SupplyOrder.idempotency_key == data.idempotency_key)
    )
    if existing is not None:
        return _same_purchase(existing, data, actor)
    require_role(actor, "admin", "manager", "enterprise")
    ent = _enterprise(session, actor, data.enterprise_id)
    offer = session.get(Offer, data.offer_id)
    vetting = session.get(SupplierVetting, offer.supplier_id) if offer else None
    if offer is None or offer.status != "active" or vetting is None or vetting.status != "approved":
        raise NotFound("报价不存在或暂不可购买")
    if ent.district not in offer.districts:
        raise ValidationFailed([FieldError("offer_id", f"该报价不向{ent.district}供货")])
    now = _now()
    try:
        # The savepoint covers both statements: a duplicate key undoes the stock taken too.
        with session.begin_nested():
            if not _take_stock(session, offer.id, data.quantity):
                raise Conflict("库存不足")
            order = SupplyOrder(
                kind="direct",
                offer_id=offer.id,
                supplier_id=offer.supplier_id,
                enterprise_id=ent.id,
                item_code=offer.item_code,
                district=ent.district,
                quantity=data.quantity,
                unit_price=offer.unit_price,
                idempotency_key=data.idempotency_key,
                created_by_id=actor.id,
                created_at=now,
            )
            session.add(order)
            session.flush()
    except IntegrityError:
        # A concurrent retry with the same key won the race: its order is the answer.
        existing = session.scalar(
            select(SupplyOrder).where(SupplyOrder.idempotency_key == data.idempotency_key)
        )
        if existing is None:
            raise
        return _same_purchase(existing, data, actor)
    audit.record(
        session,
        actor=actor,
        action="order.direct",
        target_type="order",
        target_id=order.id,
        after=audit.snapshot(order, ["offer_id", "enterprise_id", "quantity", "unit_price"]),
    )
    _notify_org(
        session,
        offer.supplier_id,
        f"直购订单 #{order.id}：{offer.item.name} {data.quantity}{offer.item.unit}"
        f"（{ent.organisation.name}）",
        f"/supplies/orders/{order.id}",
    )
    return order


def _same_purchase(order: SupplyOrder, data: DirectPurchase, actor: User) -> SupplyOrder:
    if (
        order.created_by_id != actor.id
        or order.offer_id != data.offer_id
        or order.quantity != data.quantity
        or order.enterprise_id != data.enterprise_id
    ):
        raise Conflict("该幂等键已用于另一笔订单")
    return order
