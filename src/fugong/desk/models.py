"""Desk tables: survey campaigns and their targets, needs with their status history,
meetings and visits, in-app notifications."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fugong.core.models import Organisation, User
from fugong.db import Base, JSONDoc, UTCDateTime, utcnow
from fugong.desk.rules import NEED_TYPES, STATUSES, URGENCIES


def _in(column: str, values: Any) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Campaign(Base):
    __tablename__ = "desk_campaigns"
    __table_args__ = (CheckConstraint("status IN ('open', 'closed')", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc)
    deadline: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="open")
    target_note: Mapped[str | None] = mapped_column(String(300))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    created_by: Mapped[User] = relationship()


class CampaignTarget(Base):
    """One enterprise to survey in a campaign, with its caller and answers."""

    __tablename__ = "desk_campaign_targets"
    __table_args__ = (
        UniqueConstraint("campaign_id", "enterprise_id", name="uq_desk_campaign_targets_pair"),
        CheckConstraint("status IN ('todo', 'draft', 'done', 'not_reached')", name="status"),
        CheckConstraint(
            "status != 'not_reached' OR not_reached_reason IS NOT NULL",
            name="not_reached_has_reason",
        ),
        Index("ix_desk_campaign_targets_campaign_manager", "campaign_id", "manager_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("desk_campaigns.id", ondelete="CASCADE"))
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(12), default="todo")
    answers: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    not_reached_reason: Mapped[str | None] = mapped_column(String(300))
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    campaign: Mapped[Campaign] = relationship()
    organisation: Mapped[Organisation] = relationship(
        primaryjoin="CampaignTarget.enterprise_id == Organisation.id",
        foreign_keys="CampaignTarget.enterprise_id",
        viewonly=True,
    )


class Need(Base):
    """A request for help, with an owner and due times from its urgency."""

    __tablename__ = "desk_needs"
    __table_args__ = (
        CheckConstraint(_in("need_type", NEED_TYPES), name="need_type"),
        CheckConstraint(_in("urgency", URGENCIES), name="urgency"),
        CheckConstraint(_in("status", STATUSES), name="status"),
        CheckConstraint(
            "status != 'cannot_help' OR close_reason IS NOT NULL", name="cannot_help_has_reason"
        ),
        CheckConstraint("resolve_due >= ack_due", name="due_order"),
        Index("ix_desk_needs_status_due", "status", "resolve_due"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    need_type: Mapped[str] = mapped_column(String(20))
    urgency: Mapped[str] = mapped_column(String(10))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="new")
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    source: Mapped[str] = mapped_column(String(20), default="call")
    campaign_target_id: Mapped[int | None] = mapped_column(
        ForeignKey("desk_campaign_targets.id", ondelete="SET NULL")
    )
    meeting_id: Mapped[int | None] = mapped_column(
        ForeignKey("desk_meetings.id", ondelete="SET NULL")
    )
    # Where the need went next (e.g. the supplies request it became), as "kind:id".
    linked_ref: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    ack_due: Mapped[datetime] = mapped_column(UTCDateTime())
    resolve_due: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    close_reason: Mapped[str | None] = mapped_column(String(500))

    organisation: Mapped[Organisation] = relationship()
    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])
    events: Mapped[list[NeedEvent]] = relationship(
        cascade="all, delete-orphan", order_by="NeedEvent.id"
    )


class NeedEvent(Base):
    __tablename__ = "desk_need_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(
        ForeignKey("desk_needs.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(String(500))

    by: Mapped[User | None] = relationship()


class Meeting(Base):
    """A government–enterprise docking meeting or a site visit."""

    __tablename__ = "desk_meetings"
    __table_args__ = (CheckConstraint("kind IN ('meeting', 'visit', 'call')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10))
    held_on: Mapped[date] = mapped_column(Date)
    participants: Mapped[str] = mapped_column(String(500))
    notes: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    organisation: Mapped[Organisation] = relationship()
    created_by: Mapped[User | None] = relationship()
