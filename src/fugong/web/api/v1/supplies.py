"""API for emergency supplies: offers (and their price-cap review), requests, orders, direct
purchases, allocation rounds (open, preview, commit, export), supplier vetting, pre-epidemic
prices and price caps. The same services and the same SQL scoping as the pages: a supplier sees
only its own offers and orders, an enterprise only its own requests and orders, and what the
pages leave to officials (rounds, reviews, caps) answers 403 to anyone else."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, UploadFile, status
from fastapi.responses import Response
from pydantic import BaseModel

from fugong.core.permissions import require_role
from fugong.errors import ValidationFailed
from fugong.supplies import AllocationRound, queries, services
from fugong.supplies.permissions import READERS
from fugong.supplies.schemas import (
    DirectPurchase,
    OfferClear,
    OfferCreate,
    OfferRead,
    OrderAction,
    OrderRead,
    PreEpidemicPriceCreate,
    PreEpidemicPriceRead,
    PriceCapRead,
    PriceCapSet,
    RequestCreate,
    RequestRead,
    ReviewDecision,
    VettingRead,
    VettingSubmit,
)
from fugong.supplies.tabular import read_rows
from fugong.web.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/supplies", tags=["物资"])


class UploadResult(BaseModel):
    created: int


class RoundRead(BaseModel):
    """A round without its stored problem and plan (``/export`` gives those)."""

    id: int
    district: str | None
    status: str
    created_at: datetime
    committed_at: datetime | None
    requests: int
    offers: int
    cost: float


class GroupRead(BaseModel):
    key: str
    requested: int
    allocated: int
    fill: float


class PreviewLine(BaseModel):
    supplier: str
    quantity: int
    unit_price: float


class PreviewRowRead(BaseModel):
    request_id: int
    enterprise: str
    item: str
    district: str
    tier: int
    requested: int
    allocated: int
    fill: float
    sources: list[PreviewLine]


class RoundPreviewRead(BaseModel):
    """The preview the round page shows: totals per tier, item and district, and who gets
    what from whom."""

    round: RoundRead
    tiers: list[GroupRead]
    items: list[GroupRead]
    districts: list[GroupRead]
    rows: list[PreviewRowRead]


class SupplierRead(BaseModel):
    organisation_id: int
    name: str
    vetting: VettingRead | None


def _round(rnd: AllocationRound) -> RoundRead:
    return RoundRead(
        id=rnd.id,
        district=rnd.district,
        status=rnd.status,
        created_at=rnd.created_at,
        committed_at=rnd.committed_at,
        requests=len(rnd.problem["requests"]),
        offers=len(rnd.problem["offers"]),
        cost=rnd.plan["cost"],
    )


def _groups(groups: list[queries.Group]) -> list[GroupRead]:
    return [
        GroupRead(key=g.key, requested=g.requested, allocated=g.allocated, fill=g.fill)
        for g in groups
    ]


@router.get("/offers", response_model=list[OfferRead])
def list_offers(
    session: SessionDep,
    user: CurrentUser,
    status: str | None = None,
    item: str | None = None,
) -> list[OfferRead]:
    rows = queries.list_offers(session, actor=user, status=status, item=item)
    return [OfferRead.model_validate(o) for o in rows]


@router.post("/offers", response_model=OfferRead, status_code=status.HTTP_201_CREATED)
def create_offer(data: OfferCreate, session: SessionDep, user: CurrentUser) -> OfferRead:
    return OfferRead.model_validate(services.create_offer(session, data=data, actor=user))


@router.post("/offers/upload", response_model=UploadResult, status_code=status.HTTP_201_CREATED)
async def upload_offers(file: UploadFile, session: SessionDep, user: CurrentUser) -> UploadResult:
    """CSV or XLSX, one offer per row; all rows or none (422 lists every row error)."""
    rows = read_rows(await file.read(), file.filename or "", services.OFFER_COLUMNS)
    report = services.import_offers(session, rows=rows, actor=user)
    if report.errors:
        raise ValidationFailed(report.errors)
    return UploadResult(created=report.created)


@router.post("/offers/{offer_id}/clear", response_model=OfferRead)
def clear_offer(
    offer_id: int, data: OfferClear, session: SessionDep, user: CurrentUser
) -> OfferRead:
    """An official clears a flagged offer with a reason; it then takes part in rounds."""
    offer = services.clear_offer(session, offer_id=offer_id, reason=data.reason, actor=user)
    return OfferRead.model_validate(offer)


@router.post("/offers/{offer_id}/withdraw", response_model=OfferRead)
def withdraw_offer(offer_id: int, session: SessionDep, user: CurrentUser) -> OfferRead:
    return OfferRead.model_validate(services.withdraw_offer(session, offer_id=offer_id, actor=user))


@router.get("/requests", response_model=list[RequestRead])
def list_requests(
    session: SessionDep, user: CurrentUser, status: str | None = None
) -> list[RequestRead]:
    rows = queries.list_requests(session, actor=user, status=status)
    return [RequestRead.model_validate(r) for r in rows]


@router.post("/requests", response_model=RequestRead, status_code=status.HTTP_201_CREATED)
def create_request(data: RequestCreate, session: SessionDep, user: CurrentUser) -> RequestRead:
    return RequestRead.model_validate(services.create_request(session, data=data, actor=user))


@router.get("/requests/{request_id}", response_model=RequestRead)
def get_request(request_id: int, session: SessionDep, user: CurrentUser) -> RequestRead:
    return RequestRead.model_validate(
        services.get_request(session, request_id=request_id, actor=user)
    )


@router.post("/requests/{request_id}/withdraw", response_model=RequestRead)
def withdraw_request(request_id: int, session: SessionDep, user: CurrentUser) -> RequestRead:
    return RequestRead.model_validate(
        services.withdraw_request(session, request_id=request_id, actor=user)
    )


@router.get("/orders", response_model=list[OrderRead])
def list_orders(
    session: SessionDep,
    user: CurrentUser,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[OrderRead]:
    rows = queries.list_orders(session, actor=user, status=status, limit=limit)
    return [OrderRead.model_validate(o) for o in rows]


@router.post("/orders/direct", response_model=OrderRead, status_code=status.HTTP_201_CREATED)
def buy_direct(
    data: DirectPurchase,
    session: SessionDep,
    user: CurrentUser,
) -> OrderRead:
    """Buy from an offer outside rounds; resending the same ``idempotency_key`` returns the
    same order instead of a second one."""
    return OrderRead.model_validate(services.buy_direct(session, data=data, actor=user))


@router.get("/orders/{order_id}", response_model=OrderRead)
def get_order(order_id: int, session: SessionDep, user: CurrentUser) -> OrderRead:
    return OrderRead.model_validate(services.get_order(session, order_id=order_id, actor=user))


@router.post("/orders/{order_id}/{action}", response_model=OrderRead)
def order_action(
    order_id: int,
    action: Literal["confirm", "ship", "deliver", "cancel"],
    session: SessionDep,
    user: CurrentUser,
    data: OrderAction | None = None,
) -> OrderRead:
    body = data or OrderAction()
    order = services.order_action(
        session,
        order_id=order_id,
        action=action,
        actor=user,
        tracking_no=body.tracking_no,
        reason=body.reason,
    )
    return OrderRead.model_validate(order)


# -- rounds --------------------------------------------------------------------------------


@router.get("/rounds", response_model=list[RoundRead])
def list_rounds(session: SessionDep, user: CurrentUser) -> list[RoundRead]:
    return [_round(r) for r in queries.list_rounds(session, actor=user)]


@router.post("/rounds", response_model=RoundRead, status_code=status.HTTP_201_CREATED)
def open_round(session: SessionDep, user: CurrentUser) -> RoundRead:
    """Run the allocation on the waiting requests and active offers; the round is a draft
    until committed."""
    return _round(services.open_round(session, actor=user))


@router.get("/rounds/{round_id}", response_model=RoundPreviewRead)
def get_round(round_id: int, session: SessionDep, user: CurrentUser) -> RoundPreviewRead:
    rnd = services.get_round(session, round_id=round_id, actor=user)
    pv = queries.round_preview(session, rnd)
    return RoundPreviewRead(
        round=_round(rnd),
        tiers=_groups(pv.tiers),
        items=_groups(pv.items),
        districts=_groups(pv.districts),
        rows=[
            PreviewRowRead(
                request_id=r.request_id,
                enterprise=r.enterprise,
                item=r.item,
                district=r.district,
                tier=r.tier,
                requested=r.requested,
                allocated=r.allocated,
                fill=r.fill,
                sources=[
                    PreviewLine(supplier=s, quantity=q, unit_price=p) for s, q, p in r.sources
                ],
            )
            for r in pv.rows
        ],
    )


@router.post("/rounds/{round_id}/commit", response_model=list[OrderRead])
def commit_round(round_id: int, session: SessionDep, user: CurrentUser) -> list[OrderRead]:
    """Create the plan's orders; 409 when the round was committed or anything moved since."""
    orders = services.commit_round(session, round_id=round_id, actor=user)
    return [OrderRead.model_validate(o) for o in orders]


