"""API for thermal screening gates.

Cameras (or their bridges) push readings here with their own device token
(``Authorization: Bearer fgd_…``, issued when the device is registered), never a user's token:

- ``POST /api/v1/screening/readings``: one documented reading, or a list of them (all or none);
- ``POST /api/v1/screening/vendor/events``: the vendor event shape (temperature, the camera's own
  alarm flag, event time; the picture is dropped and counted).

People read sites, statistics and alarms with their user token or session, scoped as the pages.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, status
from pydantic import BaseModel, ValidationError

from fugong.errors import FieldError, ValidationFailed
from fugong.screening import queries, services
from fugong.screening.models import ScreeningDevice
from fugong.screening.schemas import (
    AlarmRead,
    IngestSummary,
    ReadingIn,
    Recheck,
    VendorEvent,
    field_errors,
    strip_images,
)
from fugong.web.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/screening", tags=["测温通道"])

_READING_EXAMPLE = {
    "device": "gate-1",
    "event_id": "e-000123",
    "time": "2020-03-02T07:45:12+08:00",
    "temperature": 36.6,
    "ambient": 18.5,
    "mask": True,
}


def _device(request: Request, session: SessionDep) -> ScreeningDevice:
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    return services.device_for_token(session, token)


def _summary(result: services.IngestResult) -> IngestSummary:
    return IngestSummary(
        accepted=result.accepted,
        duplicates=result.duplicates,
        faults=result.faults,
        alarms=result.alarms,
        images_dropped=result.images_dropped,
    )


@router.post(
    "/readings",
    response_model=IngestSummary,
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            ReadingIn.model_json_schema(),
                            {"type": "array", "items": ReadingIn.model_json_schema()},
                        ]
                    },
                    "example": _READING_EXAMPLE,
                }
            }
        }
    },
)
def push_readings(
    request: Request,
    session: SessionDep,
    payload: Annotated[dict[str, Any] | list[Any], Body()],
) -> IngestSummary:
    """Store readings of the authenticated device. A duplicate (same event id) is counted and
    ignored; a temperature outside 30–43 °C is stored as a device fault. Any bad item refuses
    the whole request with 422, naming the item (``row``, 1-based) and the field."""
    device = _device(request, session)
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise ValidationFailed([FieldError("(整体)", "读数列表为空")])
    now = datetime.now(UTC)
    good, errors = services.readings_from_payloads(((item, device) for item in items), now)
    if errors:
        if not isinstance(payload, list):
            errors = [FieldError(e.field, e.message) for e in errors]
        raise ValidationFailed(errors)
    return _summary(services.ingest(session, good, source="http", now=now))


@router.post("/vendor/events", response_model=IngestSummary, status_code=status.HTTP_201_CREATED)
def push_vendor_event(
    request: Request, session: SessionDep, payload: Annotated[dict[str, Any], Body()]
) -> IngestSummary:
    """A camera's own event JSON (``dateTime`` and ``AccessControllerEvent`` with
    ``serialNo``, ``currTemperature``, ``isAbnomalTemperature``, ``thermometryUnit``, ``mask``);
    the serial number is the event id, the camera's alarm flag raises an alarm even below the
    site's threshold, and any picture is dropped and counted."""
    device = _device(request, session)
    clean, dropped = strip_images(payload)
    try:
        event = VendorEvent.model_validate(clean)
        reading, flag = event.to_reading(device.code)
    except ValidationError as e:
        raise ValidationFailed(field_errors(e)) from None
    parsed = services.bind_reading(
        reading, device, images_dropped=dropped, device_alarm=flag, now=datetime.now(UTC)
    )
    return _summary(services.ingest(session, [parsed], source="vendor"))


class SiteRead(BaseModel):
    id: int
    code: str
    name: str
    kind: str
    district: str | None
    threshold_c: float
    baseline: bool


class DayStatsRead(BaseModel):
    site_id: int
    site_name: str
    day: date
    screened: int
    alarms: int
    confirmed: int
    cleared: int
    false_alarm_rate: float | None
    recheck_minutes: float | None


@router.get("/sites", response_model=list[SiteRead])
def list_sites(session: SessionDep, user: CurrentUser) -> list[SiteRead]:
    return [
        SiteRead.model_validate(s, from_attributes=True)
        for s in queries.list_sites(session, actor=user)
    ]


@router.get("/stats", response_model=list[DayStatsRead])
def stats(
    session: SessionDep,
    user: CurrentUser,
    day_from: date | None = None,
    day_to: date | None = None,
    site_id: int | None = None,
) -> list[DayStatsRead]:
    """Per site and local day: screened, alarms, confirmed, cleared (false alarms), the
    false-alarm rate and the median minutes from alarm to re-check."""
    d_to = day_to or queries.today()
    d_from = day_from or d_to
    rows = queries.site_day_stats(
        session, actor=user, day_from=d_from, day_to=d_to, site_id=site_id
    )
    return [
        DayStatsRead(
            site_id=r.site_id,
            site_name=r.site_name,
            day=r.day,
            screened=r.screened,
            alarms=r.alarms,
            confirmed=r.confirmed,
            cleared=r.cleared,
            false_alarm_rate=r.false_alarm_rate,
            recheck_minutes=r.recheck_minutes,
        )
        for r in rows
    ]


@router.get("/alarms/{alarm_id}", response_model=AlarmRead)
def get_alarm(alarm_id: int, session: SessionDep, user: CurrentUser) -> AlarmRead:
    return AlarmRead.model_validate(queries.get_alarm(session, actor=user, alarm_id=alarm_id))


@router.post("/alarms/{alarm_id}/recheck", response_model=AlarmRead)
def recheck(alarm_id: int, data: Recheck, session: SessionDep, user: CurrentUser) -> AlarmRead:
    return AlarmRead.model_validate(
        services.recheck(session, alarm_id=alarm_id, data=data, actor=user)
    )


@router.post("/alarms/{alarm_id}/close", response_model=AlarmRead)
def close(alarm_id: int, session: SessionDep, user: CurrentUser) -> AlarmRead:
    return AlarmRead.model_validate(services.close(session, alarm_id=alarm_id, actor=user))
