"""API for emergency supplies: offers, requests, orders, direct purchases. The same services
and the same SQL scoping as the pages: a supplier sees only its own offers and orders, an
enterprise only its own requests and orders."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, UploadFile, status
from pydantic import BaseModel

from fugong.errors import ValidationFailed
from fugong.supplies import queries, services
from fugong.supplies.schemas import (
    DirectPurchase,
    OfferCreate,
    OfferRead,
    OrderAction,
    OrderRead,
    RequestCreate,
    RequestRead,
)
from fugong.supplies.tabular import read_rows
from fugong.web.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/supplies", tags=["物资"])


class UploadResult(BaseModel):
    created: int


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
