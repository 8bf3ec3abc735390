"""CDC pages: trajectory, companions, second order and itinerary for a case, the aggregate
view, CSV export. Role ``cdc`` only; every query and every refused attempt is audited.

Phone numbers travel only in POST bodies (never in a URL, where logs and browser history
would keep them) and are hashed before anything else happens."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from fugong.core import audit
from fugong.core.tabular import write_csv
from fugong.errors import FieldError, FugongError, ValidationFailed
from fugong.tracing import permissions, services
from fugong.tracing.common import iso
from fugong.web.charts import track_plot
from fugong.web.deps import CurrentUser, SessionDep, form_csrf_guard
from fugong.web.ui.render import render

router = APIRouter(prefix="/tracing", dependencies=[Depends(form_csrf_guard)])


def _cdc(request: Request, session: Session, user: Any) -> None:
    """Refuse non-CDC users, and make the refusal's audit row survive the error."""
    try:
        permissions.require_cdc(session, user, f"{request.method} {request.url.path}")
    except FugongError:
        session.commit()
        raise


def _settings(request: Request) -> Any:
    return request.app.state.settings


def _key(request: Request) -> bytes:
    from fugong.tracing.ingest import IngestError, read_key

    s = _settings(request)
    try:
        return read_key(Path(s.tracing_key_file), Path(s.tracing_data_dir))
    except IngestError as e:
        raise ValidationFailed([FieldError("key", f"假名化密钥不可用：{e}")]) from None


def _engine(request: Request) -> Any:
    from fugong.tracing.engines import get_engine

    engine = getattr(request.app.state, "tracing_engine", None)
    if engine is None:
        engine = get_engine(_settings(request).tracing_engine)
        request.app.state.tracing_engine = engine
    return engine


def _form_defaults() -> dict[str, str]:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return {
        "kind": "companions",
        "at": now.strftime("%Y-%m-%dT%H:%M"),
        "days": "14",
        "min_overlap": "600",
    }


@router.get("", response_class=HTMLResponse)
def search(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _cdc(request, session, user)
    return render(
        request,
        "tracing/search.html",
        user,
        values=_form_defaults(),
        errors={},
        kinds=services.QUERY_KINDS,
        result=None,
    )


def _run(request: Request, session: Session, user: Any, form: dict[str, str]) -> Any:
    try:
        at = datetime.fromisoformat(form.get("at", "")).replace(tzinfo=UTC)
    except ValueError:
        raise ValidationFailed(
            [FieldError("at", "截止时间格式应为 YYYY-MM-DDTHH:MM（UTC）")]
        ) from None
    days = int(form["days"]) if form.get("days", "").isdigit() else 0
    min_overlap = int(form["min_overlap"]) if form.get("min_overlap", "").isdigit() else 600
    long_stay = 30 * 3600 if form.get("long_stay") == "1" else None
    return services.run_query(
        session,
        actor=user,
        case_ref=form.get("case_ref", ""),
        subject=form.get("subject", ""),
        kind=form.get("kind", ""),
        at=at,
        days=days,
        data_dir=Path(_settings(request).tracing_data_dir),
        key=_key(request),
        engine=_engine(request),
        min_overlap_s=min_overlap,
        min_total_stay_s=long_stay,
    )


@router.post("", response_class=HTMLResponse)
async def query(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _cdc(request, session, user)
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}
    values = _form_defaults() | form
    try:
        result = _run(request, session, user, form)
    except ValidationFailed as e:
        values.pop("subject", None)
        return render(
            request,
            "tracing/search.html",
            user,
            status_code=422,
            values=values,
            errors={x.field: x.message for x in e.errors},
            kinds=services.QUERY_KINDS,
            result=None,
        )
    values["subject"] = result.uid  # from here on the page carries the pseudonym only
    plot = None
    if result.kind == "trajectory":
        plot = track_plot(
            [(r.lon, r.lat, f"{r.grid} {r.city} {iso(r.start)}") for r in result.rows]
        )
    return render(
        request,
        "tracing/search.html",
        user,
        values=values,
        errors={},
        kinds=services.QUERY_KINDS,
        result=result,
        plot=plot,
    )


@router.post("/export")
async def export(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _cdc(request, session, user)
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}
    result = _run(request, session, user, form)
    header, rows = _table(result)
    text = "".join(write_csv(header, rows))
    name = f"{result.case_ref}-{result.kind}.csv".replace("/", "_")
    return Response(
        text.encode(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _table(result: Any) -> tuple[list[str], list[list[Any]]]:
    if result.kind == "trajectory":
        return (
            ["grid", "city", "start", "end", "duration_s", "lon", "lat"],
            [
                [
                    r.grid,
                    r.city,
                    iso(r.start),
                    iso(r.end),
                    r.duration_s,
                    f"{r.lon:.6f}",
                    f"{r.lat:.6f}",
                ]
                for r in result.rows
            ],
        )
    if result.kind == "itinerary":
        return (
            ["city", "first_seen", "last_seen", "total_s"],
            [[r.city, iso(r.first_seen), iso(r.last_seen), r.total_s] for r in result.rows],
        )
    return (
        ["uid", "via", "longest_overlap_s", "total_overlap_s", "first_contact", "grids"],
        [
            [
                r.uid,
                " ".join(r.via),
                r.longest_overlap_s,
                r.total_overlap_s,
                iso(r.first_contact),
                " ".join(r.grids),
            ]
            for r in result.rows
        ],
    )


@router.get("/aggregate", response_class=HTMLResponse)
def aggregate(request: Request, session: SessionDep, user: CurrentUser, hour: str = "") -> Response:
    _cdc(request, session, user)
    from fugong.tracing.aggregate import people_per_grid
    from fugong.tracing.common import TracingDataError

    settings = _settings(request)
    audit.record(
        session,
        actor=user,
        action="tracing.aggregate",
        target_type="tracing",
        detail=f"hour={hour}",
    )
    view, error = None, None
    if hour:
        try:
            when = datetime.fromisoformat(hour).replace(tzinfo=UTC, minute=0, second=0)
            view = people_per_grid(
                Path(settings.tracing_data_dir), when, min_group=settings.min_group_size
            )
        except (ValueError, TracingDataError) as e:
            error = str(e)
    return render(
        request,
        "tracing/aggregate.html",
        user,
        view=view,
        error=error,
        hour=hour,
        min_group=settings.min_group_size,
    )
