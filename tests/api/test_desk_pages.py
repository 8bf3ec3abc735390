"""Desk pages over HTTP: needs form, meetings, reports, notifications, permissions."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fugong.core.schemas import EnterpriseUpdate
from fugong.core.services import update_enterprise
from fugong.desk.models import Meeting, Need
from tests.api.conftest import login


def test_need_form_report_and_notification(client: TestClient, session: Session, make) -> None:
    manager = make.user("manager")
    org = make.enterprise()
    update_enterprise(
        session,
        enterprise_id=org.id,
        actor=make.user("admin"),
        data=EnterpriseUpdate(manager=manager.username),
    )
    official = make.user("official")
    csrf = login(client, official.username)
    r = client.post(
        "/desk/needs/new",
        data={
            "csrf_token": csrf,
            "uscc": org.uscc,
            "need_type": "financing",
            "urgency": "high",
            "description": "x",
        },
    )
    assert r.status_code == 422 and "description" in r.text
    r = client.post(
        "/desk/needs/new",
        data={
            "csrf_token": csrf,
            "uscc": org.uscc,
            "need_type": "financing",
            "urgency": "high",
            "description": "贷款展期咨询",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    need = session.scalar(select(Need).where(Need.organisation_id == org.id))
    assert need is not None and need.owner_id == manager.id
    report = client.get("/desk/reports", params={"by": "type", "format": "csv"})
    assert "融资" in report.text and report.headers["content-type"].startswith("text/csv")
    client.cookies.clear()
    login(client, manager.username)
    home = client.get("/desk")
    assert "贷款展期" not in home.text and "融资" in home.text
    assert 'class="badge">1<' in home.text  # one unread notification in the navigation
    notes = client.get("/notifications").text
    assert f"/desk/needs/{need.id}" in notes


def test_illegal_transition_shows_allowed_moves(client: TestClient, session: Session, make) -> None:
    official = make.user("official")
    org = make.enterprise()
    csrf = login(client, official.username)
    client.post(
        "/desk/needs/new",
        data={
            "csrf_token": csrf,
            "organisation_id": str(org.id),
            "need_type": "other",
            "urgency": "normal",
            "description": "远程庭审网络保障",
        },
    )
    need = session.scalar(select(Need).where(Need.organisation_id == org.id))
    assert need is not None
    r = client.post(f"/desk/needs/{need.id}/status", data={"csrf_token": csrf, "to": "resolved"})
    assert r.status_code == 422 and "只能变为：已受理、无法协助" in r.text


def test_meeting_logged_with_follow_up(client: TestClient, session: Session, make) -> None:
    org = make.enterprise()
    csrf = login(client, make.user("official").username)
    r = client.post(
        "/desk/meetings",
        data={
            "csrf_token": csrf,
            "uscc": org.uscc,
            "kind": "visit",
            "held_on": "2020-03-20",
            "participants": "企业关键对接人、区工信局接口人",
            "outcome": "确认实际生产符合补贴范围",
            "follow_type": "policy",
            "follow_urgency": "normal",
            "follow_description": "申报援企稳岗补贴",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    meeting = session.scalar(select(Meeting).where(Meeting.organisation_id == org.id))
    assert meeting is not None
    assert session.scalar(select(Need).where(Need.meeting_id == meeting.id)) is not None
    assert "确认实际生产符合补贴范围" in client.get("/desk/meetings").text


def test_desk_closed_to_other_roles(client: TestClient, make) -> None:
    login(client, make.user("supplier", org=make.org(kind="supplier")).username)
    assert client.get("/desk").status_code == 403
    assert client.get("/desk/reports").status_code == 403
