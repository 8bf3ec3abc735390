"""Administration pages: users and organisations (role ``admin``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from fugong.core import queries, services
from fugong.core.models import Organisation
from fugong.core.permissions import USER_ADMINS, require_role
from fugong.core.reference import DISTRICTS, INSTITUTION_TYPES
from fugong.core.schemas import OrganisationCreate, UserCreate
from fugong.errors import Conflict, ValidationFailed
from fugong.web.deps import CurrentUser, SessionDep, form_csrf_guard
from fugong.web.ui.render import errors_by_field, flash, redirect, render

router = APIRouter(prefix="/admin", dependencies=[Depends(form_csrf_guard)])
FLASH = {
    "user_created": "用户已创建。",
    "org_created": "机构已创建。",
    "updated": "已更新。",
    "password_reset": "密码已重置，该用户的其他登录已失效。",
}


def _page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    qp = request.query_params
    return render(
        request,
        "core/admin_users.html",
        user,
        status_code=status_code,
        users=queries.list_users(
            session, actor=user, role=qp.get("role") or None, q=qp.get("q") or None
        ),
        organisations=list(
            session.scalars(
                select(Organisation)
                .order_by(Organisation.name)
                .where(Organisation.kind != "enterprise")
            )
        ),
        errors=errors or {},
        values=values or {},
        params={"role": qp.get("role", ""), "q": qp.get("q", "")},
        flash=flash(request, FLASH),
    )


@router.get("/users", response_class=HTMLResponse)
def users(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    require_role(user, *USER_ADMINS)
    return _page(request, session, user)


@router.post("/users", response_class=HTMLResponse)
async def user_create(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    require_role(user, *USER_ADMINS)
    form = await request.form()
    values = {
        k: str(form.get(k, "")) for k in ("username", "display_name", "organisation_id", "uscc")
    }
    roles = [str(r) for r in form.getlist("roles")]
    organisation_id = values["organisation_id"]
    if values["uscc"]:  # an enterprise's login is found by its credit code
        org = session.scalar(
            select(Organisation).where(Organisation.uscc == values["uscc"].strip().upper())
        )
        organisation_id = str(org.id) if org else "0"
    try:
        services.create_user(
            session,
            actor=user,
            data=UserCreate(
                username=values["username"],
                display_name=values["display_name"],
                password=str(form.get("password", "")),
                organisation_id=int(organisation_id) if organisation_id.isdigit() else 0,
                roles=roles,
            ),
        )
    except ValidationError as e:
        return _page(request, session, user, errors_by_field(services.field_errors(e)), values, 422)
    except ValidationFailed as e:
        return _page(request, session, user, errors_by_field(e.errors), values, 422)
    except Conflict as e:
        return _page(request, session, user, {"username": e.message}, values, 422)
    return redirect("/admin/users", msg="user_created")


@router.post("/users/{user_id}/active")
def user_active(
    user_id: int, session: SessionDep, user: CurrentUser, active: Annotated[str, Form()] = "0"
) -> Response:
    services.set_user_active(session, user_id=user_id, active=active == "1", actor=user)
    return redirect("/admin/users", msg="updated")


@router.post("/users/{user_id}/password", response_class=HTMLResponse)
def user_password(
    request: Request,
    user_id: int,
    session: SessionDep,
    user: CurrentUser,
    password: Annotated[str, Form()] = "",
) -> Response:
    try:
        services.reset_password(session, user_id=user_id, new=password, actor=user)
    except ValidationFailed as e:
        return _page(request, session, user, {f"reset{user_id}": e.errors[0].message}, None, 422)
    return redirect("/admin/users", msg="password_reset")


@router.get("/organisations", response_class=HTMLResponse)
def organisations(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    require_role(user, *USER_ADMINS)
    return render(
        request,
        "core/admin_orgs.html",
        user,
        orgs=queries.list_organisations(session, actor=user),
        errors={},
        values={},
        districts=DISTRICTS,
        institution_types=INSTITUTION_TYPES,
        flash=flash(request, FLASH),
    )


@router.post("/organisations", response_class=HTMLResponse)
def organisation_create(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    kind: Annotated[str, Form()] = "",
    institution_type: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    uscc: Annotated[str, Form()] = "",
    district: Annotated[str, Form()] = "",
) -> Response:
    values = {
        "kind": kind,
        "institution_type": institution_type,
        "name": name,
        "uscc": uscc,
        "district": district,
    }
    try:
        services.create_organisation(
            session,
            actor=user,
            data=OrganisationCreate(
                kind=kind,
                institution_type=institution_type or None,
                name=name,
                uscc=uscc or None,
                district=district or None,
            ),
        )
    except ValidationError as e:
        errors = errors_by_field(services.field_errors(e))
    except ValidationFailed as e:
        errors = errors_by_field(e.errors)
    else:
        return redirect("/admin/organisations", msg="org_created")
    return render(
        request,
        "core/admin_orgs.html",
        user,
        status_code=422,
        orgs=queries.list_organisations(session, actor=user),
        errors=errors,
        values=values,
        districts=DISTRICTS,
        institution_types=INSTITUTION_TYPES,
    )
