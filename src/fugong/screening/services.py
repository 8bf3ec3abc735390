"""Screening writes: sites and devices, the ingest of readings (MQTT, HTTP and the vendor
adapter all end in :func:`ingest`), the re-check workflow, device health and retention.

Services flush, never commit. Every write by a person is audited in the same transaction; a
raised alarm is audited too (actor ``system``). Readings themselves are not audited one by one:
they carry no personal data, arrive by the thousand, and are their own record.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fugong.core import audit
from fugong.core.models import Organisation, User, UserRole
from fugong.core.notify import notify
from fugong.core.permissions import require_role
from fugong.core.security import token_digest
from fugong.errors import (
    AuthenticationError,
    Conflict,
    FieldError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from fugong.screening import rules
from fugong.screening.models import (
    DeviceAlert,
    ScreeningAlarm,
    ScreeningCase,
    ScreeningDaily,
    ScreeningDevice,
    ScreeningReading,
    ScreeningSite,
)
from fugong.screening.permissions import MANAGERS, can_manage, can_work
from fugong.screening.queries import get_alarm, totals
from fugong.screening.schemas import (
    CaseRecord,
    DeviceCreate,
    ParsedReading,
    ReadingIn,
    Recheck,
    SiteCreate,
    SiteSettings,
    parse_reading,
)

DEVICE_TOKEN_PREFIX = "fgd_"  # noqa: S105 - a public marker, like core's fgt_


def _now() -> datetime:
    return datetime.now(UTC)


def _insert(session: Session, model: Any) -> Any:
    """The dialect's INSERT, which has ON CONFLICT on both SQLite and PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        return pg_insert(model)
    return sqlite_insert(model)


# -- sites and devices ---------------------------------------------------------------------


def create_site(session: Session, *, data: SiteCreate, actor: User) -> ScreeningSite:
    require_role(actor, *MANAGERS)
    org_id = data.organisation_id or actor.organisation_id
    org = session.get(Organisation, org_id)
    if org is None:
        raise ValidationFailed([FieldError("organisation_id", "单位不存在")])
    site = ScreeningSite(
        organisation_id=org.id,
        district=org.district,
        created_by_id=actor.id,
        **data.model_dump(exclude={"organisation_id"}),
    )
    if not can_manage(actor, site):
        raise ValidationFailed([FieldError("organisation_id", "只能为本单位或本辖区的单位建点")])
    if session.scalar(select(ScreeningSite.id).where(ScreeningSite.code == data.code)):
        raise ValidationFailed([FieldError("code", f"编码 {data.code} 已被使用")])
    session.add(site)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="screening.site.create",
        target_type="screening_site",
        target_id=site.id,
        after=audit.snapshot(site),
    )
    return site


def update_site(
    session: Session, *, site: ScreeningSite, data: SiteSettings, actor: User
) -> ScreeningSite:
    """Change a site's name, hours and alarm rules; the audit row keeps what changed."""
    if not can_manage(actor, site):
        raise NotFound("测温点不存在")
    fields = list(SiteSettings.model_fields)
    before = audit.snapshot(site, fields)
    for name in fields:
        setattr(site, name, getattr(data, name))
    session.flush()
    b, a = audit.diff(before, audit.snapshot(site, fields))
    audit.record(
        session,
        actor=actor,
        action="screening.site.update",
        target_type="screening_site",
        target_id=site.id,
        before=b,
        after=a,
    )
    return site


def create_device(
    session: Session, *, site: ScreeningSite, data: DeviceCreate, actor: User
) -> tuple[ScreeningDevice, str]:
    """Register a camera; returns it with its token, shown once and stored only hashed."""
    if not can_manage(actor, site):
        raise NotFound("测温点不存在")
    taken = session.scalar(
        select(ScreeningDevice.id).where(
            ScreeningDevice.site_id == site.id, ScreeningDevice.code == data.code
        )
    )
    if taken:
        raise ValidationFailed([FieldError("code", f"本测温点已有编码为 {data.code} 的设备")])
    token = new_device_token()
    device = ScreeningDevice(
        site_id=site.id,
        code=data.code,
        name=data.name,
        token_hash=token_digest(token),
        token_prefix=token[:12],
    )
    session.add(device)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="screening.device.create",
        target_type="screening_device",
        target_id=device.id,
        after=audit.snapshot(device, ["site_id", "code", "name", "token_prefix"]),
    )
    return device, token


