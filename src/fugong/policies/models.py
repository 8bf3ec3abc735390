"""Policy tables: the facts each enterprise keeps per period (every edit a new version), the
parameter values officials add for later periods, claims with their review and payout, and the
documents uploaded with a claim. Invariants the services rely on are CHECK constraints: a
decision always has a reason, a reviewer and the explanation it was based on; a payout always
has its amount, date and reference; an upload is one of the allowed types and at most 10 MB."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fugong.core.models import Organisation, User
from fugong.db import Base, JSONDoc, UTCDateTime, utcnow

CLAIM_STATUSES: dict[str, str] = {
    "applied": "已申请，待审核",
    "approved": "已核准",
    "adjusted": "已核准（金额调整）",
    "rejected": "不予支持",
    "paid": "已拨付",
}
DECIDED = ("approved", "adjusted", "rejected", "paid")
SIZE_CLASSES = ("large", "medium", "small", "micro", "default")
#: What an upload may be, by content type; the services check the magic bytes, not the name.
DOCUMENT_TYPES: dict[str, str] = {
    "application/pdf": "pdf",
    "image/jpeg": "jpg",
    "image/png": "png",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024


def _in(column: str, values: Any) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class EnterpriseFacts(Base):
    """One version of an enterprise's policy facts for a period (e.g. "2020").

    Never updated in place: an edit adds version n+1, so what a claim was decided on can always
    be read back. ``facts`` holds the pack's fact columns (typed per facts.yaml; absent or null
    means unknown)."""

    __tablename__ = "policy_facts"
    __table_args__ = (
        UniqueConstraint("enterprise_id", "period", "version", name="uq_policy_facts_version"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_policy_facts_period_enterprise", "period", "enterprise_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(10))
    version: Mapped[int] = mapped_column(Integer)
    pack: Mapped[str] = mapped_column(String(60))
    facts: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    entered_by: Mapped[User | None] = relationship()


class ParameterValue(Base):
    """A dated parameter value an official adds (e.g. next year's UI-refund ratio).

    Merged into the pack's parameters when evaluating, so no code or YAML changes; a value on
    the same date as a pack value replaces it. ``size_class`` is set only for parameters the
    pack splits by enterprise size (``default`` covers the sizes not given)."""

    __tablename__ = "policy_parameter_values"
    __table_args__ = (
        CheckConstraint(
            f"size_class IS NULL OR {_in('size_class', SIZE_CLASSES)}", name="size_class"
        ),
        CheckConstraint("value >= 0", name="value_nonneg"),
        Index("ix_policy_parameter_values_lookup", "pack", "parameter", "valid_from"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pack: Mapped[str] = mapped_column(String(60))
    parameter: Mapped[str] = mapped_column(String(80))
    valid_from: Mapped[date] = mapped_column(Date)
    value: Mapped[float] = mapped_column(Float)
    size_class: Mapped[str | None] = mapped_column(String(10))
    source_text: Mapped[str] = mapped_column(String(500))
    stand_in: Mapped[bool] = mapped_column(Boolean, default=False)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    added_by: Mapped[User | None] = relationship()


class Claim(Base):
    """An enterprise's claim of one measure for one period, its review and its payout.

    Money is integer fen (exact on both databases). ``explanation`` is the engine's explanation
    when applying; ``decision_explanation`` and ``decision_pack`` what the reviewer decided on."""

    __tablename__ = "policy_claims"
    __table_args__ = (
        UniqueConstraint("enterprise_id", "measure", "period", name="uq_policy_claims_once"),
        CheckConstraint(_in("status", CLAIM_STATUSES), name="status"),
        CheckConstraint("requested_cents >= 0", name="requested_nonneg"),
        CheckConstraint("approved_cents IS NULL OR approved_cents >= 0", name="approved_nonneg"),
        CheckConstraint("payout_cents IS NULL OR payout_cents >= 0", name="payout_nonneg"),
        CheckConstraint(
            "status = 'applied' OR (reason IS NOT NULL AND reviewed_by_id IS NOT NULL "
            "AND reviewed_at IS NOT NULL AND decision_explanation IS NOT NULL "
            "AND decision_pack IS NOT NULL)",
            name="decision_complete",
        ),
        CheckConstraint(
            "status NOT IN ('approved', 'adjusted', 'paid') OR approved_cents IS NOT NULL",
            name="approved_has_amount",
        ),
        CheckConstraint(
            "status != 'paid' OR (payout_cents IS NOT NULL AND payout_date IS NOT NULL "
            "AND payout_reference IS NOT NULL)",
            name="paid_has_payout",
        ),
        Index("ix_policy_claims_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprises.id", ondelete="CASCADE"), index=True
    )
    pack: Mapped[str] = mapped_column(String(60))
    measure: Mapped[str] = mapped_column(String(60))
    period: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="applied")
    requested_cents: Mapped[int] = mapped_column(BigInteger)
    stand_in: Mapped[bool] = mapped_column(Boolean, default=False)
    applied_pack: Mapped[str] = mapped_column(String(80))
    explanation: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    facts_version: Mapped[int | None] = mapped_column(Integer)
    applied_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    approved_cents: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(1000))
    decision_pack: Mapped[str | None] = mapped_column(String(80))
    decision_explanation: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    payout_cents: Mapped[int | None] = mapped_column(BigInteger)
    payout_date: Mapped[date | None] = mapped_column(Date)
    payout_reference: Mapped[str | None] = mapped_column(String(100))
    paid_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    organisation: Mapped[Organisation] = relationship(
        primaryjoin="Claim.enterprise_id == Organisation.id",
        foreign_keys="Claim.enterprise_id",
        viewonly=True,
    )
    applied_by: Mapped[User | None] = relationship(foreign_keys=[applied_by_id])
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])
    documents: Mapped[list[ClaimDocument]] = relationship(
        back_populates="claim", cascade="all, delete-orphan", order_by="ClaimDocument.id"
    )


class ClaimDocument(Base):
    """A file uploaded with a claim. The bytes live under ``data_dir/uploads`` (outside the web
    root) under a random name; only the services read them back, and each read is audited."""

    __tablename__ = "policy_claim_documents"
    __table_args__ = (
        CheckConstraint(_in("content_type", DOCUMENT_TYPES), name="content_type"),
        CheckConstraint(f"size > 0 AND size <= {MAX_DOCUMENT_BYTES}", name="size_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(
        ForeignKey("policy_claims.id", ondelete="CASCADE"), index=True
    )
    doc_type: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(80), unique=True)
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    claim: Mapped[Claim] = relationship(back_populates="documents")
