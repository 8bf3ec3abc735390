"""Desk writes: needs and their status machine, campaigns and answers, meetings. Each takes
the actor, checks scope, writes the audit row in the same transaction and flushes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from fugong.core import audit
from fugong.core import services as core_services
from fugong.core.models import Enterprise, Organisation, User, UserRole
from fugong.core.notify import notify
from fugong.core.permissions import enterprise_scope, require_role
from fugong.core.schemas import EnterpriseUpdate
from fugong.desk.models import Campaign, CampaignTarget, Meeting, Need, NeedEvent
from fugong.desk.permissions import CAMPAIGN_CREATORS, DESK_STAFF, need_scope, org_scope
from fugong.desk.rules import (
    NEED_TYPES,
    STATUSES,
    DueRule,
    TransitionError,
    check_questionnaire,
    check_transition,
    due_times,
    validate_answers,
)
from fugong.desk.schemas import CampaignCreate, MeetingCreate, NeedCreate
from fugong.errors import FieldError, NotFound, PermissionDenied, ValidationFailed


def _now() -> datetime:
    return datetime.now(UTC)


def _visible_org(session: Session, actor: User, org_id: int) -> Organisation:
    org = session.scalar(
        select(Organisation).where(Organisation.id == org_id, org_scope(actor, Organisation.id))
    )
    if org is None:
        raise NotFound("机构不存在")
    return org


def _manager(session: Session, username: str) -> User:
    user = session.scalar(
        select(User).join(UserRole).where(User.username == username, UserRole.role == "manager")
    )
    if user is None:
        raise ValidationFailed([FieldError("owner", f"客户经理“{username}”不存在")])
    return user


# -- needs ---------------------------------------------------------------------------------


def create_need(
    session: Session,
    *,
    data: NeedCreate,
    actor: User,
    rules: dict[str, DueRule] | None = None,
    campaign_target_id: int | None = None,
    meeting_id: int | None = None,
) -> Need:
    org = _visible_org(session, actor, data.organisation_id)
    if not actor.has_role(*DESK_STAFF) and (
        not actor.has_role("enterprise") or org.id != actor.organisation_id
    ):
        raise PermissionDenied("您无权为该机构登记需求")
    owner: User | None
    if data.owner:
        owner = _manager(session, data.owner)
    elif actor.has_role("manager"):
        owner = actor
    else:
        ent = session.get(Enterprise, org.id)
        owner = session.get(User, ent.manager_id) if ent and ent.manager_id else None
    now = _now()
    ack_due, resolve_due = due_times(data.urgency, now, rules)
    need = Need(
        organisation_id=org.id,
        need_type=data.need_type,
        urgency=data.urgency,
        description=data.description,
        owner_id=owner.id if owner else None,
        source=data.source if actor.has_role(*DESK_STAFF) else "self",
        campaign_target_id=campaign_target_id,
        meeting_id=meeting_id,
        created_at=now,
        created_by_id=actor.id,
        ack_due=ack_due,
        resolve_due=resolve_due,
    )
    need.events.append(NeedEvent(from_status=None, to_status="new", at=now, by_id=actor.id))
    session.add(need)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="need.create",
        target_type="need",
        target_id=need.id,
        after=audit.snapshot(
            need,
            [
                "organisation_id",
                "need_type",
                "urgency",
                "owner_id",
                "ack_due",
                "resolve_due",
                "source",
            ],
        ),
    )
    if owner is not None and owner.id != actor.id:
        notify(
            session,
            owner,
            f"新{NEED_TYPES[need.need_type]}需求（{org.name}），"
            f"请于 {ack_due:%m-%d %H:%M} UTC 前受理",
            f"/desk/needs/{need.id}",
        )
    return need


def get_need(session: Session, *, actor: User, need_id: int) -> Need:
    need = session.scalar(select(Need).where(Need.id == need_id, need_scope(actor)))
    if need is None:
        raise NotFound("需求不存在")
    return need


def change_need_status(
    session: Session, *, need_id: int, to: str, actor: User, note: str | None = None
) -> Need:
    need = get_need(session, actor=actor, need_id=need_id)
    if not actor.has_role("admin", "official") and need.owner_id != actor.id:
        raise PermissionDenied("只有负责人或区政府工作人员可以处理该需求")
    try:
        check_transition(need.status, to, note)
    except TransitionError as e:
        raise ValidationFailed([FieldError("status", str(e))]) from None
    now = _now()
    before = need.status
    need.status = to
    if to == "acknowledged" or (need.acknowledged_at is None and to != "new"):
        need.acknowledged_at = need.acknowledged_at or now
    if to in ("resolved", "cannot_help"):
        need.closed_at = now
        need.close_reason = note
    need.events.append(
        NeedEvent(from_status=before, to_status=to, at=now, by_id=actor.id, note=note)
    )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="need.status",
        target_type="need",
        target_id=need.id,
        before={"status": before},
        after={"status": to},
        detail=note,
    )
    if need.created_by_id and need.created_by_id != actor.id:
        notify(
            session,
            session.get(User, need.created_by_id),
            f"需求 #{need.id} 已{STATUSES[to]}",
            f"/desk/needs/{need.id}",
        )
    return need


def assign_need(session: Session, *, need_id: int, owner: str, actor: User) -> Need:
    require_role(actor, "admin", "official", "manager")
    need = get_need(session, actor=actor, need_id=need_id)
    new_owner = _manager(session, owner)
    before = need.owner_id
    need.owner_id = new_owner.id
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="need.assign",
        target_type="need",
        target_id=need.id,
        before={"owner_id": before},
        after={"owner_id": new_owner.id},
    )
    notify(session, new_owner, f"您被指派负责需求 #{need.id}", f"/desk/needs/{need.id}")
    return need


def link_need(session: Session, *, need_id: int, ref: str, actor: User) -> Need:
    """Record where a need went (e.g. ``supplies_request:12``) and move it to in progress."""
    need = get_need(session, actor=actor, need_id=need_id)
    need.linked_ref = ref
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="need.link",
        target_type="need",
        target_id=need.id,
        after={"linked_ref": ref},
    )
    if need.status in ("new", "acknowledged"):
        if need.status == "new":
            change_need_status(session, need_id=need.id, to="acknowledged", actor=actor)
        change_need_status(
            session, need_id=need.id, to="in_progress", actor=actor, note=f"已转为 {ref}"
        )
    return need


# -- campaigns -----------------------------------------------------------------------------


def create_campaign(
    session: Session, *, data: CampaignCreate, questions: list[dict[str, Any]], actor: User
) -> Campaign:
    require_role(actor, *CAMPAIGN_CREATORS)
    problems = check_questionnaire(questions)
    if problems:
        raise ValidationFailed([FieldError("questions", p) for p in problems])
    if data.deadline < _now().date():
        raise ValidationFailed([FieldError("deadline", "截止日期不能早于今天")])
    stmt = select(Enterprise.id, Enterprise.manager_id).where(enterprise_scope(actor))
    notes = []
    if data.portfolio:
        stmt = stmt.where(Enterprise.manager_id == _manager(session, data.portfolio).id)
        notes.append(f"客户经理 {data.portfolio} 的服务名册")
    if data.street:
        stmt = stmt.where(Enterprise.street == data.street)
        notes.append(data.street)
    if data.industry:
        stmt = stmt.where(Enterprise.industry == data.industry)
        notes.append(data.industry)
    if data.key_only:
        stmt = stmt.where(Enterprise.key_category.is_not(None))
        notes.append("重点企业")
    targets = session.execute(stmt.order_by(Enterprise.id)).all()
    if not targets:
        raise ValidationFailed([FieldError("target", "没有符合条件的企业")])
    campaign = Campaign(
        title=data.title,
        questions=questions,
        deadline=data.deadline,
        target_note="；".join(notes) or "可见范围内全部企业",
        created_by_id=actor.id,
    )
    session.add(campaign)
    session.flush()
    session.add_all(
        CampaignTarget(
            campaign_id=campaign.id,
            enterprise_id=eid,
            manager_id=mid or (actor.id if actor.has_role("manager") else None),
        )
        for eid, mid in targets
    )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="campaign.create",
        target_type="campaign",
        target_id=campaign.id,
        after={"title": data.title, "targets": len(targets), "deadline": data.deadline},
    )
    return campaign


def _target(session: Session, actor: User, target_id: int) -> CampaignTarget:
    target = session.get(CampaignTarget, target_id)
    if (
        target is None
        or session.scalar(
            select(Enterprise.id).where(
                Enterprise.id == target.enterprise_id, enterprise_scope(actor)
            )
        )
        is None
    ):
        raise NotFound("调查对象不存在")
    if not actor.has_role("admin", "official", "manager"):
        raise PermissionDenied("只有客户经理或区政府工作人员可以填写调查")
    if target.campaign.status != "open":
        raise ValidationFailed([FieldError("campaign", "调查已结束")])
    return target


def save_answers(
    session: Session,
    *,
    target_id: int,
    raw: dict[str, Any],
    final: bool,
    actor: User,
    rules: dict[str, DueRule] | None = None,
) -> CampaignTarget:
    """Save a draft, or submit: then mapped answers update the enterprise (with history) and
    the help asked for becomes needs owned by the caller."""
    target = _target(session, actor, target_id)
    questions = target.campaign.questions
    answers, errors = validate_answers(questions, raw, final=final)
    if errors:
        raise ValidationFailed([FieldError(k, v) for k, v in errors.items()])
    now = _now()
    target.answers = answers
    target.updated_at = now
    if not final:
        target.status = "draft"
        session.flush()
        return target
    target.status = "done"
    target.completed_at = now
    target.completed_by_id = actor.id
    target.not_reached_reason = None
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="campaign.answer",
        target_type="campaign_target",
        target_id=target.id,
        after=answers,
    )
    facts = {
        q["maps_to"]: answers[q["key"]]
        for q in questions
        if q.get("maps_to") and q["key"] in answers
    }
    if facts:
        if facts.get("resumption_status") == "full":
            facts.setdefault("staff_back_pct", 100)
        try:
            update = EnterpriseUpdate.model_validate(
                {**facts, "note": f"调查：{target.campaign.title}"}
            )
            core_services.update_enterprise(
                session, enterprise_id=target.enterprise_id, data=update, actor=actor
            )
        except ValidationError as e:
            raise ValidationFailed(core_services.field_errors(e)) from None
    needs_q = next((q for q in questions if q.get("creates_needs")), None)
    if needs_q is not None:
        detail = answers.get("help_detail") or "（调查中提出）"
        for need_type in answers.get(needs_q["key"], []):
            create_need(
                session,
                actor=actor,
                rules=rules,
                campaign_target_id=target.id,
                data=NeedCreate(
                    organisation_id=target.enterprise_id,
                    need_type=need_type,
                    urgency=answers.get("help_urgency", "normal"),
                    description=str(detail),
                    source="survey",
                ),
            )
    return target


def mark_not_reached(
    session: Session, *, target_id: int, reason: str, retry_at: datetime | None, actor: User
) -> CampaignTarget:
    target = _target(session, actor, target_id)
    if not reason.strip():
        raise ValidationFailed([FieldError("reason", "请填写未联系上的原因")])
    if target.status == "done":
        raise ValidationFailed([FieldError("status", "已完成的调查不能标记为未联系上")])
    target.status = "not_reached"
    target.not_reached_reason = reason.strip()[:300]
    target.retry_at = retry_at
    target.attempts += 1
    target.updated_at = _now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="campaign.not_reached",
        target_type="campaign_target",
        target_id=target.id,
        after={"reason": target.not_reached_reason, "retry_at": retry_at},
    )
    return target


def close_campaign(session: Session, *, campaign_id: int, actor: User) -> Campaign:
    require_role(actor, *CAMPAIGN_CREATORS)
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("调查不存在")
    if campaign.created_by_id != actor.id and not actor.has_role("admin", "official"):
        raise PermissionDenied("只有发起人可以结束调查")
    campaign.status = "closed"
    session.flush()
    audit.record(
        session, actor=actor, action="campaign.close", target_type="campaign", target_id=campaign.id
    )
    return campaign


# -- meetings ------------------------------------------------------------------------------


def create_meeting(
    session: Session,
    *,
    data: MeetingCreate,
    actor: User,
    follow_ups: list[NeedCreate] | None = None,
    rules: dict[str, DueRule] | None = None,
) -> Meeting:
    require_role(actor, *DESK_STAFF)
    org = _visible_org(session, actor, data.organisation_id)
    if data.held_on > date.today():
        raise ValidationFailed([FieldError("held_on", "会议/走访日期不能晚于今天")])
    meeting = Meeting(
        organisation_id=org.id,
        kind=data.kind,
        held_on=data.held_on,
        participants=data.participants,
        notes=data.notes,
        outcome=data.outcome,
        created_by_id=actor.id,
    )
    session.add(meeting)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="meeting.create",
        target_type="meeting",
        target_id=meeting.id,
        after=audit.snapshot(
            meeting, ["organisation_id", "kind", "held_on", "participants", "outcome"]
        ),
    )
    for need in follow_ups or []:
        create_need(session, data=need, actor=actor, rules=rules, meeting_id=meeting.id)
    return meeting
