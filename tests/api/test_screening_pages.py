"""The screening pages through the app: forms with clear errors, scoping (404), the live feed,
the re-check forms, export, the CDC summary and the audited person record."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fugong.core.models import AuditLog
from fugong.screening import services
from fugong.screening.models import DeviceAlert, ScreeningAlarm, ScreeningSite
from fugong.screening.schemas import DeviceCreate, ParsedReading, SiteCreate
from fugong.web.ui import screening as screening_ui
from tests.api.conftest import login
from tests.conftest import Factory


@pytest.fixture
def gate(session: Session, make: Factory) -> dict[str, Any]:
    school = make.org("institution", name="页面测试小学", district="黄埔区")
    nurse = make.user("site", org=school)
    site = services.create_site(
        session, data=SiteCreate(code="pg-gate", name="北门", kind="school"), actor=nurse
    )
    device, _ = services.create_device(
        session, site=site, data=DeviceCreate(code="cam-1", name="1"), actor=nurse
    )
    now = datetime.now(UTC)
    result = services.ingest(
        session,
        [
            ParsedReading(device.id, f"e{i}", now - timedelta(minutes=5), t, None, None)
            for i, t in enumerate([36.4, 36.6, 38.3])
        ],
        source="http",
    )
    session.flush()
    return {"site": site, "nurse": nurse, "alarm_id": result.alarm_ids[0], "school": school}


def test_create_site_form_errors_and_success(
    client: TestClient, session: Session, make: Factory
) -> None:
    user = make.user("site", org=make.org("institution"))
    session.flush()
    csrf = login(client, user.username)
    r = client.post(
        "/screening/sites",
        data={"csrf_token": csrf, "name": "正门", "code": "Bad Code!", "threshold_c": "41"},
    )
    assert r.status_code == 422
    assert 'data-field="code"' in r.text and 'data-field="threshold_c"' in r.text
    assert 'value="正门"' in r.text  # what was typed is kept
    r = client.post(
        "/screening/sites",
        data={"csrf_token": csrf, "name": "正门", "code": "new-gate", "baseline": "on"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    site = session.scalar(select(ScreeningSite).where(ScreeningSite.code == "new-gate"))
    assert site is not None and site.baseline and site.organisation_id == user.organisation_id
    r = client.post("/screening/sites", data={"csrf_token": "forged", "name": "x", "code": "y"})
    assert r.status_code == 403


def test_out_of_scope_is_404_and_other_roles_refused(
    client: TestClient, session: Session, make: Factory, gate: dict[str, Any]
) -> None:
    outsider = make.user("site", org=make.org("institution"))
    enterprise = make.enterprise()
    ent_user = make.user("enterprise", org=enterprise)
    session.flush()
    login(client, outsider.username)
    site_id, alarm_id = gate["site"].id, gate["alarm_id"]
    for url in (
        f"/screening/sites/{site_id}",
        f"/screening/alarms/{alarm_id}",
        f"/screening/sites/{site_id}/events",
    ):
        assert client.get(url).status_code == 404, url
    assert "北门" not in client.get("/screening").text
    client.cookies.clear()
    login(client, ent_user.username)
    assert client.get("/screening").status_code == 403


def test_live_feed_sends_new_alarms(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, gate: dict[str, Any]
) -> None:
    monkeypatch.setattr(screening_ui, "STREAM_S", 0.5)  # end the stream so the client returns
    login(client, gate["nurse"].username)
    r = client.get(f"/screening/sites/{gate['site'].id}/events?after=0")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert f"id: {gate['alarm_id']}\nevent: alarm\n" in r.text
    assert '"temperature": "38.3"' in r.text
    r = client.get(
        f"/screening/sites/{gate['site'].id}/events",
        headers={"Last-Event-ID": str(gate["alarm_id"])},
    )
    assert "event: alarm" not in r.text  # resumes after the last alarm it saw


def test_workflow_pages_with_person_record(
    client: TestClient, session: Session, make: Factory, gate: dict[str, Any]
) -> None:
    csrf = login(client, gate["nurse"].username)
    alarm_id = gate["alarm_id"]
    page = client.get(f"/screening/alarms/{alarm_id}")
    assert 'id="recheck-form"' in page.text
    r = client.post(
        f"/screening/alarms/{alarm_id}/recheck", data={"csrf_token": csrf, "recheck_c": "abc"}
    )
    assert r.status_code == 422 and 'data-field="recheck_c"' in r.text
    r = client.post(
        f"/screening/alarms/{alarm_id}/recheck", data={"csrf_token": csrf, "recheck_c": "38.0"}
    )
    assert r.status_code == 200 and "复核确认发热" in r.text
    r = client.post(f"/screening/alarms/{alarm_id}/case", data={"csrf_token": csrf})
    assert r.status_code == 422 and 'data-field="person_name"' in r.text
    r = client.post(
        f"/screening/alarms/{alarm_id}/case",
        data={"csrf_token": csrf, "person_name": "李四", "person_no": "T0042", "unit": "后勤部"},
    )
    assert "李四" in r.text
    r = client.post(
        f"/screening/alarms/{alarm_id}/dispose", data={"csrf_token": csrf, "to": "observation"}
    )
    assert "留观" in r.text
    r = client.post(
        f"/screening/alarms/{alarm_id}/close", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert r.status_code == 303
    assert session.get(ScreeningAlarm, alarm_id).status == "closed"  # type: ignore[union-attr]
    # The official sees the alarm but not the person; the CDC sees the person, audited.
    official = make.user("official", org=make.org("government", district="黄埔区"))
    cdc = make.user("cdc", org=make.org("institution", district=None))
    session.flush()
    client.cookies.clear()
    login(client, official.username)
    assert "李四" not in client.get(f"/screening/alarms/{alarm_id}").text
    assert "李四" not in client.get("/screening/cdc").text
    client.cookies.clear()
    login(client, cdc.username)
    before = session.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.action == "screening.case.read")
    )
    assert "李四" in client.get("/screening/cdc").text
    after = session.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.action == "screening.case.read")
    )
    assert after == (before or 0) + 1


def test_stats_export_csv_and_xlsx(client: TestClient, gate: dict[str, Any]) -> None:
    login(client, gate["nurse"].username)
    page = client.get("/screening/stats")
    assert "北门" in page.text
    csv_text = client.get("/screening/stats?format=csv").text
    header, first = csv_text.lstrip("\ufeff").splitlines()[:2]
    assert header.startswith("日期,区,测温点,筛查人次,报警")
    assert ",北门,3,1," in first
    xlsx = client.get("/screening/stats?format=xlsx")
    ws = load_workbook(io.BytesIO(xlsx.content)).active
    assert ws is not None and ws.cell(2, 3).value == "北门"
    assert client.get("/screening/stats?from=2020-13-01").status_code == 422


def test_site_settings_form(client: TestClient, session: Session, gate: dict[str, Any]) -> None:
    csrf = login(client, gate["nurse"].username)
    url = f"/screening/sites/{gate['site'].id}/settings"
    form = {"csrf_token": csrf, "name": "北门", "threshold_c": "37.0", "baseline": "on"}
    r = client.post(url, data={**form, "baseline_offset_c": "9"})
    assert r.status_code == 422 and 'data-field="baseline_offset_c"' in r.text
    r = client.post(url, data=form, follow_redirects=False)
    assert r.status_code == 303
    session.refresh(gate["site"])
    assert gate["site"].threshold_c == 37.0 and gate["site"].baseline
    change = session.scalar(select(AuditLog).where(AuditLog.action == "screening.site.update"))
    assert change is not None and change.after == {"threshold_c": 37.0, "baseline": True}


def test_device_alert_shown_and_resolved(
    client: TestClient, session: Session, make: Factory, gate: dict[str, Any]
) -> None:
    device = gate["site"].devices[0]
    services.ingest(
        session,
        [ParsedReading(device.id, "hot-wall", datetime.now(UTC), 55.0, None, None)],
        source="http",
    )
    session.flush()
    alert = session.scalar(select(DeviceAlert))
    assert alert is not None
    outsider = make.user("site", org=make.org("institution"))
    session.flush()
    csrf = login(client, outsider.username)
    r = client.post(f"/screening/alerts/{alert.id}/resolve", data={"csrf_token": csrf})
    assert r.status_code == 404
    client.cookies.clear()
    csrf = login(client, gate["nurse"].username)
    assert "读数超出人体范围" in client.get(f"/screening/sites/{gate['site'].id}").text
    r = client.post(f"/screening/alerts/{alert.id}/resolve", data={"csrf_token": csrf})
    assert r.status_code == 200 and "设备告警已处理" in r.text
    assert "读数超出人体范围" not in r.text.split("设备告警已处理")[1]
