"""Screening reads, scoped in SQL: out of scope is the same as absent (``NotFound``).

Statistics per site and local day: screened, alarms and faults come from the ingest counters
(``screening_daily``); confirmed, cleared, the false-alarm rate and the median time from alarm
to re-check come from the alarms (never purged)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.orm import Session

from fugong.core import audit
from fugong.core.models import User
from fugong.errors import NotFound, PermissionDenied
from fugong.screening import rules
from fugong.screening.models import (
    DeviceAlert,
    ScreeningAlarm,
    ScreeningCase,
    ScreeningDaily,
    ScreeningDevice,
    ScreeningSite,
)
from fugong.screening.permissions import READERS, can_see_person, site_scope


def _scope(actor: User | None) -> ColumnElement[bool]:
    if actor is None:  # the CLI on the host
        return true()
    if not actor.has_role(*READERS):
        raise PermissionDenied("您的角色无权查看测温通道")
    return site_scope(actor)


def list_sites(session: Session, *, actor: User | None) -> list[ScreeningSite]:
    return list(
        session.scalars(
            select(ScreeningSite)
            .where(_scope(actor))
            .order_by(ScreeningSite.district, ScreeningSite.name)
        ).unique()
    )


def get_site(session: Session, *, actor: User | None, site_id: int) -> ScreeningSite:
    site = session.scalar(select(ScreeningSite).where(ScreeningSite.id == site_id, _scope(actor)))
    if site is None:
        raise NotFound("测温点不存在")
    return site


def get_alarm(session: Session, *, actor: User | None, alarm_id: int) -> ScreeningAlarm:
    alarm = session.scalar(
        select(ScreeningAlarm)
        .join(ScreeningSite, ScreeningSite.id == ScreeningAlarm.site_id)
        .where(ScreeningAlarm.id == alarm_id, _scope(actor))
    )
    if alarm is None:
        raise NotFound("报警不存在")
    return alarm


def devices(session: Session, *, site: ScreeningSite) -> list[ScreeningDevice]:
    return list(
        session.scalars(
            select(ScreeningDevice)
            .where(ScreeningDevice.site_id == site.id)
            .order_by(ScreeningDevice.code)
        )
    )


def alarms(
    session: Session,
    *,
    site: ScreeningSite,
    day: date | None = None,
    open_only: bool = False,
    limit: int = 200,
) -> list[ScreeningAlarm]:
    q = select(ScreeningAlarm).where(ScreeningAlarm.site_id == site.id)
    if day is not None:
        start, end = day_bounds(day)
        q = q.where(ScreeningAlarm.raised_at >= start, ScreeningAlarm.raised_at < end)
    if open_only:
        q = q.where(ScreeningAlarm.status != "closed")
    return list(session.scalars(q.order_by(ScreeningAlarm.id.desc()).limit(limit)))


def alarms_since(session: Session, *, site_id: int, after_id: int) -> list[ScreeningAlarm]:
    """Alarms of a site newer than ``after_id``, oldest first (the live feed; the caller has
    already checked the site is in scope)."""
    return list(
        session.scalars(
            select(ScreeningAlarm)
            .where(ScreeningAlarm.site_id == site_id, ScreeningAlarm.id > after_id)
            .order_by(ScreeningAlarm.id)
            .limit(100)
        )
    )


def last_alarm_id(session: Session, *, site_id: int) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.max(ScreeningAlarm.id), 0)).where(
                ScreeningAlarm.site_id == site_id
            )
        )
        or 0
    )


def open_device_alerts(session: Session, *, site: ScreeningSite) -> list[DeviceAlert]:
    return list(
        session.scalars(
            select(DeviceAlert)
            .where(DeviceAlert.site_id == site.id, DeviceAlert.resolved_at.is_(None))
            .order_by(DeviceAlert.raised_at.desc())
        )
    )


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """A local day as a UTC half-open interval."""
    start = datetime.combine(day, time(0), rules.SITE_TZ).astimezone(UTC)
    return start, start + timedelta(days=1)


def today() -> date:
    return rules.local_day(datetime.now(UTC))


@dataclass
class DayStats:
    site_id: int
    site_name: str
    district: str | None
    day: date
    screened: int = 0
    alarms: int = 0
    faults: int = 0
    confirmed: int = 0
    cleared: int = 0
    open: int = 0
    recheck_minutes: float | None = None

    @property
    def false_alarm_rate(self) -> float | None:
        return rules.false_alarm_rate(self.confirmed + self.cleared, self.cleared)

    def row(self) -> list[Any]:
        far = self.false_alarm_rate
        return [
            self.day.isoformat(),
            self.district or "",
            self.site_name,
            self.screened,
            self.alarms,
            self.confirmed,
            self.cleared,
            "" if far is None else round(far * 100, 1),
            "" if self.recheck_minutes is None else round(self.recheck_minutes, 1),
            self.faults,
        ]


STATS_HEADER = [
    "日期",
    "区",
    "测温点",
    "筛查人次",
    "报警",
    "确认发热",
    "误报",
    "误报率(%)",
    "复核用时中位数(分钟)",
    "设备故障读数",
]


def site_day_stats(
    session: Session,
    *,
    actor: User | None,
    day_from: date,
    day_to: date,
    site_id: int | None = None,
) -> list[DayStats]:
    """One row per site in scope and local day in [day_from, day_to] that had any reading."""
    sites = {s.id: s for s in list_sites(session, actor=actor)}
    if site_id is not None:
        sites = {k: v for k, v in sites.items() if k == site_id}
    if not sites:
        return []
    out: dict[tuple[int, date], DayStats] = {}

    def cell(sid: int, d: date) -> DayStats:
        key = (sid, d)
        if key not in out:
            s = sites[sid]
            out[key] = DayStats(sid, s.name, s.district, d)
        return out[key]

    for row in session.scalars(
        select(ScreeningDaily).where(
            ScreeningDaily.site_id.in_(list(sites)),
            ScreeningDaily.day >= day_from,
            ScreeningDaily.day <= day_to,
        )
    ):
        c = cell(row.site_id, row.day)
        c.screened, c.alarms, c.faults = row.screened, row.alarms, row.faults
    start, _ = day_bounds(day_from)
    _, end = day_bounds(day_to)
    waits: dict[tuple[int, date], list[float]] = defaultdict(list)
    for a in session.scalars(
        select(ScreeningAlarm).where(
            ScreeningAlarm.site_id.in_(list(sites)),
            ScreeningAlarm.measured_at >= start,
            ScreeningAlarm.measured_at < end,
        )
    ):
        key = (a.site_id, rules.local_day(a.measured_at))
        c = cell(*key)
        if a.outcome == "confirmed":
            c.confirmed += 1
        elif a.outcome == "cleared":
            c.cleared += 1
        else:
            c.open += 1
        if a.rechecked_at is not None:
            waits[key].append((a.rechecked_at - a.raised_at).total_seconds() / 60)
    for key, w in waits.items():
        out[key].recheck_minutes = rules.median_or_none(w)
    return sorted(out.values(), key=lambda s: (s.day, s.district or "", s.site_name), reverse=True)


def totals(
    session: Session, *, day_from: date, day_to: date, actor: User | None = None
) -> dict[str, Any]:
    rows = site_day_stats(session, actor=actor, day_from=day_from, day_to=day_to)
    t: dict[str, Any] = {
        k: sum(getattr(r, k) for r in rows)
        for k in ("screened", "alarms", "faults", "confirmed", "cleared", "open")
    }
    t["false_alarm_rate"] = rules.false_alarm_rate(t["confirmed"] + t["cleared"], t["cleared"])
    t["sites"] = len({r.site_id for r in rows})
    return t


def by_district(rows: list[DayStats]) -> list[dict[str, Any]]:
    """Roll site-day rows up to districts (the official's district view)."""
    acc: dict[str, dict[str, Any]] = {}
    for r in rows:
        d = acc.setdefault(
            r.district or "(未设区)",
            {"district": r.district or "(未设区)", "sites": set(), "screened": 0, "alarms": 0,
             "confirmed": 0, "cleared": 0},
        )  # fmt: skip
        d["sites"].add(r.site_id)
        for k in ("screened", "alarms", "confirmed", "cleared"):
            d[k] += getattr(r, k)
    out = []
    for d in acc.values():
        d["sites"] = len(d["sites"])
        d["false_alarm_rate"] = rules.false_alarm_rate(d["confirmed"] + d["cleared"], d["cleared"])
        out.append(d)
    return sorted(out, key=lambda d: d["district"])


def get_case(session: Session, *, actor: User, alarm: ScreeningAlarm) -> ScreeningCase | None:
    """The person of a confirmed case, for the site's own organisation and the CDC only; every
    read is audited."""
    if not can_see_person(actor, alarm.site):
        return None
    case = session.get(ScreeningCase, alarm.id)
    if case is not None:
        audit.record(
            session,
            actor=actor,
            action="screening.case.read",
            target_type="screening_case",
            target_id=alarm.id,
        )
    return case


def confirmed_cases(
    session: Session, *, actor: User, day: date
) -> list[tuple[ScreeningAlarm, ScreeningCase | None]]:
    """The day's confirmed alarms with their person (CDC summary); each person read audited."""
    start, end = day_bounds(day)
    rows = session.scalars(
        select(ScreeningAlarm)
        .join(ScreeningSite, ScreeningSite.id == ScreeningAlarm.site_id)
        .where(
            _scope(actor),
            ScreeningAlarm.outcome == "confirmed",
            ScreeningAlarm.measured_at >= start,
            ScreeningAlarm.measured_at < end,
        )
        .order_by(ScreeningAlarm.measured_at)
    ).all()
    return [(a, get_case(session, actor=actor, alarm=a)) for a in rows]


def device_codes(session: Session) -> dict[tuple[str, str], tuple[int, bool]]:
    """(site code, device code) → (device id, active), for the MQTT listener's topic lookup."""
    rows = session.execute(
        select(
            ScreeningSite.code, ScreeningDevice.code, ScreeningDevice.id, ScreeningDevice.is_active
        ).join(ScreeningSite, ScreeningSite.id == ScreeningDevice.site_id)
    )
    return {(s, d): (i, a) for s, d, i, a in rows}


def mosquitto_acl(session: Session, *, listener_user: str) -> str:
    """Mosquitto's ``acl_file`` for the broker: the listener reads every site's readings; each
    active camera may only write its own topic (a deactivated one may write nothing)."""
    lines = [
        "# fugong screening: generated by `fugong screening mqtt-acl`; regenerate after adding",
        "# or deactivating a device, then reload the broker (SIGHUP).",
        f"user {listener_user}",
        "topic read fugong/screening/+/+/readings",
        "",
    ]
    rows = session.execute(
        select(ScreeningSite.code, ScreeningDevice.code)
        .join(ScreeningSite, ScreeningSite.id == ScreeningDevice.site_id)
        .where(ScreeningDevice.is_active.is_(True))
        .order_by(ScreeningSite.code, ScreeningDevice.code)
    )
    for site_code, device_code in rows:
        lines += [
            f"user {site_code}/{device_code}",
            f"topic write fugong/screening/{site_code}/{device_code}/readings",
            "",
        ]
    return "\n".join(lines)
