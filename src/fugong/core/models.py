"""Core tables: organisations and their enterprise facts, users, roles, API tokens, the login
throttle and the audit log. Business invariants are CHECK constraints, so a bug in a service
cannot store an impossible row."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fugong.core.reference import (
    INDUSTRIES,
    INSTITUTION_TYPES,
    KEY_CATEGORIES,
    ORG_KINDS,
    RESUMPTION_STATUSES,
    ROLES,
    SIZES,
)
from fugong.db import Base, JSONDoc, TimestampMixin, UTCDateTime, utcnow


def _in(column: str, values: Any) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Organisation(TimestampMixin, Base):
    __tablename__ = "organisations"
    __table_args__ = (
        CheckConstraint(_in("kind", ORG_KINDS), name="kind"),
        # Every institution says which kind it is (court, CDC, school...); nothing else has one.
        CheckConstraint(
            "(kind = 'institution' AND institution_type IS NOT NULL AND "
            f"{_in('institution_type', INSTITUTION_TYPES)}) "
            "OR (kind != 'institution' AND institution_type IS NULL)",
            name="institution_type",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    institution_type: Mapped[str | None] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200), index=True)
    uscc: Mapped[str | None] = mapped_column(String(18), unique=True)
    district: Mapped[str | None] = mapped_column(String(20), index=True)
    street: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(300))

    enterprise: Mapped[Enterprise | None] = relationship(
        back_populates="organisation", uselist=False
    )
    contacts: Mapped[list[Contact]] = relationship(
        back_populates="organisation", cascade="all, delete-orphan", order_by="Contact.id"
    )


class Enterprise(Base):
    """The facts the platform keeps about an enterprise (1:1 with its organisation)."""

    __tablename__ = "enterprises"
    __table_args__ = (
        CheckConstraint(_in("industry", INDUSTRIES), name="industry"),
        CheckConstraint(_in("size", SIZES), name="size"),
        CheckConstraint(
            f"key_category IS NULL OR {_in('key_category', KEY_CATEGORIES)}", name="key_category"
        ),
        CheckConstraint(_in("resumption_status", RESUMPTION_STATUSES), name="resumption_status"),
        CheckConstraint("headcount >= 0", name="headcount_nonneg"),
        CheckConstraint("insured_employees >= 0", name="insured_nonneg"),
        CheckConstraint(
            "staff_back_pct IS NULL OR (staff_back_pct >= 0 AND staff_back_pct <= 100)",
            name="staff_back_pct_range",
        ),
        # An approval carries its date; a partial resumption its share of staff back.
        CheckConstraint(
            "resumption_status != 'approved' OR resumption_date IS NOT NULL",
            name="approved_has_date",
        ),
        CheckConstraint(
            "resumption_status != 'partial' OR staff_back_pct IS NOT NULL", name="partial_has_share"
        ),
        Index("ix_enterprises_status_street", "resumption_status", "street"),
        # An official's list is scoped to a district: each filter led by the district makes
        # the page's count an index-only search (0.8 ms -> under 0.2 ms over 20,000 rows).
        Index("ix_enterprises_district_status", "district", "resumption_status"),
        Index("ix_enterprises_district_street", "district", "street", "resumption_status"),
        Index("ix_enterprises_district_industry", "district", "industry", "size"),
        Index("ix_enterprises_district_key", "district", "key_category"),
        Index("ix_enterprises_district_manager", "district", "manager_id"),
    )

    id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    # Denormalised from the organisation so that list filters, scoping and counts touch one
    # table and its indexes (bench/web.py: the join made the 20,000-row list 4x slower).
    district: Mapped[str] = mapped_column(String(20), index=True)
    street: Mapped[str | None] = mapped_column(String(40), index=True)
    industry: Mapped[str] = mapped_column(String(30), index=True)
    size: Mapped[str] = mapped_column(String(10), index=True)
    key_category: Mapped[str | None] = mapped_column(String(20), index=True)
    headcount: Mapped[int] = mapped_column(Integer, default=0)
    insured_employees: Mapped[int] = mapped_column(Integer, default=0)
    resumption_status: Mapped[str] = mapped_column(String(20), default="not_resumed", index=True)
    resumption_date: Mapped[date | None] = mapped_column(Date)
    staff_back_pct: Mapped[int | None] = mapped_column(Integer)
    manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )

    organisation: Mapped[Organisation] = relationship(back_populates="enterprise")
    manager: Mapped[User | None] = relationship(foreign_keys=[manager_id])
    history: Mapped[list[ResumptionEvent]] = relationship(
        back_populates="enterprise",
        cascade="all, delete-orphan",
        order_by="ResumptionEvent.recorded_at.desc()",
    )


class ResumptionEvent(Base):
    """One dated change of an enterprise's resumption status: the history the desk reads."""

    __tablename__ = "resumption_events"
    __table_args__ = (
        CheckConstraint(_in("status", RESUMPTION_STATUSES), name="status"),
        CheckConstraint(
            "staff_back_pct IS NULL OR (staff_back_pct >= 0 AND staff_back_pct <= 100)",
            name="staff_back_pct_range",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(20))
    effective_date: Mapped[date | None] = mapped_column(Date)
    staff_back_pct: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(500))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    enterprise: Mapped[Enterprise] = relationship(back_populates="history")
    recorded_by: Mapped[User | None] = relationship(lazy="joined")


class Contact(Base):
    """A person to call at an organisation. Personal data: reads are audited."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str | None] = mapped_column(String(30))
    title: Mapped[str | None] = mapped_column(String(50))

    organisation: Mapped[Organisation] = relationship(back_populates="contacts")


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(50), unique=True)
    display_name: Mapped[str] = mapped_column(String(50))
    password_hash: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped on password change: every session cookie signed with an older epoch stops working.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    organisation: Mapped[Organisation] = relationship(lazy="joined")
    role_rows: Mapped[list[UserRole]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(r.role for r in self.role_rows)

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


class UserRole(Base):
    __tablename__ = "user_roles"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(20), primary_key=True)


class ApiToken(Base):
    """A machine client's bearer token. Only a SHA-256 of the token is stored: tokens are
    256-bit random, so a fast hash is enough and lookups stay O(1)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(lazy="joined")


class LoginThrottle(Base):
    """Failed-login counters per key (an account name or a client address)."""

    __tablename__ = "login_throttle"
    __table_args__ = (CheckConstraint("failures >= 0", name="failures_nonneg"),)

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    first_failure_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditLog(Base):
    """Who did what to which record, when, with the state before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_target", "target_type", "target_id"),
        Index("ix_audit_log_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    actor_label: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(60), index=True)
    target_type: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(60))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    detail: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(String(45))


class Notification(Base):
    """An in-app message to a user; the outbound channel (SMS / e-mail) gets a copy after
    the transaction commits (``core.notify``)."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(String(300))
    link: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
