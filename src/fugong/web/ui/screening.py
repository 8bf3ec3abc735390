"""测温通道 pages: sites with today's figures, a site's live alarm list (server-sent events fed
by polling the database, so alarms stored by the separate MQTT listener show within a second),
devices and their tokens, the re-check workflow, statistics with export, the CDC's summary."""

from __future__ import annotations

import json
import time as _time
from collections.abc import AsyncIterator
from datetime import date, time, timedelta
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import ValidationError

from fugong.core.permissions import require_role
from fugong.core.tabular import write_csv, write_xlsx
from fugong.errors import FieldError, NotFound, ValidationFailed
from fugong.screening import queries, rules, services
from fugong.screening.models import ScreeningAlarm, ScreeningDevice
from fugong.screening.permissions import (
    MANAGERS,
    SUMMARY_READERS,
    can_manage,
    can_see_person,
    can_work,
)
from fugong.screening.schemas import (
    CaseRecord,
    DeviceCreate,
    Recheck,
    SiteCreate,
    SiteSettings,
    field_errors,
)
from fugong.web.deps import CurrentUser, SessionDep, form_csrf_guard
from fugong.web.ui.render import errors_by_field, flash, redirect, render

router = APIRouter(prefix="/screening", dependencies=[Depends(form_csrf_guard)])

FLASH = {
    "site_created": "测温点已创建。",
    "rechecked": "复核结果已记录。",
    "disposed": "处置已记录。",
    "case": "人员信息已登记。",
    "closed": "报警已关闭。",
    "device": "设备状态已更新。",
    "settings": "测温点设置已保存。",
    "alert": "设备告警已处理。",
}
CTX: dict[str, Any] = {
    "ALARM_STATUSES": rules.ALARM_STATUSES,
    "ALARM_RULES": rules.ALARM_RULES,
    "ALERT_KINDS": rules.ALERT_KINDS,
    "SITE_KINDS": rules.SITE_KINDS,
    "DISPOSITIONS": rules.DISPOSITIONS,
    "SITE_TZ": rules.SITE_TZ,
}
#: How often the live feed looks for new alarms, and how long one stream lasts before the
#: browser reconnects (EventSource does that by itself, resuming from the last id).
POLL_S = 0.3
STREAM_S = 300.0
PING_S = 5.0


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.0f}%"


def _min(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f} 分钟"


def _local(dt: Any, fmt: str = "%H:%M:%S") -> str:
    return "—" if dt is None else dt.astimezone(rules.SITE_TZ).strftime(fmt)


HELPERS: dict[str, Any] = {"pct": _pct, "minutes": _min, "local": _local}


# -- sites ---------------------------------------------------------------------------------