def new_device_token() -> str:
    return DEVICE_TOKEN_PREFIX + secrets.token_urlsafe(32)


def mqtt_username(site_code: str, device_code: str) -> str:
    """A camera's MQTT login name: its place in the topic tree."""
    return f"{site_code}/{device_code}"


def mosquitto_password_line(username: str, secret: str, *, iterations: int = 101) -> str:
    """A line for Mosquitto's ``password_file`` (the ``$7$`` PBKDF2-SHA512 format that
    ``mosquitto_passwd`` writes). Made when the token is issued, since only then is the token
    known; the platform keeps neither."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations, 64)
    b64 = base64.b64encode
    return f"{username}:$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def set_device_active(
    session: Session, *, device: ScreeningDevice, active: bool, actor: User
) -> ScreeningDevice:
    if not can_manage(actor, device.site):
        raise NotFound("设备不存在")
    before = audit.snapshot(device, ["is_active"])
    device.is_active = active
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="screening.device.activate" if active else "screening.device.deactivate",
        target_type="screening_device",
        target_id=device.id,
        before=before,
        after=audit.snapshot(device, ["is_active"]),
    )
    return device


def device_for_token(session: Session, token: str) -> ScreeningDevice:
    """The active device holding this token; ``AuthenticationError`` with a clear message
    otherwise (the message never says whether the device exists)."""
    if not token:
        raise AuthenticationError("缺少设备令牌：请在 Authorization 头中使用 Bearer <设备令牌>")
    if not token.startswith(DEVICE_TOKEN_PREFIX):
        raise AuthenticationError("设备令牌格式错误：应以 fgd_ 开头")
    device = session.scalar(
        select(ScreeningDevice).where(ScreeningDevice.token_hash == token_digest(token))
    )
    if device is None or not device.is_active:
        raise AuthenticationError("设备令牌无效或设备已停用")
    return device


# -- ingest --------------------------------------------------------------------------------


def bind_reading(
    reading: ReadingIn,
    device: ScreeningDevice | tuple[int, str],
    *,
    images_dropped: int = 0,
    device_alarm: bool = False,
    now: datetime | None = None,
    row: int | None = None,
) -> ParsedReading:
    """Check a validated reading against its authenticated device (the payload's ``device``
    must be that device's code) and its clock; ``ValidationFailed`` names the field."""
    device_id, code = (device.id, device.code) if isinstance(device, ScreeningDevice) else device
    if reading.device != code:
        raise ValidationFailed(
            [FieldError("device", f"与认证的设备 {code} 不一致（收到 {reading.device}）", row)]
        )
    measured = reading.time.astimezone(UTC)
    problem = rules.time_problem(measured, now or _now())
    if problem:
        raise ValidationFailed([FieldError("time", problem, row)])
    for name, value in (("temperature", reading.temperature), ("ambient", reading.ambient)):
        if value is not None and not rules.PHYSICAL_MIN_C <= value <= rules.PHYSICAL_MAX_C:
            raise ValidationFailed(
                [
                    FieldError(
                        name,
                        f"{value} °C 超出传感器可测范围（{rules.PHYSICAL_MIN_C:g}"
                        f"~{rules.PHYSICAL_MAX_C:g} °C）",
                        row,
                    )
                ]
            )
    return ParsedReading(
        device_id=device_id,
        event_id=reading.event_id,
        measured_at=measured,
        temperature_c=float(reading.temperature),
        ambient_c=reading.ambient,
        mask=reading.mask,
        images_dropped=images_dropped,
        device_alarm=device_alarm,
    )


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    faults: int = 0
    alarms: int = 0
    images_dropped: int = 0
    unknown_device: int = 0
    alarm_ids: list[int] = field(default_factory=list)


def _site_rules(site: ScreeningSite) -> rules.SiteRules:
    return rules.SiteRules(
        threshold_c=site.threshold_c,
        baseline=site.baseline,
        baseline_window=site.baseline_window,
        baseline_offset_c=site.baseline_offset_c,
    )


def ingest(
    session: Session,
    readings: Sequence[ParsedReading],
    *,
    source: str,
    now: datetime | None = None,
) -> IngestResult:
    """Store a batch of readings and raise their alarms, in the caller's transaction.

    - a duplicate (same device and event id, in this batch or already stored) is ignored: the
      unique constraint decides, with ``INSERT … ON CONFLICT DO NOTHING``;
    - late and out-of-order readings are stored like any other; their day in the statistics is
      the local day they were measured;
    - a reading outside the human range is stored as a device fault and opens a ``fault``
      device alert, never an alarm;
    - image fields were dropped before this point; their count is added to the device;
    - readings of an unknown or inactive device are skipped and counted as ``unknown_device``.
    """
    now = now or _now()
    result = IngestResult()
    if not readings:
        return result
    device_ids = {r.device_id for r in readings}
    rows = session.execute(
        select(ScreeningDevice.id, ScreeningDevice.is_active, ScreeningSite)
        .join(ScreeningSite, ScreeningSite.id == ScreeningDevice.site_id)
        .where(ScreeningDevice.id.in_(device_ids))
    ).all()
    site_of: dict[int, ScreeningSite] = {d: s for d, active, s in rows if active}
    sites = {s.id: s for s in site_of.values()}
    baselines: dict[int, rules.Baseline] = {}
    for site in sites.values():
        if site.baseline:
            recent = session.scalars(
                select(ScreeningReading.temperature_c)
                .where(ScreeningReading.site_id == site.id, ScreeningReading.kind != "fault")
                .order_by(ScreeningReading.id.desc())
                .limit(site.baseline_window)
            ).all()
            baselines[site.id] = rules.Baseline(site.baseline_window, reversed(recent))

    seen: set[tuple[int, str]] = set()
    values: list[dict[str, Any]] = []
    verdicts: dict[tuple[int, str], rules.Verdict] = {}
    images: dict[int, int] = defaultdict(int)
    for r in readings:
        site_for = site_of.get(r.device_id)
        if site_for is None:
            result.unknown_device += 1
            continue
        key = (r.device_id, r.event_id)
        if key in seen:
            result.duplicates += 1
            continue
        seen.add(key)
        verdict = rules.judge(
            r.temperature_c, _site_rules(site_for), baselines.get(site_for.id), r.device_alarm
        )
        verdicts[key] = verdict
        images[r.device_id] += r.images_dropped
        values.append(
            {
                "site_id": site_for.id,
                "device_id": r.device_id,
                "event_id": r.event_id,
                "measured_at": r.measured_at,
                "received_at": now,
                "temperature_c": r.temperature_c,
                "ambient_c": r.ambient_c,
                "mask": r.mask,
                "kind": verdict.kind,
                "source": source,
            }
        )
    inserted: list[dict[str, Any]] = []
    by_key = {(v["device_id"], v["event_id"]): v for v in values}
    if values:
        # executemany: one cached statement, sent as multi-row INSERTs by SQLAlchemy's
        # "insertmanyvalues"; a conflicting row is skipped and returns nothing.
        stmt = (
            _insert(session, ScreeningReading.__table__)
            .on_conflict_do_nothing(index_elements=["device_id", "event_id"])
            .returning(
                ScreeningReading.__table__.c.id,
                ScreeningReading.__table__.c.device_id,
                ScreeningReading.__table__.c.event_id,
            )
        )
        for rid, did, eid in session.connection().execute(stmt, values):
            inserted.append({**by_key[(did, eid)], "id": rid})
    result.duplicates += len(values) - len(inserted)
    result.accepted = len(inserted)
    result.images_dropped = sum(images.values())

    daily: dict[tuple[int, date], list[int]] = defaultdict(lambda: [0, 0, 0])
    per_device: dict[int, int] = defaultdict(int)
    fault_devices: set[int] = set()
    alarm_rows: list[dict[str, Any]] = []
    for row in inserted:
        verdict = verdicts[(row["device_id"], row["event_id"])]
        counts = daily[(row["site_id"], rules.local_day(row["measured_at"]))]
        per_device[row["device_id"]] += 1
        if verdict.kind == rules.KIND_FAULT:
            counts[2] += 1
            fault_devices.add(row["device_id"])
            continue
        counts[0] += 1
        if verdict.kind == rules.KIND_ALARM:
            counts[1] += 1
            assert verdict.rule is not None
            alarm_rows.append(
                {
                    "reading_id": row["id"],
                    "site_id": row["site_id"],
                    "device_id": row["device_id"],
                    "temperature_c": row["temperature_c"],
                    "rule": verdict.rule,
                    "limit_c": verdict.limit_c,
                    "measured_at": row["measured_at"],
                    "raised_at": _now(),
                    "status": "open",
                }
            )
    result.faults = sum(c[2] for c in daily.values())
    if alarm_rows:
        table = ScreeningAlarm.__table__
        ids = (
            session.connection()
            .execute(
                _insert(session, table).returning(table.c.id, sort_by_parameter_order=True),
                alarm_rows,
            )
            .scalars()
            .all()
        )
        result.alarm_ids = list(ids)
        result.alarms = len(ids)
        for alarm_id, a in zip(ids, alarm_rows, strict=True):
            audit.record(
                session,
                actor=None,
                action="screening.alarm.raise",
                target_type="screening_alarm",
                target_id=alarm_id,
                after={"site_id": a["site_id"], "temperature_c": a["temperature_c"]},
            )
    if daily:
        dt = ScreeningDaily.__table__
        up = _insert(session, dt)
        session.connection().execute(
            up.on_conflict_do_update(
                index_elements=["site_id", "day"],
                set_={
                    "screened": dt.c.screened + up.excluded.screened,
                    "alarms": dt.c.alarms + up.excluded.alarms,
                    "faults": dt.c.faults + up.excluded.faults,
                },
            ),
            [
                {"site_id": s, "day": d, "screened": c[0], "alarms": c[1], "faults": c[2]}
                for (s, d), c in daily.items()
            ],
        )
    for device_id in set(per_device) | {d for d, n in images.items() if n}:
        session.execute(
            update(ScreeningDevice)
            .where(ScreeningDevice.id == device_id)
            .values(
                readings=ScreeningDevice.readings + per_device.get(device_id, 0),
                images_dropped=ScreeningDevice.images_dropped + images.get(device_id, 0),
                last_seen_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    for device_id in fault_devices:
        _open_alert(
            session,
            device_id=device_id,
            site_id=site_of[device_id].id,
            kind="fault",
            detail=f"收到超出人体范围（{rules.HUMAN_MIN_C:g}~{rules.HUMAN_MAX_C:g} °C）的读数",
            now=now,
        )
    if per_device:
        # A device that speaks again is no longer silent.
        session.execute(
            update(DeviceAlert)
            .where(
                DeviceAlert.device_id.in_(list(per_device)),
                DeviceAlert.kind == "silent",
                DeviceAlert.resolved_at.is_(None),
            )
            .values(resolved_at=now)
            .execution_options(synchronize_session=False)
        )
    session.flush()
    return result


def _open_alert(
    session: Session, *, device_id: int, site_id: int, kind: str, detail: str, now: datetime
) -> bool:
    """Open a device alert unless one of that kind is already open. True when opened."""
    exists = session.scalar(
        select(DeviceAlert.id).where(
            DeviceAlert.device_id == device_id,
            DeviceAlert.kind == kind,
            DeviceAlert.resolved_at.is_(None),
        )
    )
    if exists:
        return False
    session.add(
        DeviceAlert(device_id=device_id, site_id=site_id, kind=kind, detail=detail, raised_at=now)
    )
    session.flush()
    return True


# -- device health -------------------------------------------------------------------------


def check_devices(
    session: Session, *, now: datetime | None = None, window: timedelta = timedelta(hours=1)
) -> list[DeviceAlert]:
    """Open ``silent`` alerts (no reading for the site's silence time while it is open) and
    ``drift`` alerts (a device's mean over ``window`` off the other devices' by more than the
    site's drift limit). Drift alerts no longer drifting are resolved. Returns new alerts."""
    now = now or _now()
    before = set(session.scalars(select(DeviceAlert.id).where(DeviceAlert.resolved_at.is_(None))))
    sites = session.scalars(select(ScreeningSite)).all()
    for site in sites:
        devices = [d for d in site.devices if d.is_active]
        for d in devices:
            if rules.is_silent(
                d.last_seen_at, now, site.opens_at, site.closes_at, site.silence_minutes
            ):
                _open_alert(
                    session,
                    device_id=d.id,
                    site_id=site.id,
                    kind="silent",
                    detail=f"开放时间内超过 {site.silence_minutes} 分钟没有读数",
                    now=now,
                )
        means = {
            device_id: (float(mean), int(count))
            for device_id, mean, count in session.execute(
                select(
                    ScreeningReading.device_id,
                    func.avg(ScreeningReading.temperature_c),
                    func.count(),
                )
                .where(
                    ScreeningReading.site_id == site.id,
                    ScreeningReading.kind != "fault",
                    ScreeningReading.measured_at >= now - window,
                )
                .group_by(ScreeningReading.device_id)
            )
        }
        drifting = rules.drifting_devices(means, site.drift_c)
        for device_id, delta in drifting.items():
            _open_alert(
                session,
                device_id=device_id,
                site_id=site.id,
                kind="drift",
                detail=f"近 1 小时均值比同点其他设备{'高' if delta > 0 else '低'} "
                f"{abs(delta):.2f} °C（超过 {site.drift_c:g} °C），请校准",
                now=now,
            )
        session.execute(
            update(DeviceAlert)
            .where(
                DeviceAlert.site_id == site.id,
                DeviceAlert.kind == "drift",
                DeviceAlert.resolved_at.is_(None),
                DeviceAlert.device_id.in_(list(means)),
                DeviceAlert.device_id.not_in(list(drifting)),
            )
            .values(resolved_at=now)
            .execution_options(synchronize_session=False)
        )
    session.flush()
    return list(
        session.scalars(
            select(DeviceAlert).where(
                DeviceAlert.resolved_at.is_(None), DeviceAlert.id.not_in(before)
            )
        )
    )


def resolve_alert(session: Session, *, alert_id: int, actor: User) -> DeviceAlert:
    """An operator marks a device alert as dealt with (device cleaned, recalibrated…)."""
    alert = session.get(DeviceAlert, alert_id)
    site = session.get(ScreeningSite, alert.site_id) if alert is not None else None
    if alert is None or site is None or not can_manage(actor, site):
        raise NotFound("设备告警不存在")
    if alert.resolved_at is not None:
        raise Conflict("该告警已处理")
    alert.resolved_at = _now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="screening.alert.resolve",
        target_type="screening_device_alert",
        target_id=alert.id,
        after={"kind": alert.kind, "device_id": alert.device_id},
    )
    return alert


# -- the re-check workflow -----------------------------------------------------------------


def _alarm_for_work(session: Session, alarm_id: int, actor: User) -> ScreeningAlarm:
    alarm = get_alarm(session, actor=actor, alarm_id=alarm_id)
    if not can_work(actor, alarm.site):
        raise PermissionDenied("只有测温点所在单位的工作人员可以处理报警")
    return alarm


def _move(alarm: ScreeningAlarm, to: str) -> None:
    if not rules.can_move(alarm.status, to):
        raise Conflict(
            f"报警当前为“{rules.ALARM_STATUSES[alarm.status]}”，"
            f"不能变为“{rules.ALARM_STATUSES[to]}”"
        )
    alarm.status = to


_WORKFLOW_FIELDS = [
    "status",
    "outcome",
    "recheck_c",
    "rechecked_at",
    "disposed_at",
    "closed_at",
    "note",
]


def recheck(session: Session, *, alarm_id: int, data: Recheck, actor: User) -> ScreeningAlarm:
    """Record the clinical thermometer's value: at or above the site's threshold confirms the
    fever, below clears the alarm (a false alarm)."""
    alarm = _alarm_for_work(session, alarm_id, actor)
    before = audit.snapshot(alarm, _WORKFLOW_FIELDS)
    outcome = rules.recheck_outcome(data.recheck_c, alarm.site.threshold_c)
    _move(alarm, outcome)
    alarm.outcome = outcome
    alarm.recheck_c = data.recheck_c
    alarm.rechecked_at = _now()
    alarm.rechecked_by_id = actor.id
    if data.note:
        alarm.note = data.note
    session.flush()
    _audit_step(session, alarm, actor, "screening.alarm.recheck", before)
    return alarm


def dispose(session: Session, *, alarm_id: int, to: str, actor: User) -> ScreeningAlarm:
    """A confirmed fever goes to the observation room or is referred to a fever clinic."""
    if to not in rules.DISPOSITIONS:
        raise ValidationFailed([FieldError("to", f"应为 {'/'.join(rules.DISPOSITIONS)} 之一")])
    alarm = _alarm_for_work(session, alarm_id, actor)
    before = audit.snapshot(alarm, _WORKFLOW_FIELDS)
    _move(alarm, to)
    alarm.disposed_at = _now()
    alarm.disposed_by_id = actor.id
    session.flush()
    _audit_step(session, alarm, actor, f"screening.alarm.{to}", before)
    return alarm


def close(
    session: Session, *, alarm_id: int, actor: User, note: str | None = None
) -> ScreeningAlarm:
    """Close a cleared alarm, or a confirmed one after its disposition and its case record."""
    alarm = _alarm_for_work(session, alarm_id, actor)
    before = audit.snapshot(alarm, _WORKFLOW_FIELDS)
    if alarm.outcome == "confirmed" and session.get(ScreeningCase, alarm.id) is None:
        raise Conflict("确认发热的报警须先登记人员信息再关闭")
    _move(alarm, "closed")
    alarm.closed_at = _now()
    alarm.closed_by_id = actor.id
    if note:
        alarm.note = note[:500]
    session.flush()
    _audit_step(session, alarm, actor, "screening.alarm.close", before)
    return alarm


def _audit_step(
    session: Session, alarm: ScreeningAlarm, actor: User, action: str, before: dict[str, Any]
) -> None:
    b, a = audit.diff(before, audit.snapshot(alarm, _WORKFLOW_FIELDS))
    audit.record(
        session,
        actor=actor,
        action=action,
        target_type="screening_alarm",
        target_id=alarm.id,
        before=b,
        after=a,
    )


def record_case(session: Session, *, alarm_id: int, data: CaseRecord, actor: User) -> ScreeningCase:
    """Record who a confirmed fever is (name or staff/student number, class or department).
    Only confirmed alarms record a person; the audit row names the fields, not their values."""
    alarm = _alarm_for_work(session, alarm_id, actor)
    if alarm.outcome != "confirmed":
        raise Conflict("只有复核确认发热的报警才登记人员信息")
    if not data.person_name and not data.person_no:
        raise ValidationFailed([FieldError("person_name", "请填写姓名或工号/学号")])
    case = session.get(ScreeningCase, alarm.id)
    action = "screening.case.update" if case else "screening.case.create"
    if case is None:
        case = ScreeningCase(alarm_id=alarm.id)
        session.add(case)
    case.person_name = data.person_name
    case.person_no = data.person_no
    case.unit = data.unit
    case.recorded_by_id = actor.id
    case.recorded_at = _now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=action,
        target_type="screening_case",
        target_id=alarm.id,
        detail="fields: " + ",".join(k for k, v in data.model_dump().items() if v),
    )
    return case


# -- retention and the CDC summary -----------------------------------------------------------


def purge(session: Session, *, retention_days: int, now: datetime | None = None) -> int:
    """Delete non-alarm readings measured more than ``retention_days`` ago; returns how many.
    Alarm readings stay (their alarm refers to them); daily statistics are kept apart and do
    not change."""
    if retention_days < 1:
        raise ValidationFailed([FieldError("retention_days", "保留天数至少为 1")])
    cutoff = (now or _now()) - timedelta(days=retention_days)
    res = session.execute(
        delete(ScreeningReading)
        .where(ScreeningReading.kind != "alarm", ScreeningReading.measured_at < cutoff)
        .execution_options(synchronize_session=False)
    )
    count = int(getattr(res, "rowcount", 0) or 0)
    audit.record(
        session,
        actor=None,
        action="screening.purge",
        target_type="screening_readings",
        detail=f"deleted {count} readings measured before {cutoff.isoformat()}",
    )
    return count


def send_cdc_summary(session: Session, *, day: date) -> int:
    """Notify every active CDC user of the day's district-wide figures (a link to the summary
    page, no personal data in the text). Returns how many were notified."""
    t = totals(session, day_from=day, day_to=day)
    text = (
        f"{day.isoformat()} 测温通道日报：筛查 {t['screened']} 人次，报警 {t['alarms']} 次，"
        f"复核确认发热 {t['confirmed']} 人，误报 {t['cleared']} 次。"
    )
    users = session.scalars(
        select(User)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == "cdc", User.is_active.is_(True))
    ).all()
    for u in users:
        notify(session, u, text, f"/screening/cdc?day={day.isoformat()}")
    audit.record(
        session,
        actor=None,
        action="screening.cdc_summary",
        target_type="screening_daily",
        target_id=day.isoformat(),
        detail=f"notified {len(users)} CDC users",
    )
    return len(users)


def readings_from_payloads(
    payloads: Iterable[tuple[Any, ScreeningDevice | tuple[int, str]]], now: datetime
) -> tuple[list[ParsedReading], list[FieldError]]:
    """Validate many documented payloads; the good ones and every error (row = position)."""
    good: list[ParsedReading] = []
    errors: list[FieldError] = []
    for i, (payload, device) in enumerate(payloads, start=1):
        try:
            reading, dropped = parse_reading(payload, row=i)
            good.append(bind_reading(reading, device, images_dropped=dropped, now=now, row=i))
        except ValidationFailed as e:
            errors.extend(e.errors)
    return good, errors
