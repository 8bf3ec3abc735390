"""Relief-policy pages: what an enterprise can claim and why, its facts per period, claims with
documents, review and payout, "policy finds the enterprise" for officials and managers, and the
dated parameter values officials add."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from fugong.core import audit
from fugong.core import services as core_services
from fugong.core.models import Enterprise, User
from fugong.core.permissions import require_role
from fugong.core.reference import HUANGPU_STREETS
from fugong.core.tabular import write_csv, write_xlsx
from fugong.errors import Conflict, ValidationFailed
from fugong.policies import queries, services
from fugong.policies.engine import Pack, format_cents
from fugong.policies.models import CLAIM_STATUSES, MAX_DOCUMENT_BYTES
from fugong.policies.permissions import (
    FINDERS,
    PARAMETER_EDITORS,
    can_apply,
    can_enter_facts,
    can_review,
)
from fugong.policies.queries import DEFAULT_PERIOD, STATUS_LABELS
from fugong.policies.schemas import ClaimCreate, ClaimReview, ParameterValueCreate, PayoutCreate
from fugong.web.deps import CurrentUser, SessionDep, form_csrf_guard
from fugong.web.ui.render import flash, redirect, render

router = APIRouter(prefix="/policies", dependencies=[Depends(form_csrf_guard)])

FLASH = {
    "facts_saved": "已保存（新版本），以下结果按最新数据计算。",
    "applied": "申请已提交，请按清单上传材料。",
    "uploaded": "材料已上传。",
    "reviewed": "审核结果已保存。",
    "paid": "拨付已登记。",
    "parameter_added": "参数值已添加，计算时自动生效。",
}
PERIODS = ("2020", "2021", "2022", "2023")
MODES = {"automatic": "自动享受", "application": "申请支持"}


def _period(request: Request) -> str:
    p = request.query_params.get("period", DEFAULT_PERIOD)
    return p if p in PERIODS else DEFAULT_PERIOD


def _upload_dir(request: Request) -> Path:
    return Path(request.app.state.settings.data_dir) / "uploads"


def yuan(cents: int | None) -> str:
    return "—" if cents is None else format_cents(cents)


def labels(pack: Pack) -> dict[str, str]:
    """Chinese names for everything an explanation can read: facts, parameters, variables."""
    out = {name: spec.label or name for name, spec in pack.facts.items()}
    out |= {f"param.{name}": p.description for name, p in pack.parameters.items()}
    for m in pack.measures:
        out |= {v.name: v.label or v.name for v in m.variables}
    return out


def shown(value: Any) -> str:
    """A value read by a condition, as a person reads it."""
    if value is None:
        return "?（未填报）"
    if value is True:
        return "是"
    if value is False:
        return "否"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _ctx(pack: Pack) -> dict[str, Any]:
    return {
        "CLAIM_STATUSES": CLAIM_STATUSES,
        "STATUS_LABELS": STATUS_LABELS,
        "MODES": MODES,
        "LABELS": labels(pack),
        "shown": shown,
        "yuan": yuan,
        "pack": pack,
    }


# -- the enterprise's view -----------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def home(user: CurrentUser) -> Response:
    if user.has_role("enterprise") and not user.has_role("admin", "official", "manager"):
        return redirect(f"/policies/enterprises/{user.organisation_id}")
    if user.has_role(*FINDERS):
        return redirect("/policies/finder")
    return redirect("/policies/claims")


def _eligibility_page(
    request: Request,
    session: SessionDep,
    user: User,
    enterprise_id: int,
    period: str,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    elig = queries.eligibility(session, actor=user, enterprise_id=enterprise_id, period=period)
    return render(
        request,
        "policies/eligibility.html",
        user,
        status_code=status_code,
        elig=elig,
        periods=PERIODS,
        can_apply=can_apply(user, elig.enterprise),
        can_enter=can_enter_facts(user, elig.enterprise),
        error=error,
        flash=flash(request, FLASH),
        **_ctx(elig.pack),
    )


@router.get("/enterprises/{enterprise_id}", response_class=HTMLResponse)
def eligibility(
    request: Request, enterprise_id: int, session: SessionDep, user: CurrentUser
) -> Response:
    return _eligibility_page(request, session, user, enterprise_id, _period(request))


@router.post("/enterprises/{enterprise_id}/claims", response_class=HTMLResponse)
def apply(
    request: Request,
    enterprise_id: int,
    session: SessionDep,
    user: CurrentUser,
    measure: Annotated[str, Form()] = "",
    period: Annotated[str, Form()] = DEFAULT_PERIOD,
) -> Response:
    try:
        claim = services.apply_claim(
            session,
            actor=user,
            data=ClaimCreate(enterprise_id=enterprise_id, measure=measure, period=period),
        )
    except (Conflict, ValidationFailed) as e:
        session.rollback()
        code = 409 if isinstance(e, Conflict) else 422
        return _eligibility_page(request, session, user, enterprise_id, period, e.message, code)
    except ValidationError:
        return _eligibility_page(
            request, session, user, enterprise_id, DEFAULT_PERIOD, "年度有误", 422
        )
    return redirect(f"/policies/claims/{claim.id}", msg="applied")


# -- facts ---------------------------------------------------------------------------------


def _facts_page(
    request: Request,
    session: SessionDep,
    user: User,
    ent: Enterprise,
    period: str,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    pack = queries.current_pack(session)
    history = queries.facts_history(session, actor=user, enterprise_id=ent.id, period=period)
    if values is None:
        latest = history[0].facts if history else {}
        values = {k: _form_value(v) for k, v in latest.items()}
    fields = [pack.facts[name] for name in services.entered_facts(pack)]
    return render(
        request,
        "policies/facts.html",
        user,
        status_code=status_code,
        ent=ent,
        period=period,
        periods=PERIODS,
        fields=fields,
        values=values,
        errors=errors or {},
        history=history,
        can_enter=can_enter_facts(user, ent),
        **_ctx(pack),
    )


def _form_value(v: Any) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return "" if v is None else str(v)


@router.get("/enterprises/{enterprise_id}/facts", response_class=HTMLResponse)
def facts(request: Request, enterprise_id: int, session: SessionDep, user: CurrentUser) -> Response:
    ent = queries.visible_enterprise(session, actor=user, enterprise_id=enterprise_id)
    return _facts_page(request, session, user, ent, _period(request))


@router.post("/enterprises/{enterprise_id}/facts", response_class=HTMLResponse)
async def facts_save(
    request: Request, enterprise_id: int, session: SessionDep, user: CurrentUser
) -> Response:
    form = await request.form()
    period = str(form.get("period", DEFAULT_PERIOD))
    pack = queries.current_pack(session)
    values = {name: str(form.get(name, "")) for name in services.entered_facts(pack)}
    try:
        services.save_facts(
            session, enterprise_id=enterprise_id, period=period, values=values, actor=user
        )
    except ValidationFailed as e:
        session.rollback()
        ent = queries.visible_enterprise(session, actor=user, enterprise_id=enterprise_id)
        errs = {f.field: f.message for f in e.errors}
        return _facts_page(request, session, user, ent, period, values, errs, 422)
    return redirect(f"/policies/enterprises/{enterprise_id}?period={period}", msg="facts_saved")


# -- claims --------------------------------------------------------------------------------


@router.get("/claims", response_class=HTMLResponse)
def claims(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    status = request.query_params.get("status") or None
    if status not in CLAIM_STATUSES:
        status = None
    rows = queries.list_claims(session, actor=user, status=status)
    pack = queries.base_pack()
    return render(
        request,
        "policies/claims.html",
        user,
        claims=rows,
        status=status,
        titles={m.id: m.title for m in pack.measures},
        flash=flash(request, FLASH),
        **_ctx(pack),
    )


def _claim_page(
    request: Request,
    session: SessionDep,
    user: User,
    claim_id: int,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    claim = queries.get_claim(session, actor=user, claim_id=claim_id)
    pack = queries.base_pack(claim.pack)
    measure = pack.measure(claim.measure)
    ent = session.get(Enterprise, claim.enterprise_id)
    assert ent is not None
    uploaded = {d.doc_type for d in claim.documents}
    return render(
        request,
        "policies/claim_detail.html",
        user,
        status_code=status_code,
        claim=claim,
        measure=measure,
        checklist=[(doc, doc in uploaded) for doc in measure.documents],
        can_upload=can_apply(user, ent) and claim.status == "applied",
        can_review=can_review(user, ent),
        errors=errors or {},
        today=datetime.now(UTC).date().isoformat(),
        flash=flash(request, FLASH),
        **_ctx(pack),
    )


@router.get("/claims/{claim_id}", response_class=HTMLResponse)
def claim_detail(
    request: Request, claim_id: int, session: SessionDep, user: CurrentUser
) -> Response:
    return _claim_page(request, session, user, claim_id)


@router.post("/claims/{claim_id}/documents", response_class=HTMLResponse)
async def claim_upload(
    request: Request,
    claim_id: int,
    session: SessionDep,
    user: CurrentUser,
    file: Annotated[UploadFile, File()],
    doc_type: Annotated[str, Form()] = "",
) -> Response:
    limit = MAX_DOCUMENT_BYTES
    content = await file.read(limit + 1)
    try:
        services.upload_document(
            session,
            claim_id=claim_id,
            doc_type=doc_type,
            filename=file.filename or "",
            content=content,
            actor=user,
            upload_dir=_upload_dir(request),
        )
    except (ValidationFailed, Conflict) as e:
        session.rollback()
        return _claim_page(request, session, user, claim_id, {"upload": e.message}, 422)
    return redirect(f"/policies/claims/{claim_id}", msg="uploaded")


@router.get("/documents/{document_id}")
def document(
    request: Request, document_id: int, session: SessionDep, user: CurrentUser
) -> Response:
    doc, content = services.read_document(
        session, document_id=document_id, actor=user, upload_dir=_upload_dir(request)
    )
    return Response(
        content,
        media_type=doc.content_type,
        headers={
            # Always a download: an uploaded file is never rendered in the platform's origin.
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(doc.filename)}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


def _pydantic_errors(e: ValidationError) -> dict[str, str]:
    return {f.field: f.message for f in core_services.field_errors(e)}


@router.post("/claims/{claim_id}/review", response_class=HTMLResponse)
def claim_review(
    request: Request,
    claim_id: int,
    session: SessionDep,
    user: CurrentUser,
    decision: Annotated[str, Form()] = "",
    amount: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    try:
        data = ClaimReview.model_validate(
            {"decision": decision, "amount": amount.strip() or None, "reason": reason}
        )
        services.review_claim(session, claim_id=claim_id, data=data, actor=user)
    except ValidationError as e:
        return _claim_page(request, session, user, claim_id, _review_errors(e), 422)
    except (ValidationFailed, Conflict) as e:
        session.rollback()
        return _claim_page(request, session, user, claim_id, {"review": e.message}, 422)
    return redirect(f"/policies/claims/{claim_id}", msg="reviewed")


def _review_errors(e: ValidationError) -> dict[str, str]:
    errs = _pydantic_errors(e)
    if "reason" in errs:
        errs["reason"] = "请填写审核理由（至少两个字）"
    return {"review": "；".join(errs.values())} | errs


@router.post("/claims/{claim_id}/payout", response_class=HTMLResponse)
def claim_payout(
    request: Request,
    claim_id: int,
    session: SessionDep,
    user: CurrentUser,
    amount: Annotated[str, Form()] = "",
    paid_on: Annotated[str, Form()] = "",
    reference: Annotated[str, Form()] = "",
) -> Response:
    try:
        data = PayoutCreate.model_validate(
            {"amount": amount.strip() or None, "paid_on": paid_on, "reference": reference}
        )
        services.record_payout(session, claim_id=claim_id, data=data, actor=user)
    except ValidationError as e:
        errs = _pydantic_errors(e)
        return _claim_page(
            request, session, user, claim_id, {"payout": "；".join(errs.values())}, 422
        )
    except (ValidationFailed, Conflict) as e:
        session.rollback()
        return _claim_page(request, session, user, claim_id, {"payout": e.message}, 422)
    return redirect(f"/policies/claims/{claim_id}", msg="paid")


# -- policy finds the enterprise -----------------------------------------------------------


def _finder_filter(request: Request) -> queries.FinderFilter:
    qp = request.query_params
    min_amount = qp.get("min_amount", "").strip()
    try:
        min_cents = services.to_cents(float(min_amount)) if min_amount else None
    except ValueError:
        min_cents = None
    return queries.FinderFilter(
        measure=qp.get("measure") or None, street=qp.get("street") or None, min_cents=min_cents
    )


@router.get("/finder", response_class=HTMLResponse)
def finder(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    period = _period(request)
    flt = _finder_filter(request)
    rows = queries.find_enterprises(session, actor=user, period=period, flt=flt)
    pack = queries.current_pack(session)
    return render(
        request,
        "policies/finder.html",
        user,
        rows=rows[:500],
        total=len(rows),
        total_cents=sum(r.cents for r in rows),
        flt=flt,
        period=period,
        periods=PERIODS,
        streets=HUANGPU_STREETS,
        measures=[m for m in pack.measures if m.mode == "application"],
        query=request.url.query,
        **_ctx(pack),
    )


@router.get("/finder/export")
def finder_export(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    period = _period(request)
    flt = _finder_filter(request)
    rows = queries.find_enterprises(session, actor=user, period=period, flt=flt)
    header = [
        "统一社会信用代码",
        "企业名称",
        "街道",
        "客户经理",
        "政策",
        "预计金额（元）",
        "暂定金额",
    ]
    data = [
        [
            r.uscc,
            r.name,
            r.street,
            r.manager,
            r.title,
            format_cents(r.cents),
            "是" if r.stand_in else "",
        ]
        for r in rows
    ]
    fmt = request.query_params.get("format", "csv")
    audit.record(
        session,
        actor=user,
        action="policy.finder.export",
        target_type="policy_finder",
        detail=f"format={fmt} period={period} measure={flt.measure} street={flt.street} "
        f"min_cents={flt.min_cents} rows={len(rows)}",
    )
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    if fmt == "xlsx":
        return Response(
            write_xlsx(header, data, title="政策找企业"),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="policy-finder-{stamp}.xlsx"'},
        )
    return Response(
        "".join(write_csv(header, data)).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="policy-finder-{stamp}.csv"'},
    )


# -- parameter values ----------------------------------------------------------------------


def _parameters_page(
    request: Request,
    session: SessionDep,
    user: User,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    require_role(user, "admin", "official", "manager", "auditor")
    pack = queries.current_pack(session)
    return render(
        request,
        "policies/parameters.html",
        user,
        status_code=status_code,
        params=sorted(pack.parameters.values(), key=lambda p: p.name),
        added=queries.parameter_values(session, pack.id),
        can_edit=user.has_role(*PARAMETER_EDITORS),
        values=values or {"valid_from": date.today().replace(month=1, day=1).isoformat()},
        errors=errors or {},
        flash=flash(request, FLASH),
        **_ctx(pack),
    )


@router.get("/parameters", response_class=HTMLResponse)
def parameters(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _parameters_page(request, session, user)


@router.post("/parameters", response_class=HTMLResponse)
async def parameter_add(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    form = await request.form()
    values = {
        k: str(form.get(k, "")).strip()
        for k in ("parameter", "valid_from", "value", "size_class", "source_text")
    }
    values["stand_in"] = "1" if form.get("stand_in") else ""
    try:
        data = ParameterValueCreate.model_validate(
            {
                "parameter": values["parameter"],
                "valid_from": values["valid_from"],
                "value": values["value"],
                "size_class": values["size_class"] or None,
                "source_text": values["source_text"],
                "stand_in": bool(values["stand_in"]),
            }
        )
        services.add_parameter_value(session, data=data, actor=user)
    except ValidationError as e:
        return _parameters_page(request, session, user, values, _pydantic_errors(e), 422)
    except ValidationFailed as e:
        session.rollback()
        errs = {f.field: f.message for f in e.errors}
        return _parameters_page(request, session, user, values, errs, 422)
    return redirect("/policies/parameters", msg="parameter_added")