@router.get("/rounds/{round_id}/export")
def export_round(
    round_id: int,
    session: SessionDep,
    user: CurrentUser,
    format: Literal["json", "xlsx"] = "json",
) -> Response:
    """The stored problem and plan (JSON, reproducible with ``fugong supplies allocate``) or
    the preview as a spreadsheet."""
    rnd = services.get_round(session, round_id=round_id, actor=user)
    if format == "xlsx":
        return Response(
            queries.round_xlsx(session, rnd),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="round-{rnd.id}.xlsx"'},
        )
    return Response(queries.round_json(rnd), media_type="application/json")


# -- suppliers: vetting and pre-epidemic prices --------------------------------------------


@router.get("/suppliers", response_model=list[SupplierRead])
def list_suppliers(session: SessionDep, user: CurrentUser) -> list[SupplierRead]:
    """Supplier organisations with their vetting (officials); a supplier sees its own."""
    return [
        SupplierRead(
            organisation_id=org.id,
            name=org.name,
            vetting=None if v is None else VettingRead.model_validate(v),
        )
        for org, v in queries.vettings(session, actor=user)
    ]


@router.post("/suppliers/vetting", response_model=VettingRead)
def submit_vetting(data: VettingSubmit, session: SessionDep, user: CurrentUser) -> VettingRead:
    vetting = services.submit_vetting(session, documents=data.documents, actor=user)
    return VettingRead.model_validate(vetting)


