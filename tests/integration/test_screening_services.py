"""Screening services on both databases: ingest (dedup, faults, baseline, stats), the re-check
workflow with its constraints, scoping, device health, purge, the CDC summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fugong.core.models import AuditLog, Notification
from fugong.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fugong.screening import queries, rules, services
from fugong.screening.models import (
    DeviceAlert,
    ScreeningAlarm,
    ScreeningDaily,
    ScreeningReading,
)
from fugong.screening.schemas import CaseRecord, DeviceCreate, ParsedReading, Recheck, SiteCreate
from tests.conftest import Factory

NOW = datetime.now(UTC)


@pytest.fixture
def gate(session: Session, make: Factory) -> dict[str, Any]:
    school = make.org("institution", name="测试中学", district="黄埔区")
    nurse = make.user("site", org=school)
    site = services.create_site(
        session, data=SiteCreate(code="gate-a", name="东门", kind="school"), actor=nurse
    )
    d1, _ = services.create_device(
        session, site=site, data=DeviceCreate(code="cam-1", name="1"), actor=nurse
    )
    d2, _ = services.create_device(
        session, site=site, data=DeviceCreate(code="cam-2", name="2"), actor=nurse
    )
    return {"site": site, "d1": d1, "d2": d2, "nurse": nurse, "school": school}


def rd(device: Any, event: str, temp: float, at: datetime | None = None) -> ParsedReading:
    return ParsedReading(
        device_id=device.id,
        event_id=event,
        measured_at=at or NOW - timedelta(minutes=1),
        temperature_c=temp,
        ambient_c=None,
        mask=None,
    )


def test_ingest_dedups_on_the_unique_constraint(session: Session, gate: dict[str, Any]) -> None:
    d1 = gate["d1"]
    first = services.ingest(session, [rd(d1, "a", 36.5), rd(d1, "b", 38.0)], source="http")
    again = services.ingest(
        session, [rd(d1, "a", 36.5), rd(d1, "b", 38.0), rd(d1, "c", 36.1)], source="mqtt"
    )
    assert (first.accepted, first.alarms) == (2, 1)
    assert (again.accepted, again.duplicates, again.alarms) == (1, 2, 0)
    assert session.scalar(select(func.count()).select_from(ScreeningAlarm)) == 1
    # the same event id on another device is another reading
    assert services.ingest(session, [rd(gate["d2"], "a", 36.5)], source="http").accepted == 1


def test_daily_counts_by_local_day_and_faults(session: Session, gate: dict[str, Any]) -> None:
    d1 = gate["d1"]
    late = NOW - timedelta(days=2)
    services.ingest(
        session,
        [rd(d1, "1", 36.4), rd(d1, "2", 60.0), rd(d1, "3", 37.5), rd(d1, "4", 36.2, late)],
        source="http",
    )
    rows = {r.day: r for r in session.scalars(select(ScreeningDaily))}
    today = rules.local_day(NOW - timedelta(minutes=1))
    assert (rows[today].screened, rows[today].alarms, rows[today].faults) == (2, 1, 1)
    assert rows[rules.local_day(late)].screened == 1
    alert = session.scalar(select(DeviceAlert).where(DeviceAlert.kind == "fault"))
    assert alert is not None and alert.device_id == d1.id
    # a second fault does not open a second alert
    services.ingest(session, [rd(d1, "5", 20.0)], source="http")
    assert session.scalar(select(func.count()).select_from(DeviceAlert)) == 1


def test_moving_baseline_from_stored_readings(session: Session, gate: dict[str, Any]) -> None:
    site = gate["site"]
    site.baseline, site.baseline_offset_c = True, 1.0
    session.flush()
    d1 = gate["d1"]
    services.ingest(session, [rd(d1, f"w{i}", 35.3) for i in range(20)], source="http")
    # next batch: the window comes from the database
    r = services.ingest(session, [rd(d1, "hot", 36.5), rd(d1, "ok", 36.0)], source="http")
    assert r.alarms == 1
    alarm = session.scalar(select(ScreeningAlarm))
    assert alarm is not None and alarm.rule == "baseline" and alarm.limit_c == pytest.approx(36.3)


def test_workflow_confirmed_case_and_audit(
    session: Session, gate: dict[str, Any], make: Factory
) -> None:
    nurse = gate["nurse"]
    (alarm_id,) = services.ingest(session, [rd(gate["d1"], "f", 38.4)], source="http").alarm_ids
    with pytest.raises(Conflict):
        services.close(session, alarm_id=alarm_id, actor=nurse)
    with pytest.raises(Conflict):
        services.record_case(
            session, alarm_id=alarm_id, data=CaseRecord(person_name="张三"), actor=nurse
        )
    a = services.recheck(session, alarm_id=alarm_id, data=Recheck(recheck_c=38.1), actor=nurse)
    assert (a.status, a.outcome, a.rechecked_by_id) == ("confirmed", "confirmed", nurse.id)
    with pytest.raises(Conflict):  # a confirmed fever is not closed before its case is recorded
        services.dispose(session, alarm_id=alarm_id, to="observation", actor=nurse)
        services.close(session, alarm_id=alarm_id, actor=nurse)
    services.record_case(
        session,
        alarm_id=alarm_id,
        data=CaseRecord(person_name="张三", person_no="S2020001", unit="三年二班"),
        actor=nurse,
    )
    services.dispose(session, alarm_id=alarm_id, to="referred", actor=nurse)
    a = services.close(session, alarm_id=alarm_id, actor=nurse)
    assert a.status == "closed" and a.disposed_at and a.closed_at and a.closed_by_id == nurse.id
    actions = set(
        session.scalars(
            select(AuditLog.action).where(
                AuditLog.target_type.in_(["screening_alarm", "screening_case"]),
                AuditLog.target_id == str(alarm_id),
            )
        )
    )
    assert {
        "screening.alarm.raise",
        "screening.alarm.recheck",
        "screening.case.create",
        "screening.alarm.referred",
        "screening.alarm.close",
    } <= actions
    # the person: the site and the CDC see it (audited); an official does not
    cdc = make.user("cdc", org=make.org("institution", district=None))
    official = make.user("official", org=make.org("government", district="黄埔区"))
    case = queries.get_case(session, actor=cdc, alarm=a)
    assert case is not None and case.person_no == "S2020001"
    assert queries.get_case(session, actor=official, alarm=a) is None
    reads = session.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.action == "screening.case.read")
    )
    assert reads == 1
    stats = queries.site_day_stats(
        session,
        actor=official,
        day_from=queries.today() - timedelta(days=1),
        day_to=queries.today(),
    )
    assert sum(s.confirmed for s in stats) == 1


def test_cleared_alarm_and_statistics(session: Session, gate: dict[str, Any]) -> None:
    nurse = gate["nurse"]
    ids = services.ingest(
        session, [rd(gate["d1"], "x", 37.6), rd(gate["d1"], "y", 36.1)], source="http"
    ).alarm_ids
    services.recheck(session, alarm_id=ids[0], data=Recheck(recheck_c=36.7), actor=nurse)
    services.close(session, alarm_id=ids[0], actor=nurse)
    (row,) = queries.site_day_stats(
        session, actor=nurse, day_from=queries.today() - timedelta(days=1), day_to=queries.today()
    )
    assert (row.screened, row.alarms, row.cleared, row.confirmed) == (2, 1, 1, 0)
    assert row.false_alarm_rate == 1.0 and row.recheck_minutes is not None


def test_constraints_hold_in_the_database(session: Session, gate: dict[str, Any]) -> None:
    (alarm_id,) = services.ingest(session, [rd(gate["d1"], "c", 39.0)], source="http").alarm_ids
    alarm = session.get(ScreeningAlarm, alarm_id)
    assert alarm is not None
    alarm.status = "closed"  # closed without a re-check, an outcome or a time
    with pytest.raises(IntegrityError), session.begin_nested():
        session.flush()
    session.expire_all()


def test_scoping(session: Session, gate: dict[str, Any], make: Factory) -> None:
    other_site_user = make.user("site", org=make.org("institution"))
    official_elsewhere = make.user("official", org=make.org("government", district="天河区"))
    official_here = make.user("official", org=make.org("government", district="黄埔区"))
    enterprise_user = make.user("enterprise", org=make.org("institution"))
    (alarm_id,) = services.ingest(session, [rd(gate["d1"], "s", 38.0)], source="http").alarm_ids
    site_id = gate["site"].id
    for outsider in (other_site_user, official_elsewhere):
        with pytest.raises(NotFound):
            queries.get_site(session, actor=outsider, site_id=site_id)
        with pytest.raises(NotFound):
            queries.get_alarm(session, actor=outsider, alarm_id=alarm_id)
        assert queries.list_sites(session, actor=outsider) == []
    with pytest.raises(PermissionDenied):
        queries.list_sites(session, actor=enterprise_user)
    assert queries.get_site(session, actor=official_here, site_id=site_id).id == site_id
    with pytest.raises(PermissionDenied):  # officials read; the site's staff re-check
        services.recheck(
            session, alarm_id=alarm_id, data=Recheck(recheck_c=36.5), actor=official_here
        )
    with pytest.raises(ValidationFailed):
        services.create_site(
            session,
            data=SiteCreate(code="gate-a", name="重复", kind="school"),
            actor=gate["nurse"],
        )


def test_device_health_silence_and_drift(session: Session, gate: dict[str, Any]) -> None:
    site = gate["site"]
    site.opens_at = site.closes_at = datetime.min.time()  # always open
    site.silence_minutes = 30
    session.flush()
    d1, d2 = gate["d1"], gate["d2"]
    hour = NOW - timedelta(minutes=30)
    services.ingest(
        session,
        [rd(d1, f"a{i}", 36.3, hour) for i in range(25)]
        + [rd(d2, f"b{i}", 37.1 if i % 2 else 37.0, hour) for i in range(25)],
        source="http",
        now=NOW - timedelta(minutes=40),
    )
    new = services.check_devices(session, now=NOW)
    kinds = {(a.device_id, a.kind) for a in new}
    assert (d1.id, "silent") in kinds and (d2.id, "silent") in kinds
    assert {k for d, k in kinds if k == "drift"} == {"drift"}
    assert services.check_devices(session, now=NOW) == []  # no duplicates of open alerts
    services.ingest(session, [rd(d1, "back", 36.4)], source="http", now=NOW)
    silent_open = session.scalars(
        select(DeviceAlert.device_id).where(
            DeviceAlert.kind == "silent", DeviceAlert.resolved_at.is_(None)
        )
    ).all()
    assert silent_open == [d2.id]


def test_purge_keeps_alarms_and_statistics(session: Session, gate: dict[str, Any]) -> None:
    d1 = gate["d1"]
    old = NOW - timedelta(days=20)
    services.ingest(
        session,
        [rd(d1, "o1", 36.4, old), rd(d1, "o2", 38.5, old), rd(d1, "n1", 36.4)],
        source="http",
    )
    before = session.scalar(select(func.sum(ScreeningDaily.screened)))
    assert services.purge(session, retention_days=14) == 1
    left = set(session.scalars(select(ScreeningReading.event_id)))
    assert left == {"o2", "n1"}
    assert session.scalar(select(func.sum(ScreeningDaily.screened))) == before
    with pytest.raises(ValidationFailed):
        services.purge(session, retention_days=0)


def test_cdc_summary_notifies_cdc_users(
    session: Session, gate: dict[str, Any], make: Factory
) -> None:
    cdc = make.user("cdc", org=make.org("institution", district=None))
    services.ingest(session, [rd(gate["d1"], "z", 38.0)], source="http")
    n = services.send_cdc_summary(session, day=rules.local_day(NOW - timedelta(minutes=1)))
    assert n >= 1
    note = session.scalar(select(Notification).where(Notification.user_id == cdc.id))
    assert note is not None and "报警 1 次" in note.text and note.link.startswith("/screening/cdc")
