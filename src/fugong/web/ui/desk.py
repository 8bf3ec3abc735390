"""Desk pages: the manager's home, needs, survey campaigns (one enterprise per page),
meetings and visits, response-time reports, notifications."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from fugong.core import notify
from fugong.core import services as core_services
from fugong.core.models import Notification, Organisation
from fugong.core.permissions import require_role
from fugong.core.queries import managers
from fugong.core.reference import HUANGPU_STREETS
from fugong.core.tabular import write_csv
from fugong.desk import queries, services
from fugong.desk.rules import NEED_TYPES, STATUSES, TRANSITIONS, URGENCIES, default_questionnaire
from fugong.desk.schemas import CampaignCreate, MeetingCreate, NeedCreate
from fugong.errors import FieldError, ValidationFailed
from fugong.web.deps import CurrentUser, SessionDep, form_csrf_guard
from fugong.web.ui.render import errors_by_field, flash, redirect, render

router = APIRouter(prefix="/desk", dependencies=[Depends(form_csrf_guard)])
notifications_router = APIRouter(dependencies=[Depends(form_csrf_guard)])

FLASH = {
    "need_created": "需求已登记。",
    "status": "状态已更新。",
    "assigned": "已指派。",
    "campaign_created": "调查已发起。",
    "saved_draft": "草稿已保存。",
    "submitted": "已提交，企业信息和需求已更新。",
    "not_reached": "已标记为未联系上。",
    "meeting_created": "已记录。",
    "closed": "调查已结束。",
}
CTX: dict[str, Any] = {"NEED_TYPES": NEED_TYPES, "URGENCIES": URGENCIES, "STATUSES": STATUSES}


def _rules(request: Request) -> Any:
    return request.app.state.due_rules


@router.get("", response_class=HTMLResponse)
def home(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    require_role(user, "admin", "official", "manager", "auditor")
    mine = user.has_role("manager") and not user.has_role("admin", "official")
    flt = queries.NeedFilter(status="open", owner_id=user.id if mine else None)
    needs = queries.list_needs(session, actor=user, flt=flt, limit=100)
    now = datetime.now(UTC)
    return render(
        request,
        "desk/home.html",
        user,
        needs=needs,
        now=now,
        overdue={n.id: queries.need_overdue(n, now) for n in needs},
        overdue_total=queries.count_overdue(
            session, actor=user, owner_id=user.id if mine else None
        ),
        campaigns=queries.visible_campaigns(session, actor=user)[:10],
        mine=mine,
        flash=flash(request, FLASH),
        **CTX,
    )


# -- needs ---------------------------------------------------------------------------------


@router.get("/needs", response_class=HTMLResponse)
def needs(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    qp = request.query_params
    flt = queries.NeedFilter(
        status=qp.get("status") or "open",
        need_type=qp.get("need_type") or None,
        overdue_only=qp.get("overdue") == "1",
        organisation_id=int(qp["org"]) if qp.get("org", "").isdigit() else None,
    )
    rows = queries.list_needs(session, actor=user, flt=flt)
    now = datetime.now(UTC)
    return render(
        request,
        "desk/needs.html",
        user,
        needs=rows,
        flt=flt,
        now=now,
        overdue={n.id: queries.need_overdue(n, now) for n in rows},
        flash=flash(request, FLASH),
        **CTX,
    )


def _need_form(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    org = None
    if values.get("organisation_id", "").isdigit():
        org = session.get(Organisation, int(values["organisation_id"]))
    return render(
        request,
        "desk/need_form.html",
        user,
        status_code=status_code,
        values=values,
        errors=errors,
        org=org,
        institutions=queries.organisations_for_needs(session, actor=user),
        managers=managers(session),
        **CTX,
    )


@router.get("/needs/new", response_class=HTMLResponse)
def need_new(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    values = {
        "organisation_id": request.query_params.get("organisation_id", ""),
        "urgency": "normal",
        "need_type": request.query_params.get("need_type", "other"),
    }
    if user.has_role("enterprise") and not user.has_role("admin", "official", "manager"):
        values["organisation_id"] = str(user.organisation_id)
    return _need_form(request, session, user, values, {})


@router.post("/needs/new", response_class=HTMLResponse)
async def need_create(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    form = await request.form()
    values = {
        k: str(form.get(k, ""))
        for k in ("organisation_id", "uscc", "need_type", "urgency", "description", "owner")
    }
    if values["uscc"] and not values["organisation_id"]:
        org = session.scalar(
            select(Organisation).where(Organisation.uscc == values["uscc"].strip().upper())
        )
        values["organisation_id"] = str(org.id) if org else ""
    if not values["organisation_id"].isdigit():
        return _need_form(
            request, session, user, values, {"organisation_id": "请选择机构或填写企业信用代码"}, 422
        )
    try:
        need = services.create_need(
            session,
            actor=user,
            rules=_rules(request),
            data=NeedCreate(
                organisation_id=int(values["organisation_id"]),
                need_type=values["need_type"],
                urgency=values["urgency"],
                description=values["description"],
                owner=values["owner"] or None,
            ),
        )
    except ValidationError as e:
        return _need_form(
            request, session, user, values, errors_by_field(core_services.field_errors(e)), 422
        )
    except ValidationFailed as e:
        return _need_form(request, session, user, values, errors_by_field(e.errors), 422)
    return redirect(f"/desk/needs/{need.id}", msg="need_created")


@router.get("/needs/{need_id}", response_class=HTMLResponse)
def need_detail(
    request: Request,
    need_id: int,
    session: SessionDep,
    user: CurrentUser,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    need = services.get_need(session, actor=user, need_id=need_id)
    can_act = user.has_role("admin", "official") or need.owner_id == user.id
    return render(
        request,
        "desk/need_detail.html",
        user,
        status_code=status_code,
        need=need,
        overdue=queries.need_overdue(need),
        can_act=can_act,
        next_statuses=sorted(TRANSITIONS[need.status], key=list(STATUSES).index),
        managers=managers(session),
        error=error,
        flash=flash(request, FLASH),
        **CTX,
    )


@router.post("/needs/{need_id}/status", response_class=HTMLResponse)
def need_status(
    request: Request,
    need_id: int,
    session: SessionDep,
    user: CurrentUser,
    to: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    try:
        services.change_need_status(session, need_id=need_id, to=to, actor=user, note=note or None)
    except ValidationFailed as e:
        session.rollback()
        return need_detail(
            request, need_id, session, user, error=e.errors[0].message, status_code=422
        )
    return redirect(f"/desk/needs/{need_id}", msg="status")


@router.post("/needs/{need_id}/supplies-request")
def need_to_supplies(need_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """Turn a supplies need into a supplies request: open the request form prefilled with the
    need's enterprise and description; submitting it links the need (``link_need``) in the
    same transaction. The wiring lives here because desk and supplies may not import each
    other."""
    need = services.get_need(session, actor=user, need_id=need_id)
    if need.need_type != "supplies":
        raise ValidationFailed([FieldError("need_type", "只有物资需求可以转为物资申请")])
    return redirect(
        "/supplies/requests/new",
        enterprise_id=str(need.organisation_id),
        need_id=str(need.id),
        purpose=need.description[:500],
    )


@router.post("/needs/{need_id}/assign")
def need_assign(
    need_id: int, session: SessionDep, user: CurrentUser, owner: Annotated[str, Form()] = ""
) -> Response:
    services.assign_need(session, need_id=need_id, owner=owner, actor=user)
    return redirect(f"/desk/needs/{need_id}", msg="assigned")


# -- campaigns -----------------------------------------------------------------------------


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return render(
        request,
        "desk/campaigns.html",
        user,
        campaigns=queries.visible_campaigns(session, actor=user),
        errors={},
        values={"deadline": (date.today() + timedelta(days=4)).isoformat()},
        managers=managers(session),
        streets=HUANGPU_STREETS,
        flash=flash(request, FLASH),
    )


@router.post("/campaigns", response_class=HTMLResponse)
async def campaign_create(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    form = await request.form()
    values = {
        k: str(form.get(k, ""))
        for k in ("title", "deadline", "portfolio", "street", "industry", "key_only", "questions")
    }
    questions = default_questionnaire()
    if values["questions"].strip():
        import json

        try:
            questions = json.loads(values["questions"])
        except ValueError as e:
            return _campaigns_error(
                request, session, user, values, {"questions": f"问卷 JSON 无法解析：{e}"}
            )
    try:
        campaign = services.create_campaign(
            session,
            actor=user,
            questions=questions,
            data=CampaignCreate(
                title=values["title"],
                deadline=values["deadline"],
                portfolio=values["portfolio"] or None,
                street=values["street"] or None,
                industry=values["industry"] or None,
                key_only=values["key_only"] == "1",
            ),
        )
    except ValidationError as e:
        return _campaigns_error(
            request, session, user, values, errors_by_field(core_services.field_errors(e))
        )
    except ValidationFailed as e:
        return _campaigns_error(request, session, user, values, errors_by_field(e.errors))
    return redirect(f"/desk/campaigns/{campaign.id}", msg="campaign_created")


def _campaigns_error(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    values: dict[str, str],
    errors: dict[str, str],
) -> Response:
    return render(
        request,
        "desk/campaigns.html",
        user,
        status_code=422,
        campaigns=queries.visible_campaigns(session, actor=user),
        errors=errors,
        values=values,
        managers=managers(session),
        streets=HUANGPU_STREETS,
    )


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_board(
    request: Request, campaign_id: int, session: SessionDep, user: CurrentUser
) -> Response:
    board = queries.campaign_board(session, actor=user, campaign_id=campaign_id)
    mine = request.query_params.get("mine", "1" if user.has_role("manager") else "0") == "1"
    targets = queries.campaign_targets(session, actor=user, campaign_id=campaign_id, mine_only=mine)
    return render(
        request,
        "desk/campaign_board.html",
        user,
        board=board,
        targets=targets,
        mine=mine,
        flash=flash(request, FLASH),
    )


@router.post("/campaigns/{campaign_id}/close")
def campaign_close(campaign_id: int, session: SessionDep, user: CurrentUser) -> Response:
    services.close_campaign(session, campaign_id=campaign_id, actor=user)
    return redirect(f"/desk/campaigns/{campaign_id}", msg="closed")


def _target_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    target_id: int,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    from fugong.desk.models import CampaignTarget

    target = session.get(CampaignTarget, target_id)
    if target is None:
        from fugong.errors import NotFound

        raise NotFound("调查对象不存在")
    rows = queries.campaign_targets(
        session,
        actor=user,
        campaign_id=target.campaign_id,
        mine_only=user.has_role("manager") and not user.has_role("admin", "official"),
    )
    ids = [t.id for t, _ in rows]
    if target.id not in ids:
        from fugong.errors import NotFound

        raise NotFound("调查对象不存在")
    i = ids.index(target.id)
    org = rows[i][1]
    nxt = next(
        (t.id for t, _ in rows[i + 1 :] if t.status in ("todo", "draft", "not_reached")), None
    )
    return render(
        request,
        "desk/target.html",
        user,
        status_code=status_code,
        target=target,
        org=org,
        ent=org.enterprise,
        campaign=target.campaign,
        position=i + 1,
        count=len(ids),
        prev_id=ids[i - 1] if i > 0 else None,
        next_id=ids[i + 1] if i + 1 < len(ids) else None,
        next_todo=nxt,
        answers=values if values is not None else (target.answers or {}),
        errors=errors or {},
        flash=flash(request, FLASH),
    )


@router.get("/targets/{target_id}", response_class=HTMLResponse)
def target_page(
    request: Request, target_id: int, session: SessionDep, user: CurrentUser
) -> Response:
    return _target_page(request, session, user, target_id)


@router.post("/targets/{target_id}", response_class=HTMLResponse)
async def target_save(
    request: Request, target_id: int, session: SessionDep, user: CurrentUser
) -> Response:
    form = await request.form()
    action = str(form.get("action", "draft"))
    raw: dict[str, Any] = {}
    for key in form:
        if key in ("csrf_token", "action", "reason", "retry_at"):
            continue
        values = form.getlist(key)
        raw[key] = (
            [str(v) for v in values] if len(values) > 1 or key == "help_needed" else str(values[0])
        )
    try:
        if action == "not_reached":
            retry = str(form.get("retry_at", ""))
            services.mark_not_reached(
                session,
                target_id=target_id,
                actor=user,
                reason=str(form.get("reason", "")),
                retry_at=datetime.fromisoformat(retry).replace(tzinfo=UTC) if retry else None,
            )
            msg = "not_reached"
        else:
            services.save_answers(
                session,
                target_id=target_id,
                raw=raw,
                final=action == "submit",
                actor=user,
                rules=_rules(request),
            )
            msg = "submitted" if action == "submit" else "saved_draft"
    except (ValidationFailed, ValueError) as e:
        session.rollback()
        errs = (
            errors_by_field(e.errors) if isinstance(e, ValidationFailed) else {"retry_at": str(e)}
        )
        return _target_page(request, session, user, target_id, errs, raw, 422)
    nxt = form.get("next_todo")
    if action != "draft" and nxt and str(nxt).isdigit():
        return redirect(f"/desk/targets/{nxt}", msg=msg)
    return redirect(f"/desk/targets/{target_id}", msg=msg)


# -- meetings ------------------------------------------------------------------------------


@router.get("/meetings", response_class=HTMLResponse)
def meetings(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    org_id = request.query_params.get("organisation_id", "")
    return render(
        request,
        "desk/meetings.html",
        user,
        meetings=queries.meetings_for(
            session, actor=user, organisation_id=int(org_id) if org_id.isdigit() else None
        ),
        values={"organisation_id": org_id, "held_on": date.today().isoformat(), "kind": "visit"},
        errors={},
        flash=flash(request, FLASH),
        **CTX,
    )


@router.post("/meetings", response_class=HTMLResponse)
async def meeting_create(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    form = await request.form()
    values = {
        k: str(form.get(k, ""))
        for k in (
            "organisation_id",
            "uscc",
            "kind",
            "held_on",
            "participants",
            "notes",
            "outcome",
            "follow_type",
            "follow_urgency",
            "follow_description",
        )
    }
    if values["uscc"] and not values["organisation_id"]:
        org = session.scalar(
            select(Organisation).where(Organisation.uscc == values["uscc"].strip().upper())
        )
        values["organisation_id"] = str(org.id) if org else ""
    try:
        org_id = int(values["organisation_id"]) if values["organisation_id"].isdigit() else 0
        follow = []
        if values["follow_description"].strip():
            follow.append(
                NeedCreate(
                    organisation_id=org_id,
                    need_type=values["follow_type"],
                    urgency=values["follow_urgency"] or "normal",
                    description=values["follow_description"],
                    source="meeting",
                )
            )
        services.create_meeting(
            session,
            actor=user,
            follow_ups=follow,
            rules=_rules(request),
            data=MeetingCreate(
                organisation_id=org_id,
                kind=values["kind"],
                held_on=values["held_on"],
                participants=values["participants"],
                notes=values["notes"] or None,
                outcome=values["outcome"] or None,
            ),
        )
    except ValidationError as e:
        errors = errors_by_field(core_services.field_errors(e))
    except ValidationFailed as e:
        errors = errors_by_field(e.errors)
    else:
        return redirect("/desk/meetings", msg="meeting_created")
    session.rollback()
    return render(
        request,
        "desk/meetings.html",
        user,
        status_code=422,
        meetings=queries.meetings_for(session, actor=user),
        values=values,
        errors=errors,
        **CTX,
    )


# -- reports -------------------------------------------------------------------------------


@router.get("/reports", response_class=HTMLResponse)
def reports(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    by: str = "manager",
    format: str = "html",
) -> Response:
    rows = queries.response_times(session, actor=user, by=by)
    if format == "csv":

        def h(v: float | None) -> str:
            return "" if v is None else f"{v:.1f}"

        text = "".join(
            write_csv(
                [
                    "分组",
                    "需求数",
                    "已受理",
                    "已解决",
                    "未关闭",
                    "逾期",
                    "受理中位(小时)",
                    "解决中位(小时)",
                    "解决P90(小时)",
                ],
                (
                    [
                        r.key,
                        r.needs,
                        r.acknowledged,
                        r.resolved,
                        r.open,
                        r.overdue,
                        h(r.median_ack_h),
                        h(r.median_resolve_h),
                        h(r.p90_resolve_h),
                    ]
                    for r in rows
                ),
            )
        )
        return Response(
            text.encode(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="response-times-{by}.csv"'},
        )
    return render(request, "desk/reports.html", user, rows=rows, by=by)


# -- notifications -------------------------------------------------------------------------


@notifications_router.get("/notifications", response_class=HTMLResponse)
def notifications(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return render(request, "desk/notifications.html", user, items=notify.recent(session, user))


@notifications_router.post("/notifications/read")
def notifications_read(session: SessionDep, user: CurrentUser) -> Response:
    now = datetime.now(UTC)
    for n in session.scalars(
        select(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
    ):
        n.read_at = now
    return redirect("/notifications")
