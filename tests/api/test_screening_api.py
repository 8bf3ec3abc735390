"""The device push endpoint and the vendor adapter: token checks, clear 422s, duplicates,
faults, dropped images; the people's endpoints are scoped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fugong.screening import services
from fugong.screening.models import ScreeningAlarm, ScreeningDevice, ScreeningReading
from fugong.screening.schemas import DeviceCreate, SiteCreate
from tests.api.conftest import login
from tests.conftest import Factory


@pytest.fixture
def gate(session: Session, make: Factory) -> dict[str, Any]:
    school = make.org("institution", name="测试小学")
    nurse = make.user("site", org=school)
    site = services.create_site(
        session, data=SiteCreate(code="t-school", name="正门", kind="school"), actor=nurse
    )
    device, token = services.create_device(
        session, site=site, data=DeviceCreate(code="cam-1", name="1 号"), actor=nurse
    )
    session.flush()
    return {"site": site, "device": device, "token": token, "nurse": nurse}


def reading(event: str = "e1", temp: float = 36.5, **kw: Any) -> dict[str, Any]:
    body = {
        "device": "cam-1",
        "event_id": event,
        "time": (datetime.now(UTC) - timedelta(seconds=5)).isoformat(),
        "temperature": temp,
        "ambient": 20.0,
        "mask": True,
    }
    body.update(kw)
    return body


def push(client: TestClient, token: str, body: Any, path: str = "readings") -> Any:
    return client.post(
        f"/api/v1/screening/{path}", json=body, headers={"Authorization": f"Bearer {token}"}
    )


def test_bad_token_is_401_with_a_clear_message(client: TestClient, gate: dict[str, Any]) -> None:
    r = push(client, "fgd_not-a-real-token", reading())
    assert r.status_code == 401
    assert "设备令牌无效" in r.json()["detail"]
    r = push(client, "fgt_user-token-shape", reading())
    assert r.status_code == 401
    assert "fgd_" in r.json()["detail"]
    # No Authorization header at all: the device hears it needs a token, not a CSRF complaint.
    r = client.post("/api/v1/screening/readings", json=reading())
    assert r.status_code == 401, r.text
    assert "fgd_" in r.json()["detail"] or "令牌" in r.json()["detail"]


def test_a_deactivated_device_is_refused(
    client: TestClient, session: Session, gate: dict[str, Any]
) -> None:
    services.set_device_active(session, device=gate["device"], active=False, actor=gate["nurse"])
    session.flush()
    r = push(client, gate["token"], reading())
    assert r.status_code == 401


def test_malformed_reading_is_422_naming_the_field(
    client: TestClient, session: Session, gate: dict[str, Any]
) -> None:
    r = push(client, gate["token"], reading(temperature="hot"))
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"temperature"}
    r = push(client, gate["token"], {"device": "cam-1", "time": "2020-01-01T00:00:00Z"})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} >= {"event_id", "temperature"}
    r = push(client, gate["token"], reading(colour="red"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "colour"
    # the wrong device in the payload, a clock far ahead
    r = push(client, gate["token"], reading(device="cam-9"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "device"
    ahead = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    r = push(client, gate["token"], reading(time=ahead))
    assert r.status_code == 422 and "校准" in r.json()["errors"][0]["message"]
    # a batch with one bad item: all or none, and the item is named by its row
    r = push(client, gate["token"], [reading("a"), reading("b", temp=None)])
    assert r.status_code == 422
    assert r.json()["errors"][0]["row"] == 2
    assert session.scalar(select(func.count()).select_from(ScreeningReading)) == 0


def test_readings_stored_duplicates_ignored_faults_and_images(
    client: TestClient, session: Session, gate: dict[str, Any]
) -> None:
    batch = [
        reading("e1", 36.4, image="base64-face-bytes"),
        reading("e2", 38.2),
        reading("e3", 52.0),  # a reflection off a hot surface: a device fault, not a fever
        reading("e1", 36.4),  # duplicate inside the batch
    ]
    r = push(client, gate["token"], batch)
    assert r.status_code == 201, r.text
    assert r.json() == {
        "accepted": 3,
        "duplicates": 1,
        "faults": 1,
        "alarms": 1,
        "images_dropped": 1,
    }
    r = push(client, gate["token"], reading("e2", 38.2))  # a resend
    assert r.json()["accepted"] == 0 and r.json()["duplicates"] == 1
    kinds = dict(session.execute(select(ScreeningReading.event_id, ScreeningReading.kind)).all())
    assert kinds == {"e1": "normal", "e2": "alarm", "e3": "fault"}
    assert session.scalar(select(func.count()).select_from(ScreeningAlarm)) == 1
    device = session.get(ScreeningDevice, gate["device"].id)
    session.refresh(device)
    assert device.images_dropped == 1 and device.readings == 3


def test_late_and_out_of_order_readings_are_accepted(
    client: TestClient, gate: dict[str, Any]
) -> None:
    old = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    newer = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert push(client, gate["token"], reading("n", time=newer)).json()["accepted"] == 1
    assert push(client, gate["token"], reading("o", time=old)).json()["accepted"] == 1


def test_vendor_event_adapter(client: TestClient, session: Session, gate: dict[str, Any]) -> None:
    event = {
        "ipAddress": "10.1.2.3",
        "dateTime": datetime.now(UTC).astimezone().isoformat(),
        "eventType": "AccessControllerEvent",
        "AccessControllerEvent": {
            "serialNo": 4711,
            "currTemperature": 99.5,
            "thermometryUnit": "fahrenheit",
            "isAbnomalTemperature": True,
            "mask": "no",
            "faceImage": "…jpeg…",
        },
        "picture": "…jpeg…",
    }
    r = push(client, gate["token"], event, "vendor/events")
    assert r.status_code == 201, r.text
    assert r.json()["alarms"] == 1 and r.json()["images_dropped"] == 2
    row = session.scalar(select(ScreeningReading).where(ScreeningReading.event_id == "4711"))
    assert row is not None and row.temperature_c == pytest.approx(37.5) and row.mask is False
    del event["AccessControllerEvent"]["currTemperature"]
    r = push(client, gate["token"], event, "vendor/events")
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "AccessControllerEvent.currTemperature"


def test_people_endpoints_are_scoped(
    client: TestClient, session: Session, make: Factory, gate: dict[str, Any]
) -> None:
    push(client, gate["token"], reading("f", 38.0))
    alarm_id = session.scalar(select(ScreeningAlarm.id))
    other_school = make.user("site", org=make.org("institution"))
    session.flush()
    login(client, other_school.username)
    assert client.get("/api/v1/screening/sites").json() == []
    assert client.get(f"/api/v1/screening/alarms/{alarm_id}").status_code == 404
    client.cookies.clear()
    csrf = login(client, gate["nurse"].username)
    assert [s["code"] for s in client.get("/api/v1/screening/sites").json()] == ["t-school"]
    r = client.post(
        f"/api/v1/screening/alarms/{alarm_id}/recheck",
        json={"recheck_c": 36.6},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code == 200 and r.json()["status"] == "cleared"
    stats = client.get("/api/v1/screening/stats").json()
    assert stats[0]["alarms"] == 1 and stats[0]["cleared"] == 1
    assert stats[0]["false_alarm_rate"] == 1.0