def _index(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    sites = queries.list_sites(session, actor=user)
    day = queries.today()
    stats = {
        r.site_id: r for r in queries.site_day_stats(session, actor=user, day_from=day, day_to=day)
    }
    return render(
        request,
        "screening/index.html",
        user,
        status_code=status_code,
        sites=sites,
        stats=stats,
        day=day,
        districts=queries.by_district(list(stats.values())),
        values=values or {},
        errors=errors or {},
        can_create=user.has_role(*MANAGERS),
        flash=flash(request, FLASH),
        **CTX,
        **HELPERS,
    )


@router.get("", response_class=HTMLResponse)
def index(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _index(request, session, user)


def _site_fields(values: dict[str, str]) -> dict[str, Any]:
    """Form values → SiteSettings fields (``ValueError`` for a time or number that does not
    parse; pydantic checks the ranges)."""
    return {
        "name": values.get("name", ""),
        "kind": values.get("kind", "school"),
        "opens_at": time.fromisoformat(values.get("opens_at") or "07:00"),
        "closes_at": time.fromisoformat(values.get("closes_at") or "19:00"),
        "threshold_c": float(values.get("threshold_c") or rules.DEFAULT_THRESHOLD_C),
        "baseline": values.get("baseline") == "on",
        "baseline_window": int(values.get("baseline_window") or 50),
        "baseline_offset_c": float(values.get("baseline_offset_c") or 1.0),
        "silence_minutes": int(values.get("silence_minutes") or 30),
        "drift_c": float(values.get("drift_c") or 0.5),
    }


@router.post("/sites")
async def create_site(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    require_role(user, *MANAGERS)
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if k != "csrf_token"}
    try:
        data = SiteCreate(code=values.get("code", ""), **_site_fields(values))
        site = services.create_site(session, data=data, actor=user)
    except ValidationError as e:
        return _index(request, session, user, values, errors_by_field(field_errors(e)), 422)
    except ValueError as e:  # a number or a time that does not parse
        return _index(request, session, user, values, {"(整体)": f"格式错误：{e}"}, 422)
    except ValidationFailed as e:
        return _index(request, session, user, values, errors_by_field(e.errors), 422)
    return redirect(f"/screening/sites/{site.id}", msg="site_created")


@router.post("/sites/{site_id}/settings")
async def update_site(
    site_id: int, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    site = queries.get_site(session, actor=user, site_id=site_id)
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if k != "csrf_token"}
    try:
        services.update_site(
            session, site=site, data=SiteSettings(**_site_fields(values)), actor=user
        )
    except ValidationError as e:
        errors = errors_by_field(field_errors(e))
        return _site_page(request, session, user, site_id, settings_errors=errors, status_code=422)
    except ValueError as e:
        errors = {"(整体)": f"格式错误：{e}"}
        return _site_page(request, session, user, site_id, settings_errors=errors, status_code=422)
    return redirect(f"/screening/sites/{site.id}", msg="settings")


def _site_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    site_id: int,
    device_errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
    settings_errors: dict[str, str] | None = None,
) -> Response:
    site = queries.get_site(session, actor=user, site_id=site_id)
    day = queries.today()
    stats = queries.site_day_stats(session, actor=user, day_from=day, day_to=day, site_id=site.id)
    return render(
        request,
        "screening/site.html",
        user,
        status_code=status_code,
        site=site,
        today=stats[0] if stats else queries.DayStats(site.id, site.name, site.district, day),
        alarms=queries.alarms(session, site=site, day=day)
        + [
            a
            for a in queries.alarms(session, site=site, open_only=True)
            if a.raised_at < queries.day_bounds(day)[0]
        ],
        last_alarm_id=queries.last_alarm_id(session, site_id=site.id),
        devices=queries.devices(session, site=site),
        alerts=queries.open_device_alerts(session, site=site),
        manage=can_manage(user, site),
        work=can_work(user, site),
        device_errors=device_errors or {},
        settings_errors=settings_errors or {},
        values=values or {},
        flash=flash(request, FLASH),
        **CTX,
        **HELPERS,
    )


@router.get("/sites/{site_id}", response_class=HTMLResponse)
def site_page(site_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _site_page(request, session, user, site_id)


def _alarm_event(a: ScreeningAlarm) -> str:
    data = {
        "id": a.id,
        "url": f"/screening/alarms/{a.id}",
        "time": _local(a.measured_at),
        "device": a.device.code,
        "temperature": f"{a.temperature_c:.1f}",
        "rule": rules.ALARM_RULES[a.rule],
        "status": rules.ALARM_STATUSES[a.status],
    }
    return f"id: {a.id}\nevent: alarm\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.get("/sites/{site_id}/events")
def site_events(
    site_id: int, request: Request, session: SessionDep, user: CurrentUser, after: int = 0
) -> StreamingResponse:
    """Server-sent events: one ``alarm`` event per new alarm of the site (``id`` = alarm id, so
    a reconnecting browser resumes from ``Last-Event-ID``)."""
    site = queries.get_site(session, actor=user, site_id=site_id)
    factory = request.app.state.session_factory
    resume = request.headers.get("last-event-id", "")
    start = int(resume) if resume.isdigit() else after

    def poll(last: int) -> list[str]:
        with factory() as s:
            return [
                _alarm_event(a) for a in queries.alarms_since(s, site_id=site.id, after_id=last)
            ]

    async def stream() -> AsyncIterator[str]:
        last = start
        yield "retry: 1000\n\n"
        began = pinged = _time.monotonic()
        while _time.monotonic() - began < STREAM_S:
            events = await anyio.to_thread.run_sync(poll, last)
            for ev in events:
                last = int(ev.split("\n", 1)[0].removeprefix("id: "))
                yield ev
            if not events and _time.monotonic() - pinged > PING_S:
                # A comment line: keeps proxies from closing the stream and lets the server
                # notice a browser that went away.
                pinged = _time.monotonic()
                yield ": ping\n\n"
            await anyio.sleep(POLL_S)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# -- devices -------------------------------------------------------------------------------


@router.post("/sites/{site_id}/devices", response_class=HTMLResponse)
def create_device(
    site_id: int,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    code: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
) -> Response:
    site = queries.get_site(session, actor=user, site_id=site_id)
    values = {"code": code, "name": name}
    try:
        device, token = services.create_device(
            session, site=site, data=DeviceCreate(code=code, name=name), actor=user
        )
    except ValidationError as e:
        return _site_page(
            request, session, user, site_id, errors_by_field(field_errors(e)), values, 422
        )
    except ValidationFailed as e:
        return _site_page(request, session, user, site_id, errors_by_field(e.errors), values, 422)
    # The token is shown on this response only; it is stored as a SHA-256 digest.
    return render(
        request,
        "screening/device_token.html",
        user,
        site=site,
        device=device,
        token=token,
        topic=f"fugong/screening/{site.code}/{device.code}/readings",
        mqtt_user=services.mqtt_username(site.code, device.code),
        passwd_line=services.mosquitto_password_line(
            services.mqtt_username(site.code, device.code), token
        ),
    )


@router.post("/devices/{device_id}/active")
def set_device_active(
    device_id: int,
    session: SessionDep,
    user: CurrentUser,
    active: Annotated[str, Form()] = "",
) -> Response:
    device = session.get(ScreeningDevice, device_id)
    if device is None:
        raise NotFound("设备不存在")
    site = queries.get_site(session, actor=user, site_id=device.site_id)
    services.set_device_active(session, device=device, active=active == "1", actor=user)
    return redirect(f"/screening/sites/{site.id}", msg="device")


@router.post("/alerts/{alert_id}/resolve")
def resolve_alert(alert_id: int, session: SessionDep, user: CurrentUser) -> Response:
    alert = services.resolve_alert(session, alert_id=alert_id, actor=user)
    return redirect(f"/screening/sites/{alert.site_id}", msg="alert")


# -- alarms --------------------------------------------------------------------------------


def _alarm_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    alarm_id: int,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    alarm = queries.get_alarm(session, actor=user, alarm_id=alarm_id)
    person_visible = can_see_person(user, alarm.site)
    case = queries.get_case(session, actor=user, alarm=alarm) if person_visible else None
    return render(
        request,
        "screening/alarm.html",
        user,
        status_code=status_code,
        alarm=alarm,
        case=case,
        person_visible=person_visible,
        work=can_work(user, alarm.site),
        next_states=rules.TRANSITIONS[alarm.status],
        errors=errors or {},
        flash=flash(request, FLASH),
        **CTX,
        **HELPERS,
    )


@router.get("/alarms/{alarm_id}", response_class=HTMLResponse)
def alarm_page(alarm_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _alarm_page(request, session, user, alarm_id)


@router.post("/alarms/{alarm_id}/recheck")
def recheck(
    alarm_id: int,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    recheck_c: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    try:
        data = Recheck(recheck_c=float(recheck_c), note=note or None)
    except ValueError:  # float() or pydantic (a ValueError too)
        return _alarm_page(
            request, session, user, alarm_id, {"recheck_c": "请填写 30~45 之间的体温计读数"}, 422
        )
    services.recheck(session, alarm_id=alarm_id, data=data, actor=user)
    return redirect(f"/screening/alarms/{alarm_id}", msg="rechecked")


@router.post("/alarms/{alarm_id}/dispose")
def dispose(
    alarm_id: int, session: SessionDep, user: CurrentUser, to: Annotated[str, Form()] = ""
) -> Response:
    services.dispose(session, alarm_id=alarm_id, to=to, actor=user)
    return redirect(f"/screening/alarms/{alarm_id}", msg="disposed")


@router.post("/alarms/{alarm_id}/case")
def record_case(
    alarm_id: int,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    person_name: Annotated[str, Form()] = "",
    person_no: Annotated[str, Form()] = "",
    unit: Annotated[str, Form()] = "",
) -> Response:
    try:
        data = CaseRecord(person_name=person_name, person_no=person_no, unit=unit)
        services.record_case(session, alarm_id=alarm_id, data=data, actor=user)
    except ValidationError as e:
        return _alarm_page(request, session, user, alarm_id, errors_by_field(field_errors(e)), 422)
    except ValidationFailed as e:
        return _alarm_page(request, session, user, alarm_id, errors_by_field(e.errors), 422)
    return redirect(f"/screening/alarms/{alarm_id}", msg="case")


@router.post("/alarms/{alarm_id}/close")
def close(
    alarm_id: int, session: SessionDep, user: CurrentUser, note: Annotated[str, Form()] = ""
) -> Response:
    alarm = services.close(session, alarm_id=alarm_id, actor=user, note=note or None)
    return redirect(f"/screening/sites/{alarm.site_id}", msg="closed")


# -- statistics, export, the CDC summary ------------------------------------------------------


def _day(value: str | None, default: date, field: str) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed([FieldError(field, "日期格式应为 YYYY-MM-DD")]) from None


@router.get("/stats", response_class=HTMLResponse)
def stats(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """Per site and day, with the district roll-up; ``?format=csv|xlsx`` downloads it."""
    q = request.query_params
    d_to = _day(q.get("to"), queries.today(), "to")
    d_from = _day(q.get("from"), d_to - timedelta(days=6), "from")
    if d_from > d_to or (d_to - d_from).days > 366:
        raise ValidationFailed([FieldError("from", "起止日期须在一年以内且起不晚于止")])
    rows = queries.site_day_stats(session, actor=user, day_from=d_from, day_to=d_to)
    fmt = q.get("format")
    name = f"screening-{d_from.isoformat()}-{d_to.isoformat()}"
    if fmt == "csv":
        return StreamingResponse(
            iter(write_csv(queries.STATS_HEADER, (r.row() for r in rows))),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if fmt == "xlsx":
        return Response(
            write_xlsx(queries.STATS_HEADER, [r.row() for r in rows], title="测温统计"),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    return render(
        request,
        "screening/stats.html",
        user,
        rows=rows,
        districts=queries.by_district(rows),
        d_from=d_from,
        d_to=d_to,
        **CTX,
        **HELPERS,
    )


@router.get("/cdc", response_class=HTMLResponse)
def cdc_summary(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """The daily summary: district figures; the CDC also sees each confirmed case's person
    (every such read is audited)."""
    require_role(user, *SUMMARY_READERS)
    day = _day(request.query_params.get("day"), queries.today(), "day")
    rows = queries.site_day_stats(session, actor=user, day_from=day, day_to=day)
    cases = queries.confirmed_cases(session, actor=user, day=day)
    return render(
        request,
        "screening/cdc.html",
        user,
        day=day,
        rows=rows,
        districts=queries.by_district(rows),
        totals=queries.totals(session, day_from=day, day_to=day, actor=user),
        cases=cases,
        prev_day=day - timedelta(days=1),
        next_day=day + timedelta(days=1),
        **CTX,
        **HELPERS,
    )
