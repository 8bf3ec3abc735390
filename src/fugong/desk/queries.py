"""Desk reads: needs with their deadlines, campaign progress, response-time reports."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from fugong.core.models import Enterprise, Organisation, User
from fugong.core.permissions import enterprise_scope, require_role
from fugong.desk.models import Campaign, CampaignTarget, Meeting, Need
from fugong.desk.permissions import DESK_READERS, need_scope, org_scope
from fugong.desk.rules import CLOSED, NEED_TYPES, overdue
from fugong.errors import NotFound


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class NeedFilter:
    status: str | None = None  # a status, or "open"
    need_type: str | None = None
    owner_id: int | None = None
    overdue_only: bool = False
    organisation_id: int | None = None


def _needs_stmt(actor: User, flt: NeedFilter) -> Select[Need]:
    stmt = select(Need).where(need_scope(actor))
    if flt.status == "open":
        stmt = stmt.where(Need.status.not_in(CLOSED))
    elif flt.status:
        stmt = stmt.where(Need.status == flt.status)
    if flt.need_type:
        stmt = stmt.where(Need.need_type == flt.need_type)
    if flt.owner_id:
        stmt = stmt.where(Need.owner_id == flt.owner_id)
    if flt.organisation_id:
        stmt = stmt.where(Need.organisation_id == flt.organisation_id)
    if flt.overdue_only:
        now = _now()
        stmt = stmt.where(Need.status.not_in(CLOSED)).where(
            ((Need.acknowledged_at.is_(None)) & (Need.ack_due < now)) | (Need.resolve_due < now)
        )
    return stmt


def list_needs(session: Session, *, actor: User, flt: NeedFilter, limit: int = 200) -> list[Need]:
    require_role(actor, *DESK_READERS)
    return list(session.scalars(_needs_stmt(actor, flt).order_by(Need.resolve_due).limit(limit)))


def count_overdue(session: Session, *, actor: User, owner_id: int | None = None) -> int:
    stmt = _needs_stmt(actor, NeedFilter(overdue_only=True, owner_id=owner_id))
    return session.scalar(select(func.count()).select_from(stmt.subquery())) or 0


def need_overdue(need: Need, now: datetime | None = None) -> str | None:
    return overdue(need.status, need.ack_due, need.resolve_due, need.acknowledged_at, now or _now())


# -- campaigns -----------------------------------------------------------------------------


def visible_campaigns(session: Session, *, actor: User) -> list[Campaign]:
    require_role(actor, "admin", "official", "manager", "auditor")
    visible = (
        select(CampaignTarget.campaign_id)
        .join(Enterprise, Enterprise.id == CampaignTarget.enterprise_id)
        .where(enterprise_scope(actor))
    )
    return list(
        session.scalars(
            select(Campaign).where(Campaign.id.in_(visible)).order_by(Campaign.id.desc())
        )
    )


def get_campaign(session: Session, *, actor: User, campaign_id: int) -> Campaign:
    for c in visible_campaigns(session, actor=actor):
        if c.id == campaign_id:
            return c
    raise NotFound("调查不存在")


@dataclass
class Progress:
    done: int = 0
    draft: int = 0
    not_reached: int = 0
    todo: int = 0

    @property
    def total(self) -> int:
        return self.done + self.draft + self.not_reached + self.todo

    @property
    def share_done(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass
class CampaignBoard:
    campaign: Campaign
    overall: Progress
    by_manager: list[tuple[str, Progress]] = field(default_factory=list)
    days_left: int = 0


def campaign_board(session: Session, *, actor: User, campaign_id: int) -> CampaignBoard:
    campaign = get_campaign(session, actor=actor, campaign_id=campaign_id)
    rows = session.execute(
        select(CampaignTarget.manager_id, CampaignTarget.status, func.count())
        .join(Enterprise, Enterprise.id == CampaignTarget.enterprise_id)
        .where(CampaignTarget.campaign_id == campaign.id, enterprise_scope(actor))
        .group_by(CampaignTarget.manager_id, CampaignTarget.status)
    ).all()
    names = dict(session.execute(select(User.id, User.display_name)).all()) if rows else {}
    overall = Progress()
    per: dict[str, Progress] = defaultdict(Progress)
    for manager_id, status, n in rows:
        for p in (overall, per[names.get(manager_id, "未分配") if manager_id else "未分配"]):
            setattr(p, status, getattr(p, status) + n)
    return CampaignBoard(
        campaign=campaign,
        overall=overall,
        by_manager=sorted(per.items()),
        days_left=(campaign.deadline - _now().date()).days,
    )


def campaign_targets(
    session: Session, *, actor: User, campaign_id: int, mine_only: bool = False
) -> list[tuple[CampaignTarget, Organisation]]:
    campaign = get_campaign(session, actor=actor, campaign_id=campaign_id)
    stmt = (
        select(CampaignTarget, Organisation)
        .join(Enterprise, Enterprise.id == CampaignTarget.enterprise_id)
        .join(Organisation, Organisation.id == Enterprise.id)
        .where(CampaignTarget.campaign_id == campaign.id, enterprise_scope(actor))
    )
    if mine_only:
        stmt = stmt.where(CampaignTarget.manager_id == actor.id)
    # To do first, then drafts and those to call again, done last: the caller's work order.
    order = {"todo": 0, "draft": 1, "not_reached": 2, "done": 3}
    rows = [(t, o) for t, o in session.execute(stmt.order_by(CampaignTarget.id))]
    return sorted(rows, key=lambda r: (order[r[0].status], r[0].id))


# -- response times ------------------------------------------------------------------------


@dataclass
class TimeRow:
    key: str
    needs: int = 0
    acknowledged: int = 0
    resolved: int = 0
    open: int = 0
    overdue: int = 0
    ack_hours: list[float] = field(default_factory=list)
    resolve_hours: list[float] = field(default_factory=list)

    @property
    def median_ack_h(self) -> float | None:
        return statistics.median(self.ack_hours) if self.ack_hours else None

    @property
    def median_resolve_h(self) -> float | None:
        return statistics.median(self.resolve_hours) if self.resolve_hours else None

    @property
    def p90_resolve_h(self) -> float | None:
        if len(self.resolve_hours) < 2:
            return self.resolve_hours[0] if self.resolve_hours else None
        return statistics.quantiles(self.resolve_hours, n=10)[-1]


def response_times(session: Session, *, actor: User, by: str) -> list[TimeRow]:
    """Time to acknowledge and to resolve, grouped by ``manager``, ``type`` or ``street``."""
    require_role(actor, "admin", "official", "manager", "auditor")
    if by not in ("manager", "type", "street"):
        raise NotFound("未知的分组方式")
    stmt = (
        select(Need, Enterprise.street, User.display_name)
        .outerjoin(Enterprise, Enterprise.id == Need.organisation_id)
        .outerjoin(User, User.id == Need.owner_id)
        .where(need_scope(actor))
    )
    now = _now()
    groups: dict[str, TimeRow] = {}
    for need, street, owner in session.execute(stmt):
        key = {
            "manager": owner or "未分配",
            "type": NEED_TYPES[need.need_type],
            "street": street or "（非企业/未填）",
        }[by]
        row = groups.setdefault(key, TimeRow(key))
        row.needs += 1
        if need.acknowledged_at is not None:
            row.acknowledged += 1
            row.ack_hours.append((need.acknowledged_at - need.created_at).total_seconds() / 3600)
        if need.status == "resolved" and need.closed_at is not None:
            row.resolved += 1
            row.resolve_hours.append((need.closed_at - need.created_at).total_seconds() / 3600)
        if need.status not in CLOSED:
            row.open += 1
        if need_overdue(need, now):
            row.overdue += 1
    return sorted(groups.values(), key=lambda r: (-r.overdue, r.key))


def meetings_for(
    session: Session, *, actor: User, organisation_id: int | None = None, limit: int = 100
) -> list[Meeting]:
    require_role(actor, *DESK_READERS)
    stmt = select(Meeting).where(org_scope(actor, Meeting.organisation_id))
    if organisation_id:
        stmt = stmt.where(Meeting.organisation_id == organisation_id)
    return list(
        session.scalars(stmt.order_by(Meeting.held_on.desc(), Meeting.id.desc()).limit(limit))
    )


def organisations_for_needs(session: Session, *, actor: User) -> list[Any]:
    """Non-enterprise organisations the actor may raise needs for (courts, schools, CDC)."""
    return list(
        session.execute(
            select(Organisation.id, Organisation.name)
            .where(Organisation.kind == "institution", org_scope(actor, Organisation.id))
            .order_by(Organisation.name)
        )
    )