@router.post("/suppliers/{organisation_id}/review", response_model=VettingRead)
def review_vetting(
    organisation_id: int, data: ReviewDecision, session: SessionDep, user: CurrentUser
) -> VettingRead:
    vetting = services.review_vetting(
        session,
        organisation_id=organisation_id,
        approve=data.approve,
        reason=data.reason,
        actor=user,
    )
    return VettingRead.model_validate(vetting)


@router.get("/pre-epidemic-prices", response_model=list[PreEpidemicPriceRead])
def list_pre_prices(
    session: SessionDep, user: CurrentUser, status: str | None = None
) -> list[PreEpidemicPriceRead]:
    rows = queries.pre_prices(session, actor=user, status=status)
    return [PreEpidemicPriceRead.model_validate(r) for r in rows]


@router.post(
    "/pre-epidemic-prices",
    response_model=PreEpidemicPriceRead,
    status_code=status.HTTP_201_CREATED,
)
def submit_pre_price(
    data: PreEpidemicPriceCreate, session: SessionDep, user: CurrentUser
) -> PreEpidemicPriceRead:
    """A supplier records its pre-epidemic price with the dated invoice; review follows."""
    row = services.submit_pre_price(session, data=data, actor=user)
    return PreEpidemicPriceRead.model_validate(row)


@router.post("/pre-epidemic-prices/{price_id}/review", response_model=PreEpidemicPriceRead)
def review_pre_price(
    price_id: int, data: ReviewDecision, session: SessionDep, user: CurrentUser
) -> PreEpidemicPriceRead:
    row = services.review_pre_price(
        session, price_id=price_id, approve=data.approve, reason=data.reason, actor=user
    )
    return PreEpidemicPriceRead.model_validate(row)


# -- price caps ----------------------------------------------------------------------------


@router.get("/price-caps", response_model=list[PriceCapRead])
def list_price_caps(session: SessionDep, user: CurrentUser) -> list[PriceCapRead]:
    require_role(user, *READERS)
    return [PriceCapRead.model_validate(c) for c in queries.price_caps(session).values()]


@router.put("/price-caps/{item}", response_model=PriceCapRead)
def set_price_cap(
    item: str, data: PriceCapSet, session: SessionDep, user: CurrentUser
) -> PriceCapRead:
    """Set an item's cap; active offers above it are flagged at once."""
    cap = services.set_price_cap(
        session,
        item_code=item,
        mode=data.mode,
        factor=data.factor,
        margin=data.margin,
        actor=user,
    )
    return PriceCapRead.model_validate(cap)
