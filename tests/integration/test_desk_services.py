"""Desk services on the real databases: needs, the status machine, campaigns, meetings."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fugong.core.models import AuditLog, Enterprise, Notification
from fugong.core.schemas import EnterpriseUpdate
from fugong.core.services import update_enterprise
from fugong.desk import queries, services
from fugong.desk.models import Need
from fugong.desk.rules import default_questionnaire
from fugong.desk.schemas import CampaignCreate, MeetingCreate, NeedCreate
from fugong.errors import NotFound, PermissionDenied, ValidationFailed


def portfolio(session: Session, make, n: int):
    manager = make.user("manager")
    admin = make.user("admin")
    orgs = [
        make.enterprise(resumption_status="not_resumed", resumption_date=None, staff_back_pct=None)
        for _ in range(n)
    ]
    for org in orgs:
        update_enterprise(
            session,
            enterprise_id=org.id,
            actor=admin,
            data=EnterpriseUpdate(manager=manager.username),
        )
    return manager, orgs


def test_need_gets_due_times_owner_and_notification(session: Session, make) -> None:
    manager, [org] = portfolio(session, make, 1)
    official = make.user("official")
    before = datetime.now(UTC)
    need = services.create_need(
        session,
        actor=official,
        data=NeedCreate(
            organisation_id=org.id,
            need_type="supplies",
            urgency="urgent",
            description="急需红外热成像测温仪 2 台",
        ),
    )
    assert need.owner_id == manager.id  # the enterprise's manager by default
    assert before + timedelta(hours=4) <= need.ack_due <= datetime.now(UTC) + timedelta(hours=4)
    assert need.resolve_due - need.created_at == timedelta(hours=24)
    note = session.scalar(select(Notification).where(Notification.user_id == manager.id))
    assert note is not None and "/desk/needs/" in (note.link or "")
    assert session.scalar(select(AuditLog).where(AuditLog.action == "need.create")) is not None


def test_status_machine_with_history_and_permissions(session: Session, make) -> None:
    manager, [org] = portfolio(session, make, 1)
    need = services.create_need(
        session,
        actor=manager,
        data=NeedCreate(
            organisation_id=org.id,
            need_type="policy",
            urgency="normal",
            description="稳岗返还怎么申请",
        ),
    )
    with pytest.raises(ValidationFailed, match="只能变为"):
        services.change_need_status(session, need_id=need.id, to="resolved", actor=manager)
    other = make.user("manager")
    with pytest.raises(NotFound):  # outside the other manager's portfolio entirely
        services.change_need_status(session, need_id=need.id, to="acknowledged", actor=other)
    services.change_need_status(session, need_id=need.id, to="acknowledged", actor=manager)
    services.change_need_status(session, need_id=need.id, to="in_progress", actor=manager)
    with pytest.raises(ValidationFailed, match="必须填写原因"):
        services.change_need_status(session, need_id=need.id, to="cannot_help", actor=manager)
    services.change_need_status(
        session, need_id=need.id, to="resolved", actor=manager, note="已指导线上申报"
    )
    assert [e.to_status for e in need.events] == ["new", "acknowledged", "in_progress", "resolved"]
    assert need.acknowledged_at is not None and need.closed_at is not None
    rows = queries.response_times(session, actor=manager, by="type")
    assert (
        rows[0].key == "政策咨询" and rows[0].resolved == 1 and rows[0].median_resolve_h is not None
    )


def test_manager_sees_only_portfolio_needs_unless_official(session: Session, make) -> None:
    manager, [mine] = portfolio(session, make, 1)
    other = make.enterprise()
    official = make.user("official")
    services.create_need(
        session,
        actor=official,
        data=NeedCreate(organisation_id=mine.id, need_type="hiring", description="招工 20 人"),
    )
    services.create_need(
        session,
        actor=official,
        data=NeedCreate(organisation_id=other.id, need_type="hiring", description="招工 30 人"),
    )
    flt = queries.NeedFilter(status="open")
    assert {n.organisation_id for n in queries.list_needs(session, actor=manager, flt=flt)} == {
        mine.id
    }
    assert len(queries.list_needs(session, actor=official, flt=flt)) == 2
    ent_user = make.user("enterprise", org=other)
    assert {n.organisation_id for n in queries.list_needs(session, actor=ent_user, flt=flt)} == {
        other.id
    }
    with pytest.raises(NotFound):
        services.create_need(
            session,
            actor=ent_user,
            data=NeedCreate(organisation_id=mine.id, need_type="other", description="不是我的企业"),
        )


def test_overdue_needs_are_flagged(session: Session, make) -> None:
    manager, [org] = portfolio(session, make, 1)
    need = services.create_need(
        session,
        actor=manager,
        data=NeedCreate(
            organisation_id=org.id, need_type="network", urgency="urgent", description="远程办公"
        ),
    )
    assert queries.count_overdue(session, actor=manager) == 0
    need.created_at -= timedelta(hours=5)
    need.ack_due -= timedelta(hours=5)
    need.resolve_due -= timedelta(hours=5)
    session.flush()
    assert queries.count_overdue(session, actor=manager) == 1
    assert queries.need_overdue(need) == "acknowledge"


def test_campaign_answers_update_facts_and_create_needs(session: Session, make) -> None:
    manager, _ = portfolio(session, make, 5)
    campaign = services.create_campaign(
        session,
        actor=manager,
        questions=default_questionnaire(),
        data=CampaignCreate(
            title="疫情影响摸查",
            deadline=date.today() + timedelta(days=4),
            portfolio=manager.username,
        ),
    )
    targets = queries.campaign_targets(session, actor=manager, campaign_id=campaign.id)
    assert len(targets) == 5
    first, second = targets[0][0], targets[1][0]
    services.save_answers(
        session,
        target_id=first.id,
        actor=manager,
        final=False,
        raw={"resumption_status": "partial"},
    )
    assert first.status == "draft"
    with pytest.raises(ValidationFailed, match="返岗比例"):
        services.save_answers(
            session,
            target_id=first.id,
            actor=manager,
            final=True,
            raw={"resumption_status": "partial"},
        )
    services.save_answers(
        session,
        target_id=first.id,
        actor=manager,
        final=True,
        raw={
            "resumption_status": "partial",
            "staff_back_pct": "60",
            "help_needed": ["supplies"],
            "help_urgency": "urgent",
            "help_detail": "口罩只够 2 天",
        },
    )
    ent = session.get(Enterprise, first.enterprise_id)
    assert ent is not None and ent.resumption_status == "partial" and ent.staff_back_pct == 60
    need = session.scalar(select(Need).where(Need.campaign_target_id == first.id))
    assert need is not None and need.need_type == "supplies" and need.urgency == "urgent"
    services.mark_not_reached(
        session,
        target_id=second.id,
        actor=manager,
        reason="电话无人接听",
        retry_at=datetime.now(UTC) + timedelta(hours=2),
    )
    board = queries.campaign_board(session, actor=manager, campaign_id=campaign.id)
    assert (board.overall.done, board.overall.not_reached, board.overall.todo) == (1, 1, 3)
    stranger = make.user("manager")
    with pytest.raises(NotFound):
        services.save_answers(session, target_id=second.id, actor=stranger, final=False, raw={})


def test_meeting_with_follow_up_need(session: Session, make) -> None:
    manager, [org] = portfolio(session, make, 1)
    meeting = services.create_meeting(
        session,
        actor=manager,
        data=MeetingCreate(
            organisation_id=org.id,
            kind="visit",
            held_on=date.today(),
            participants="企业对接人、工信局接口人",
            outcome="确认生产线符合补贴范围",
        ),
        follow_ups=[
            NeedCreate(
                organisation_id=org.id,
                need_type="policy",
                description="申报援企稳岗补贴",
                source="meeting",
            )
        ],
    )
    need = session.scalar(select(Need).where(Need.meeting_id == meeting.id))
    assert need is not None and need.source == "meeting"
    with pytest.raises(ValidationFailed, match="不能晚于今天"):
        services.create_meeting(
            session,
            actor=manager,
            data=MeetingCreate(
                organisation_id=org.id,
                kind="meeting",
                held_on=date.today() + timedelta(days=2),
                participants="某某、某某",
            ),
        )
    with pytest.raises(PermissionDenied):
        services.create_meeting(
            session,
            actor=make.user("enterprise", org=org),
            data=MeetingCreate(
                organisation_id=org.id, kind="call", held_on=date.today(), participants="某某、某某"
            ),
        )
