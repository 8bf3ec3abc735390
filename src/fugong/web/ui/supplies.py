"""Supplies pages: the dashboard (stock, shortage, response times), offers (form and upload,
price-cap review, direct purchase), requests with tier and cap, allocation rounds (preview,
commit, export), orders and their fulfilment, supplier vetting and the district's policy."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from fugong.core.permissions import require_role
from fugong.core.reference import DISTRICTS
from fugong.core.tabular import write_csv
from fugong.desk import services as desk_services
from fugong.errors import Conflict, FieldError, ValidationFailed
from fugong.supplies import queries, services
from fugong.supplies.permissions import OFFICIALS, READERS
from fugong.supplies.rules import (
    CAP_MODES,
    DOCUMENT_TYPES,
    OFFER_STATUSES,
    ORDER_STATUSES,
    REQUEST_STATUSES,
    ROUND_STATUSES,
    VETTING_STATUSES,
)
from fugong.supplies.schemas import (
    DirectPurchase,
    OfferCreate,
    PreEpidemicPriceCreate,
    RequestCreate,
    VettingDocument,
)
from fugong.supplies.tabular import read_rows
from fugong.web.deps import CurrentUser, SessionDep, form_csrf_guard
from fugong.web.ui.render import errors_by_field, flash, redirect, render

router = APIRouter(prefix="/supplies", dependencies=[Depends(form_csrf_guard)])

FLASH = {
    "offer_created": "报价已发布。",
    "offer_flagged": "报价已发布，但单价超过限价，需区政府核查后才参与分配。",
    "uploaded": "报价已全部导入。",
    "cleared": "已核查通过。",
    "withdrawn": "已撤回。",
    "bought": "已下单，等待供应商确认。",
    "request_created": "申请已提交。",
    "round_opened": "分配方案已生成，请预览后提交。",
    "committed": "分配已提交，订单已生成。",
    "order": "订单已更新。",
    "vetting": "资质材料已提交，等待审核。",
    "reviewed": "审核结果已保存。",
    "pre_price": "疫情前价格已提交，等待审核。",
    "policy": "政策已保存。",
    "price_cap": "限价已保存。",
}
CTX: dict[str, Any] = {
    "OFFER_STATUSES": OFFER_STATUSES,
    "ORDER_STATUSES": ORDER_STATUSES,
    "REQUEST_STATUSES": REQUEST_STATUSES,
    "ROUND_STATUSES": ROUND_STATUSES,
    "VETTING_STATUSES": VETTING_STATUSES,
    "DOCUMENT_TYPES": DOCUMENT_TYPES,
    "DISTRICTS": DISTRICTS,
    "CAP_MODES": CAP_MODES,
}


def _pydantic(e: ValidationError) -> dict[str, str]:
    return errors_by_field(services.field_errors(e))


def _h(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f}"


# -- dashboard -----------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    require_role(user, *READERS)
    by = "district" if request.query_params.get("by") == "district" else "item"
    now = datetime.now(UTC)
    # The list is what needs chasing now: asked more than 24 hours ago and still not shipped.
    recent = queries.list_requests(session, actor=user, limit=200)
    late = [r for r in recent if r.shipped_at is None and queries.late(r, now)]
    return render(
        request,
        "supplies/dashboard.html",
        user,
        stock=queries.stock_and_shortage(session, actor=user),
        times=queries.response_times(session, actor=user, by=by),
        by=by,
        late=late[:50],
        now=now,
        h=_h,
        hours=queries.hours,
        flash=flash(request, FLASH),
        **CTX,
    )


# -- offers --------------------------------------------------------------------------------


def _offers_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    upload_errors: list[FieldError] | None = None,
    status_code: int = 200,
) -> Response:
    status = request.query_params.get("status") or None
    offers = queries.list_offers(session, actor=user, status=status)
    return render(
        request,
        "supplies/offers.html",
        user,
        status_code=status_code,
        offers=offers,
        status=status,
        suppliers=queries.names(session, {o.supplier_id for o in offers}),
        items=queries.items(session),
        values=values or {"districts": user.organisation.district or ""},
        errors=errors or {},
        upload_errors=upload_errors or [],
        buy_key=uuid.uuid4().hex,
        flash=flash(request, FLASH),
        **CTX,
    )


@router.get("/offers", response_class=HTMLResponse)
def offers(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _offers_page(request, session, user)


@router.post("/offers", response_class=HTMLResponse)
async def offer_create(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    form = await request.form()
    keys = (
        "item",
        "stock",
        "daily_capacity",
        "unit_price",
        "lead_time_days",
        "districts",
        "pre_epidemic_price",
        "pre_epidemic_invoice_no",
        "pre_epidemic_invoice_date",
    )
    values = {k: str(form.get(k, "")).strip() for k in keys}
    districts = [str(d) for d in form.getlist("district")] or values["districts"]
    try:
        offer = services.create_offer(
            session,
            actor=user,
            data=OfferCreate.model_validate(
                {k: v for k, v in values.items() if v and k != "districts"}
                | {"districts": districts}
            ),
        )
    except ValidationError as e:
        return _offers_page(request, session, user, values, _pydantic(e), status_code=422)
    except ValidationFailed as e:
        session.rollback()
        return _offers_page(
            request, session, user, values, errors_by_field(e.errors), status_code=422
        )
    return redirect(
        "/supplies/offers", msg="offer_flagged" if offer.status == "flagged" else "offer_created"
    )


@router.post("/offers/upload", response_class=HTMLResponse)
async def offer_upload(
    request: Request, session: SessionDep, user: CurrentUser, file: Annotated[UploadFile, File()]
) -> Response:
    limit = request.app.state.settings.max_upload_bytes
    content = await file.read(limit + 1)
    if len(content) > limit:
        errors = [FieldError("(文件)", f"文件超过 {limit // 1024 // 1024} MB 上限")]
    else:
        try:
            rows = read_rows(content, file.filename or "", services.OFFER_COLUMNS)
            errors = services.import_offers(session, rows=rows, actor=user).errors
        except ValidationFailed as e:
            errors = e.errors
    if errors:
        return _offers_page(request, session, user, upload_errors=errors, status_code=422)
    return redirect("/supplies/offers", msg="uploaded")


@router.get("/offers/template.csv")
def offer_template(user: CurrentUser) -> Response:
    require_role(user, "supplier")
    text = "".join(
        write_csv(
            [label for _, label in services.OFFER_COLUMNS],
            [
                [
                    "医用外科口罩",
                    10000,
                    3000,
                    0.8,
                    1,
                    "黄埔区,天河区",
                    0.5,
                    "44001912030001",
                    "2019-12-03",
                ],
                ["一次性手套", 50000, 10000, 0.4, 2, "黄埔区", "", "", ""],
            ],
        )
    )
    return Response(
        text.encode(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="offers-template.csv"'},
    )


@router.post("/offers/{offer_id}/clear")
def offer_clear(
    offer_id: int, session: SessionDep, user: CurrentUser, reason: Annotated[str, Form()] = ""
) -> Response:
    services.clear_offer(session, offer_id=offer_id, reason=reason, actor=user)
    return redirect("/supplies/offers", msg="cleared")


@router.post("/offers/{offer_id}/withdraw")
def offer_withdraw(offer_id: int, session: SessionDep, user: CurrentUser) -> Response:
    services.withdraw_offer(session, offer_id=offer_id, actor=user)
    return redirect("/supplies/offers", msg="withdrawn")


@router.post("/offers/{offer_id}/buy", response_class=HTMLResponse)
def offer_buy(
    request: Request,
    offer_id: int,
    session: SessionDep,
    user: CurrentUser,
    quantity: Annotated[str, Form()] = "",
    idempotency_key: Annotated[str, Form()] = "",
) -> Response:
    try:
        order = services.buy_direct(
            session,
            actor=user,
            data=DirectPurchase.model_validate(
                {
                    "offer_id": offer_id,
                    "enterprise_id": user.organisation_id,
                    "quantity": quantity,
                    "idempotency_key": idempotency_key,
                }
            ),
        )
    except ValidationError as e:
        return _offers_page(request, session, user, errors=_pydantic(e), status_code=422)
    except (ValidationFailed, Conflict) as e:
        session.rollback()
        return _offers_page(request, session, user, errors={"buy": e.message}, status_code=422)
    return redirect(f"/supplies/orders/{order.id}", msg="bought")


# -- requests ------------------------------------------------------------------------------


@router.get("/requests", response_class=HTMLResponse)
def requests_list(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    status = request.query_params.get("status") or None
    rows = queries.list_requests(session, actor=user, status=status)
    now = datetime.now(UTC)
    return render(
        request,
        "supplies/requests.html",
        user,
        rows=rows,
        status=status,
        late={r.id for r in rows if queries.late(r, now)},
        enterprises=queries.names(session, {r.enterprise_id for r in rows}),
        flash=flash(request, FLASH),
        **CTX,
    )


def _request_form(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "supplies/request_form.html",
        user,
        status_code=status_code,
        values=values,
        errors=errors,
        items=queries.items(session),
        choices=queries.buyer_choices(session, actor=user),
        **CTX,
    )


@router.get("/requests/new", response_class=HTMLResponse)
def request_new(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    qp = request.query_params
    values = {
        "enterprise_id": qp.get("enterprise_id", ""),
        "item": qp.get("item", ""),
        "quantity": qp.get("quantity", ""),
        "purpose": qp.get("purpose", ""),
        "need_id": qp.get("need_id", ""),
        "needed_by": (date.today() + timedelta(days=3)).isoformat(),
    }
    if user.has_role("enterprise") and not user.has_role("admin", "official", "manager"):
        values["enterprise_id"] = str(user.organisation_id)
    return _request_form(request, session, user, values, {})


@router.post("/requests/new", response_class=HTMLResponse)
async def request_create(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    form = await request.form()
    keys = (
        "enterprise_id",
        "uscc",
        "item",
        "quantity",
        "needed_by",
        "purpose",
        "max_unit_price",
        "need_id",
    )
    values = {k: str(form.get(k, "")).strip() for k in keys}
    if values["uscc"] and not values["enterprise_id"]:
        found = queries.enterprise_by_uscc(session, actor=user, uscc=values["uscc"])
        values["enterprise_id"] = str(found or "")
    if not values["enterprise_id"].isdigit():
        errs = {"enterprise_id": "请选择企业或填写本辖区企业的信用代码"}
        return _request_form(request, session, user, values, errs, 422)
    try:
        req = services.create_request(
            session,
            actor=user,
            data=RequestCreate.model_validate(
                {
                    "enterprise_id": values["enterprise_id"],
                    "item": values["item"],
                    "quantity": values["quantity"],
                    "needed_by": values["needed_by"],
                    "purpose": values["purpose"],
                    "max_unit_price": values["max_unit_price"],
                }
            ),
        )
        if values["need_id"].isdigit():
            # The desk need this request came from now points at it (and moves on).
            desk_services.link_need(
                session,
                need_id=int(values["need_id"]),
                ref=f"supplies_request:{req.id}",
                actor=user,
            )
    except ValidationError as e:
        session.rollback()
        return _request_form(request, session, user, values, _pydantic(e), 422)
    except ValidationFailed as e:
        session.rollback()
        return _request_form(request, session, user, values, errors_by_field(e.errors), 422)
    return redirect(f"/supplies/requests/{req.id}", msg="request_created")


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_detail(
    request: Request, request_id: int, session: SessionDep, user: CurrentUser
) -> Response:
    req = services.get_request(session, request_id=request_id, actor=user)
    return render(
        request,
        "supplies/request_detail.html",
        user,
        req=req,
        orders=queries.list_orders(session, actor=user, request_id=req.id),
        late=queries.late(req),
        h=_h,
        hours=queries.hours,
        flash=flash(request, FLASH),
        **CTX,
    )


@router.post("/requests/{request_id}/withdraw")
def request_withdraw(request_id: int, session: SessionDep, user: CurrentUser) -> Response:
    services.withdraw_request(session, request_id=request_id, actor=user)
    return redirect(f"/supplies/requests/{request_id}", msg="withdrawn")


# -- orders --------------------------------------------------------------------------------


@router.get("/orders", response_class=HTMLResponse)
def orders(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    status = request.query_params.get("status") or None
    rows = queries.list_orders(session, actor=user, status=status)
    return render(
        request,
        "supplies/orders.html",
        user,
        rows=rows,
        status=status,
        orgs=queries.names(
            session, {o.enterprise_id for o in rows} | {o.supplier_id for o in rows}
        ),
        flash=flash(request, FLASH),
        **CTX,
    )


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_detail(
    request: Request,
    order_id: int,
    session: SessionDep,
    user: CurrentUser,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    order = services.get_order(session, order_id=order_id, actor=user)
    return render(
        request,
        "supplies/order_detail.html",
        user,
        status_code=status_code,
        order=order,
        orgs=queries.names(session, {order.enterprise_id, order.supplier_id}),
        error=error,
        flash=flash(request, FLASH),
        **CTX,
    )


@router.post("/orders/{order_id}/{action}", response_class=HTMLResponse)
def order_action(
    request: Request,
    order_id: int,
    action: str,
    session: SessionDep,
    user: CurrentUser,
    tracking_no: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    try:
        services.order_action(
            session,
            order_id=order_id,
            action=action,
            actor=user,
            tracking_no=tracking_no,
            reason=reason,
        )
    except (ValidationFailed, Conflict) as e:
        session.rollback()
        msg = e.errors[0].message if isinstance(e, ValidationFailed) else e.message
        return order_detail(request, order_id, session, user, error=msg, status_code=422)
    return redirect(f"/supplies/orders/{order_id}", msg="order")


# -- rounds --------------------------------------------------------------------------------


@router.get("/rounds", response_class=HTMLResponse)
def rounds(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return render(
        request,
        "supplies/rounds.html",
        user,
        rounds=queries.list_rounds(session, actor=user),
        stock=queries.stock_and_shortage(session, actor=user),
        flash=flash(request, FLASH),
        **CTX,
    )


@router.post("/rounds")
def round_open(session: SessionDep, user: CurrentUser) -> Response:
    rnd = services.open_round(session, actor=user)
    return redirect(f"/supplies/rounds/{rnd.id}", msg="round_opened")


@router.get("/rounds/{round_id}", response_class=HTMLResponse)
def round_detail(
    request: Request,
    round_id: int,
    session: SessionDep,
    user: CurrentUser,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    rnd = services.get_round(session, round_id=round_id, actor=user)
    return render(
        request,
        "supplies/round_detail.html",
        user,
        status_code=status_code,
        rnd=rnd,
        pv=queries.round_preview(session, rnd),
        error=error,
        flash=flash(request, FLASH),
        **CTX,
    )


@router.post("/rounds/{round_id}/commit", response_class=HTMLResponse)
def round_commit(
    request: Request, round_id: int, session: SessionDep, user: CurrentUser
) -> Response:
    try:
        services.commit_round(session, round_id=round_id, actor=user)
    except Conflict as e:
        session.rollback()
        return round_detail(request, round_id, session, user, error=e.message, status_code=409)
    return redirect(f"/supplies/rounds/{round_id}", msg="committed")


@router.get("/rounds/{round_id}/export")
def round_export(
    round_id: int, session: SessionDep, user: CurrentUser, format: str = "json"
) -> Response:
    rnd = services.get_round(session, round_id=round_id, actor=user)
    if format == "xlsx":
        return Response(
            queries.round_xlsx(session, rnd),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="round-{rnd.id}.xlsx"'},
        )
    return Response(
        queries.round_json(rnd),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="round-{rnd.id}.json"'},
    )


# -- suppliers and policy ------------------------------------------------------------------


@router.get("/suppliers", response_class=HTMLResponse)
def suppliers(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    values: dict[str, str] | None = None,
) -> Response:
    rows = queries.vettings(session, actor=user)
    prices = queries.pre_prices(session, actor=user)
    return render(
        request,
        "supplies/suppliers.html",
        user,
        status_code=status_code,
        rows=rows,
        prices=prices,
        supplier_names={org.id: org.name for org, _ in rows},
        items=queries.items(session),
        values=values or {},
        errors=errors or {},
        flash=flash(request, FLASH),
        **CTX,
    )


@router.post("/suppliers/vetting", response_class=HTMLResponse)
async def vetting_submit(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    form = await request.form()
    docs: list[VettingDocument] = []
    try:
        for kind in DOCUMENT_TYPES:
            number = str(form.get(f"{kind}_number", "")).strip()
            if number:
                docs.append(VettingDocument(type=kind, name=DOCUMENT_TYPES[kind], number=number))
        services.submit_vetting(session, documents=docs, actor=user)
    except ValidationError as e:
        return suppliers(request, session, user, _pydantic(e), 422)
    except ValidationFailed as e:
        session.rollback()
        return suppliers(request, session, user, errors_by_field(e.errors), 422)
    return redirect("/supplies/suppliers", msg="vetting")


@router.post("/suppliers/{organisation_id}/review", response_class=HTMLResponse)
def vetting_review(
    request: Request,
    organisation_id: int,
    session: SessionDep,
    user: CurrentUser,
    decision: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    try:
        services.review_vetting(
            session,
            organisation_id=organisation_id,
            approve=decision == "approve",
            reason=reason,
            actor=user,
        )
    except ValidationFailed as e:
        session.rollback()
        return suppliers(request, session, user, errors_by_field(e.errors), 422)
    return redirect("/supplies/suppliers", msg="reviewed")


@router.post("/suppliers/pre-prices", response_class=HTMLResponse)
async def pre_price_submit(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    form = await request.form()
    keys = ("item", "unit_price", "invoice_no", "invoice_date")
    values = {k: str(form.get(k, "")).strip() for k in keys}
    try:
        data = PreEpidemicPriceCreate.model_validate({k: v for k, v in values.items() if v})
        services.submit_pre_price(session, data=data, actor=user)
    except ValidationError as e:
        return suppliers(request, session, user, _pydantic(e), 422, values)
    except ValidationFailed as e:
        session.rollback()
        return suppliers(request, session, user, errors_by_field(e.errors), 422, values)
    return redirect("/supplies/suppliers", msg="pre_price")


@router.post("/suppliers/pre-prices/{price_id}/review", response_class=HTMLResponse)
def pre_price_review(
    request: Request,
    price_id: int,
    session: SessionDep,
    user: CurrentUser,
    decision: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    try:
        services.review_pre_price(
            session, price_id=price_id, approve=decision == "approve", reason=reason, actor=user
        )
    except ValidationFailed as e:
        session.rollback()
        return suppliers(request, session, user, errors_by_field(e.errors), 422)
    return redirect("/supplies/suppliers", msg="reviewed")


@router.get("/policy", response_class=HTMLResponse)
def policy(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    error: str | None = None,
    text: str | None = None,
    status_code: int = 200,
) -> Response:
    require_role(user, *OFFICIALS, "auditor")
    current = services.current_policy(session).to_dict()
    return render(
        request,
        "supplies/policy.html",
        user,
        status_code=status_code,
        policy_text=text or json.dumps(current, ensure_ascii=False, indent=2),
        items=queries.items(session),
        caps=queries.price_caps(session),
        error=error,
        flash=flash(request, FLASH),
        **CTX,
    )


@router.post("/policy", response_class=HTMLResponse)
def policy_save(
    request: Request, session: SessionDep, user: CurrentUser, rules: Annotated[str, Form()] = ""
) -> Response:
    try:
        doc = json.loads(rules)
        services.set_policy(session, doc=doc, actor=user)
    except ValueError as e:
        msg = f"JSON 无法解析：{e}"
        return policy(request, session, user, error=msg, text=rules, status_code=422)
    except ValidationFailed as e:
        session.rollback()
        return policy(
            request, session, user, error=e.errors[0].message, text=rules, status_code=422
        )
    return redirect("/supplies/policy", msg="policy")


@router.post("/price-caps", response_class=HTMLResponse)
def price_cap_save(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    item: Annotated[str, Form()] = "",
    mode: Annotated[str, Form()] = "factor",
    factor: Annotated[str, Form()] = "",
    margin: Annotated[str, Form()] = "",
) -> Response:
    try:
        factor_v = float(factor) if factor.strip() else None
    except ValueError:
        return policy(request, session, user, error="限价倍数应为数字", status_code=422)
    try:
        # The form takes the margin in percent, as a regulator states it ("加价不超过 15%").
        margin_v = float(margin) / 100 if margin.strip() else None
    except ValueError:
        return policy(request, session, user, error="加价率应为数字（百分比）", status_code=422)
    try:
        services.set_price_cap(
            session, item_code=item, mode=mode, factor=factor_v, margin=margin_v, actor=user
        )
    except ValidationFailed as e:
        session.rollback()
        return policy(request, session, user, error=e.errors[0].message, status_code=422)
    return redirect("/supplies/policy", msg="price_cap")
