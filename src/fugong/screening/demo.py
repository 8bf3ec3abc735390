"""Demo data for the screening domain, loaded by ``fugong demo`` after the core demo: the demo
school (the ``site`` user's organisation) gets a gate with two cameras and the last three hours
of readings, with two alarms: one re-checked and closed as a false alarm, one still open.

The cameras' tokens are random and not kept: to push readings, register a device on the site's
page (its token is shown once)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from fugong.core import audit
from fugong.core.models import Organisation
from fugong.core.security import token_digest
from fugong.screening import services
from fugong.screening.models import ScreeningAlarm, ScreeningDevice, ScreeningSite
from fugong.screening.schemas import ParsedReading

DEMO_SCHOOL = "黄埔区示范小学"


def load_screening_demo(session: Session, *, seed: int = 2020, readings: int = 360) -> None:
    """Load the screening demo (one ingest call, well under a second). Does nothing when the
    demo school is absent."""
    school = session.scalar(select(Organisation).where(Organisation.name == DEMO_SCHOOL))
    if school is None:
        return
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, no secret drawn
    site = ScreeningSite(
        organisation_id=school.id,
        district=school.district,
        code="hpsx-gate",
        name="示范小学正门测温通道",
        kind="school",
    )
    session.add(site)
    session.flush()
    devices = []
    for code, name in (("gate-1", "正门 1 号热成像仪"), ("gate-2", "正门 2 号热成像仪")):
        token = services.new_device_token()
        d = ScreeningDevice(
            site_id=site.id,
            code=code,
            name=name,
            token_hash=token_digest(token),
            token_prefix=token[:12],
        )
        session.add(d)
        devices.append(d)
    session.flush()
    now = datetime.now(UTC)
    start = now - timedelta(hours=3)
    fevers = {readings // 3: 37.6, (2 * readings) // 3: 38.1}
    batch = [
        ParsedReading(
            device_id=devices[i % 2].id,
            event_id=f"demo-{i:05d}",
            measured_at=start + timedelta(seconds=i * 3 * 3600 // readings),
            temperature_c=fevers.get(i, round(rng.gauss(36.3, 0.25), 1)),
            ambient_c=round(rng.uniform(16, 20), 1),
            mask=rng.random() < 0.97,
            images_dropped=1 if i % 50 == 0 else 0,
        )
        for i in range(readings)
    ]
    result = services.ingest(session, batch, source="demo", now=now)
    first = session.get(ScreeningAlarm, min(result.alarm_ids)) if result.alarm_ids else None
    if first is not None:
        # The nurse re-checked the first alarm four minutes later: 36.6 °C, a false alarm.
        first.status, first.outcome, first.recheck_c = "closed", "cleared", 36.6
        first.rechecked_at = first.raised_at + timedelta(minutes=4)
        first.closed_at = first.raised_at + timedelta(minutes=5)
        first.note = "体温计复测正常（演示数据）"
    audit.record(
        session,
        actor=None,
        action="screening.demo.load",
        target_type="screening_site",
        target_id=site.id,
        detail=f"{result.accepted} readings, {result.alarms} alarms",
    )
    session.flush()
