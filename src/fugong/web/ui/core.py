"""Pages of the core domain: login, home, the enterprise registry, the dashboard, the audit
trail and the account page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from fugong.core import queries, services
from fugong.core.models import ApiToken, Organisation, User
from fugong.core.permissions import (
    AUDIT_READERS,
    REGISTRY_CREATORS,
    REGISTRY_IMPORTERS,
    REGISTRY_READERS,
    can_edit_enterprise,
    require_role,
)
from fugong.core.reference import DISTRICTS, HUANGPU_STREETS, STREETS_BY_DISTRICT
from fugong.core.schemas import ContactCreate, EnterpriseCreate, EnterpriseUpdate
from fugong.core.tabular import ENTERPRISE_COLUMNS, read_table, write_csv, write_xlsx
from fugong.errors import FieldError, FugongError, RateLimited, ValidationFailed
from fugong.web.auth import CookieSigner
from fugong.web.charts import stacked_bars
from fugong.web.deps import CurrentUser, OptionalUser, SessionDep, form_csrf_guard
from fugong.web.ui.render import errors_by_field, flash, query_without, redirect, render

router = APIRouter(dependencies=[Depends(form_csrf_guard)])

FLASH = {
    "created": "企业已登记。",
    "saved": "修改已保存。",
    "imported": "导入完成。",
    "password": "密码已修改，其他设备上的登录已失效。",
    "token_revoked": "令牌已吊销。",
    "logged_out": "您已退出登录。",
    "contact_saved": "联系人已更新。",
}
FORM_FIELDS = (
    "uscc",
    "name",
    "district",
    "street",
    "address",
    "industry",
    "size",
    "key_category",
    "headcount",
    "insured_employees",
    "resumption_status",
    "resumption_date",
    "staff_back_pct",
    "manager",
    "contact_name",
    "contact_phone",
    "contact_title",
    "note",
)


# -- login -----------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, user: OptionalUser, next: str = "/") -> Response:
    if user is not None:
        return redirect("/")
    return render(
        request, "core/login.html", None, next=_safe_next(next), flash=flash(request, FLASH)
    )


def _safe_next(target: str) -> str:
    # Only same-site paths: an open redirect after login is a phishing tool.
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    settings = request.app.state.settings
    try:
        user = services.authenticate(
            session,
            username=username,
            password=password,
            ip=request.client.host if request.client else None,
            max_failures=settings.login_max_failures,
            lockout_s=settings.login_lockout_s,
        )
    except RateLimited as e:
        session.commit()
        return render(
            request,
            "core/login.html",
            None,
            status_code=429,
            error=e.message,
            next=_safe_next(next),
            username=username,
        )
    except FugongError as e:
        # Keep the failure counters although the request fails.
        session.commit()
        return render(
            request,
            "core/login.html",
            None,
            status_code=401,
            error=e.message,
            next=_safe_next(next),
            username=username,
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    signer: CookieSigner = request.app.state.signer
    signer.login(response, user.id, user.session_epoch)
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    response = redirect("/login", msg="logged_out")
    signer: CookieSigner = request.app.state.signer
    signer.logout(response)
    return response


# -- home and dashboard ------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: CurrentUser) -> Response:
    if user.has_role(*REGISTRY_READERS) and not user.has_role("enterprise"):
        return redirect("/dashboard")
    if user.has_role("enterprise"):
        return redirect(f"/enterprises/{user.organisation_id}")
    if user.has_role("cdc"):
        return redirect("/tracing")
    return render(request, "core/home.html", user)


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    d = queries.dashboard(session, actor=user)
    from fugong.core.reference import RESUMPTION_STATUSES

    return render(
        request,
        "core/dashboard.html",
        user,
        d=d,
        street_chart=stacked_bars(d.by_street, RESUMPTION_STATUSES),
        industry_chart=stacked_bars(d.by_industry, RESUMPTION_STATUSES, label_w=230),
        status_chart=stacked_bars(
            [(lbl, {c: n}) for c, lbl, n in d.by_status], RESUMPTION_STATUSES
        ),
    )


# -- enterprise registry -----------------------------------------------------------------------


def _filter_from(request: Request) -> tuple[queries.EnterpriseFilter, dict[str, Any]]:
    qp = request.query_params
    params = {
        k: qp.get(k) or None
        for k in (
            "q",
            "district",
            "street",
            "industry",
            "size",
            "key_category",
            "resumption_status",
            "manager_id",
        )
    }
    mid = params.pop("manager_id")
    flt = queries.EnterpriseFilter(**params, manager_id=int(mid) if mid and mid.isdigit() else None)
    params["manager_id"] = mid
    return flt, params


@router.get("/enterprises", response_class=HTMLResponse)
def enterprise_list(
    request: Request, session: SessionDep, user: CurrentUser, page: int = 1
) -> Response:
    flt, params = _filter_from(request)
    p = queries.list_enterprise_rows(session, actor=user, flt=flt, page=page, per_page=50)
    return render(
        request,
        "core/enterprise_list.html",
        user,
        page=p,
        params=params,
        qs=query_without(params),
        districts=DISTRICTS,
        streets=HUANGPU_STREETS,
        managers=queries.managers(session) if not user.has_role("enterprise") else [],
        can_create=user.has_role(*REGISTRY_CREATORS),
        can_import=user.has_role(*REGISTRY_IMPORTERS),
        flash=flash(request, FLASH),
    )


@router.get("/enterprises/export")
def enterprise_export(
    request: Request, session: SessionDep, user: CurrentUser, format: str = "csv"
) -> Response:
    flt, _ = _filter_from(request)
    header = [label for _, label in ENTERPRISE_COLUMNS[:14]]
    rows = (
        [
            e.uscc,
            e.name,
            e.district,
            e.street,
            e.address,
            label_of("industry", e.industry),
            label_of("size", e.size),
            label_of("key", e.key_category),
            e.headcount,
            e.insured_employees,
            label_of("status", e.resumption_status),
            e.resumption_date,
            e.staff_back_pct,
            e.manager,
        ]
        for e in queries.iter_enterprises(session, actor=user, flt=flt)
    )
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    from fugong.core import audit

    audit.record(
        session,
        actor=user,
        action="enterprise.export",
        target_type="enterprise",
        detail=f"format={format} filter={flt.active()}",
    )
    if format == "xlsx":
        body = write_xlsx(header, rows, title="企业名录")
        return Response(
            body,
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="enterprises-{stamp}.xlsx"'},
        )
    text = "".join(write_csv(header, rows))
    return Response(
        text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="enterprises-{stamp}.csv"'},
    )


def label_of(kind: str, code: str | None) -> str:
    from fugong.core.reference import (
        INDUSTRIES,
        KEY_CATEGORIES,
        RESUMPTION_STATUSES,
        SIZES,
        label,
    )

    table = {
        "industry": INDUSTRIES,
        "size": SIZES,
        "key": KEY_CATEGORIES,
        "status": RESUMPTION_STATUSES,
    }[kind]
    return "" if code is None else label(table, code)


def _form_values(form: Any) -> dict[str, Any]:
    return {k: str(form.get(k, "")) for k in FORM_FIELDS if k in form}


def _enterprise_form(
    request: Request,
    session: Session,
    user: User,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    creating: bool,
    org: Organisation | None = None,
    status_code: int = 200,
    self_only: bool = False,
) -> Response:
    return render(
        request,
        "core/enterprise_form.html",
        user,
        status_code=status_code,
        values=values,
        errors=errors,
        creating=creating,
        org=org,
        self_only=self_only,
        districts=DISTRICTS,
        streets_by_district=STREETS_BY_DISTRICT,
        managers=queries.managers(session),
    )


@router.get("/enterprises/new", response_class=HTMLResponse)
def enterprise_new(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    require_role(user, *REGISTRY_CREATORS)
    values = {
        "district": user.organisation.district or "黄埔区",
        "resumption_status": "not_resumed",
    }
    return _enterprise_form(request, session, user, values=values, errors={}, creating=True)


@router.post("/enterprises/new", response_class=HTMLResponse)
async def enterprise_create(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    require_role(user, *REGISTRY_CREATORS)
    values = _form_values(await request.form())
    values.pop("note", None)
    errors: list[FieldError] = []
    try:
        data = EnterpriseCreate.model_validate(values)
        org = services.create_enterprise(session, data=data, actor=user)
    except ValidationError as e:
        errors = services.field_errors(e)
    except ValidationFailed as e:
        errors = e.errors
    else:
        return redirect(f"/enterprises/{org.id}", msg="created")
    return _enterprise_form(
        request,
        session,
        user,
        values=values,
        errors=errors_by_field(errors),
        creating=True,
        status_code=422,
    )


@router.get("/enterprises/import", response_class=HTMLResponse)
def import_page(request: Request, user: CurrentUser) -> Response:
    require_role(user, *REGISTRY_IMPORTERS)
    return render(
        request, "core/enterprise_import.html", user, columns=ENTERPRISE_COLUMNS, report=None
    )


@router.get("/enterprises/import/template.csv")
def import_template(user: CurrentUser) -> Response:
    require_role(user, *REGISTRY_IMPORTERS)
    text = "".join(write_csv([label for _, label in ENTERPRISE_COLUMNS], []))
    return Response(
        text.encode(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="import-template.csv"'},
    )


@router.post("/enterprises/import", response_class=HTMLResponse)
async def import_upload(
    request: Request, session: SessionDep, user: CurrentUser, file: Annotated[UploadFile, File()]
) -> Response:
    require_role(user, *REGISTRY_IMPORTERS)
    limit = request.app.state.settings.max_upload_bytes
    content = await file.read(limit + 1)
    errors: list[FieldError]
    created = 0
    if len(content) > limit:
        errors = [FieldError("(文件)", f"文件超过 {limit // 1024 // 1024} MB 上限")]
    else:
        try:
            rows = read_table(content, file.filename or "")
            report = services.import_enterprises(session, rows=rows, actor=user)
            errors, created = report.errors, report.created
        except ValidationFailed as e:
            errors = e.errors
    status = 422 if errors else 200
    return render(
        request,
        "core/enterprise_import.html",
        user,
        status_code=status,
        columns=ENTERPRISE_COLUMNS,
        report={"errors": errors, "created": created, "filename": file.filename},
    )


@router.get("/enterprises/{enterprise_id}", response_class=HTMLResponse)
def enterprise_detail(
    request: Request, enterprise_id: int, session: SessionDep, user: CurrentUser
) -> Response:
    org = queries.get_enterprise(session, actor=user, enterprise_id=enterprise_id)
    assert org.enterprise is not None
    contacts = queries.read_contacts(session, actor=user, org=org)
    return render(
        request,
        "core/enterprise_detail.html",
        user,
        org=org,
        ent=org.enterprise,
        e=queries.enterprise_read(session, org),
        contacts=contacts,
        can_edit=can_edit_enterprise(user, org.enterprise),
        flash=flash(request, FLASH),
    )


@router.post("/enterprises/{enterprise_id}/contacts", response_class=HTMLResponse)
def contact_add(
    request: Request,
    enterprise_id: int,
    session: SessionDep,
    user: CurrentUser,
    name: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
    title: Annotated[str, Form()] = "",
) -> Response:
    org = queries.get_enterprise(session, actor=user, enterprise_id=enterprise_id)
    try:
        data = ContactCreate.model_validate({"name": name, "phone": phone, "title": title})
        services.add_contact(session, enterprise_id=org.id, data=data, actor=user)
    except ValidationError as e:
        raise ValidationFailed(services.field_errors(e)) from None
    return redirect(f"/enterprises/{org.id}", msg="contact_saved")


@router.post("/enterprises/{enterprise_id}/contacts/{contact_id}/delete")
def contact_remove(
    enterprise_id: int, contact_id: int, session: SessionDep, user: CurrentUser
) -> Response:
    org = queries.get_enterprise(session, actor=user, enterprise_id=enterprise_id)
    services.remove_contact(session, contact_id=contact_id, actor=user)
    return redirect(f"/enterprises/{org.id}", msg="contact_saved")


@router.get("/enterprises/{enterprise_id}/edit", response_class=HTMLResponse)
def enterprise_edit(
    request: Request, enterprise_id: int, session: SessionDep, user: CurrentUser
) -> Response:
    org = queries.get_enterprise(session, actor=user, enterprise_id=enterprise_id)
    e = queries.enterprise_read(session, org)
    values = {k: ("" if v is None else str(v)) for k, v in e.model_dump().items()}
    return _enterprise_form(
        request,
        session,
        user,
        values=values,
        errors={},
        creating=False,
        org=org,
        self_only=user.has_role("enterprise") and not user.has_role("admin", "official", "manager"),
    )


@router.post("/enterprises/{enterprise_id}/edit", response_class=HTMLResponse)
async def enterprise_update(
    request: Request, enterprise_id: int, session: SessionDep, user: CurrentUser
) -> Response:
    org = queries.get_enterprise(session, actor=user, enterprise_id=enterprise_id)
    values = _form_values(await request.form())
    self_only = user.has_role("enterprise") and not user.has_role("admin", "official", "manager")
    if self_only:
        from fugong.core.permissions import ENTERPRISE_SELF_FIELDS

        values = {k: v for k, v in values.items() if k in ENTERPRISE_SELF_FIELDS}
    values.pop("uscc", None)  # the code identifies the enterprise; it is not edited
    for k in ("contact_name", "contact_phone", "contact_title"):
        values.pop(k, None)
    errors: list[FieldError] = []
    try:
        data = EnterpriseUpdate.model_validate(values)
        services.update_enterprise(session, enterprise_id=org.id, data=data, actor=user)
    except ValidationError as e:
        errors = services.field_errors(e)
    except ValidationFailed as e:
        errors = e.errors
    else:
        return redirect(f"/enterprises/{org.id}", msg="saved")
    session.rollback()
    return _enterprise_form(
        request,
        session,
        user,
        values=values,
        errors=errors_by_field(errors),
        creating=False,
        org=org,
        status_code=422,
        self_only=self_only,
    )


# -- audit -------------------------------------------------------------------------------------


def _audit_filter(request: Request) -> tuple[queries.AuditFilter, dict[str, Any]]:
    qp = request.query_params
    params = {
        k: qp.get(k) or None
        for k in ("actor", "action", "target_type", "target_id", "since", "until")
    }

    def when(v: str | None) -> datetime | None:
        if not v:
            return None
        try:
            d = datetime.fromisoformat(v)
        except ValueError:
            raise ValidationFailed(
                [FieldError("since/until", f"日期格式应为 YYYY-MM-DD：{v}")]
            ) from None
        return d if d.tzinfo else d.replace(tzinfo=UTC)

    flt = queries.AuditFilter(
        actor=params["actor"],
        action=params["action"],
        target_type=params["target_type"],
        target_id=params["target_id"],
        since=when(params["since"]),
        until=when(params["until"]),
    )
    return flt, params


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, session: SessionDep, user: CurrentUser, page: int = 1) -> Response:
    require_role(user, *AUDIT_READERS)
    flt, params = _audit_filter(request)
    rows, total = queries.list_audit(session, actor=user, flt=flt, page=page, per_page=50)
    return render(
        request,
        "core/audit.html",
        user,
        rows=rows,
        total=total,
        page=page,
        pages=max(1, -(-total // 50)),
        params=params,
        qs=query_without(params),
    )


@router.get("/audit/export.csv")
def audit_export(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    require_role(user, *AUDIT_READERS)
    flt, _ = _audit_filter(request)
    import json

    rows = (
        [
            r.id,
            r.at.isoformat(),
            r.actor_label,
            r.action,
            r.target_type,
            r.target_id,
            json.dumps(r.before, ensure_ascii=False) if r.before else "",
            json.dumps(r.after, ensure_ascii=False) if r.after else "",
            r.detail,
            r.ip,
        ]
        for r in queries.iter_audit(session, actor=user, flt=flt)
    )
    text = "".join(
        write_csv(
            [
                "id",
                "时间(UTC)",
                "操作人",
                "操作",
                "对象类型",
                "对象ID",
                "修改前",
                "修改后",
                "说明",
                "IP",
            ],
            rows,
        )
    )
    from fugong.core import audit

    audit.record(
        session,
        actor=user,
        action="audit.export",
        target_type="audit_log",
        detail=str({k: v for k, v in flt.__dict__.items() if v}),
    )
    return StreamingResponse(
        iter([text.encode()]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )


# -- account -----------------------------------------------------------------------------------


def _tokens(session: SessionDep, user: CurrentUser) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
        )
    )


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return render(
        request,
        "core/account.html",
        user,
        tokens=_tokens(session, user),
        errors={},
        new_token=None,
        flash=flash(request, FLASH),
    )


@router.post("/account/password", response_class=HTMLResponse)
def account_password(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    old_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
    new_password2: Annotated[str, Form()] = "",
) -> Response:
    try:
        if new_password != new_password2:
            raise ValidationFailed([FieldError("new_password2", "两次输入的新密码不一致")])
        services.change_password(session, user=user, old=old_password, new=new_password)
    except ValidationFailed as e:
        return render(
            request,
            "core/account.html",
            user,
            status_code=422,
            tokens=_tokens(session, user),
            errors=errors_by_field(e.errors),
            new_token=None,
        )
    response = redirect("/account", msg="password")
    signer: CookieSigner = request.app.state.signer
    signer.login(response, user.id, user.session_epoch)  # this session stays logged in
    return response


@router.post("/account/tokens", response_class=HTMLResponse)
def account_token(
    request: Request, session: SessionDep, user: CurrentUser, name: Annotated[str, Form()] = ""
) -> Response:
    try:
        token, _ = services.create_api_token(session, user=user, name=name, actor=user)
    except ValidationFailed as e:
        return render(
            request,
            "core/account.html",
            user,
            status_code=422,
            tokens=_tokens(session, user),
            errors=errors_by_field(e.errors),
            new_token=None,
        )
    return render(
        request,
        "core/account.html",
        user,
        tokens=_tokens(session, user),
        errors={},
        new_token=token,
    )


@router.post("/account/tokens/{token_id}/revoke")
def account_token_revoke(token_id: int, session: SessionDep, user: CurrentUser) -> Response:
    services.revoke_api_token(session, token_id=token_id, actor=user)
    return redirect("/account", msg="token_revoked")
