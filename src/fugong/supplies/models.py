"""Supplies tables: the catalogue, supplier vetting, price caps, the district's policy, offers,
requests, allocation rounds and orders. Every invariant the services rely on is also a CHECK
constraint (stock never negative, a reason wherever something is refused, cancelled or cleared).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fugong.core.models import Organisation, User
from fugong.db import Base, JSONDoc, UTCDateTime, utcnow
from fugong.supplies.rules import (
    CAP_MODES,
    OFFER_STATUSES,
    ORDER_STATUSES,
    REQUEST_STATUSES,
    ROUND_STATUSES,
    VETTING_STATUSES,
)


def _in(column: str, values: Any) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class SupplyItem(Base):
    """A catalogue item; the migration seeds the catalogue of 2020."""

    __tablename__ = "supply_items"
    __table_args__ = (CheckConstraint("reference_price >= 0", name="reference_price_nonneg"),)

    code: Mapped[str] = mapped_column(String(30), primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    unit: Mapped[str] = mapped_column(String(10))
    reference_price: Mapped[float] = mapped_column(Float)
    needs_registration: Mapped[bool] = mapped_column(Boolean, default=False)


class SupplierVetting(Base):
    """A supplier organisation's registration documents and the official's decision."""

    __tablename__ = "supplier_vettings"
    __table_args__ = (
        CheckConstraint(_in("status", VETTING_STATUSES), name="status"),
        CheckConstraint("status != 'refused' OR reason IS NOT NULL", name="refused_has_reason"),
        CheckConstraint(
            "status = 'pending' OR reviewed_by_id IS NOT NULL", name="reviewed_has_reviewer"
        ),
    )

    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(10), default="pending")
    # [{"type": "licence" | "medical_device", "name": ..., "number": ...}]
    documents: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(String(500))

    organisation: Mapped[Organisation] = relationship()


class PriceCap(Base):
    """The market regulator's cap for one item, in one of two modes:

    - ``factor``: reference price x ``factor``;
    - ``margin``: the supplier's reviewed pre-epidemic price x (1 + ``margin``). An offer whose
      supplier has no approved pre-epidemic price for the item falls back to reference x
      ``factor`` when a factor is set, and is otherwise flagged for an official to look at.
    """

    __tablename__ = "supply_price_caps"
    __table_args__ = (
        CheckConstraint("factor >= 1", name="factor_at_least_one"),
        CheckConstraint(_in("mode", CAP_MODES), name="mode"),
        CheckConstraint("margin IS NULL OR margin >= 0", name="margin_nonneg"),
        CheckConstraint("mode != 'factor' OR factor IS NOT NULL", name="factor_mode_has_factor"),
        CheckConstraint("mode != 'margin' OR margin IS NOT NULL", name="margin_mode_has_margin"),
    )

    item_code: Mapped[str] = mapped_column(
        ForeignKey("supply_items.code", ondelete="CASCADE"), primary_key=True
    )
    mode: Mapped[str] = mapped_column(String(10), default="factor", server_default="factor")
    factor: Mapped[float | None] = mapped_column(Float)
    margin: Mapped[float | None] = mapped_column(Float)
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PreEpidemicPrice(Base):
    """A supplier's pre-epidemic unit price for one item, with its evidence (a dated invoice),
    reviewed by an official like the vetting documents. Only an approved price feeds a margin
    cap. One row per supplier and item: a new submission replaces the old one and goes back to
    review (the audit log keeps every earlier value)."""

    __tablename__ = "supply_pre_epidemic_prices"
    __table_args__ = (
        UniqueConstraint("supplier_id", "item_code"),
        CheckConstraint("unit_price >= 0", name="unit_price_nonneg"),
        CheckConstraint(_in("status", VETTING_STATUSES), name="status"),
        CheckConstraint("status != 'refused' OR reason IS NOT NULL", name="refused_has_reason"),
        CheckConstraint(
            "status = 'pending' OR reviewed_by_id IS NOT NULL", name="reviewed_has_reviewer"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    item_code: Mapped[str] = mapped_column(ForeignKey("supply_items.code", ondelete="CASCADE"))
    unit_price: Mapped[float] = mapped_column(Float)
    invoice_no: Mapped[str] = mapped_column(String(60))
    invoice_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    reason: Mapped[str | None] = mapped_column(String(500))
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    supplier: Mapped[Organisation] = relationship()
    item: Mapped[SupplyItem] = relationship(lazy="joined")


class SupplyPolicy(Base):
    """The district's tiering, need-cap and frequency policy (see ``rules.Policy``), one row
    per version; the newest applies, the older ones say what applied when."""

    __tablename__ = "supply_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    rules: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Offer(Base):
    __tablename__ = "supply_offers"
    __table_args__ = (
        CheckConstraint(_in("status", OFFER_STATUSES), name="status"),
        CheckConstraint("stock >= 0", name="stock_nonneg"),
        CheckConstraint("daily_capacity >= 0", name="daily_capacity_nonneg"),
        CheckConstraint("unit_price >= 0", name="unit_price_nonneg"),
        CheckConstraint("lead_time_days >= 0", name="lead_time_nonneg"),
        CheckConstraint("status != 'flagged' OR flag_reason IS NOT NULL", name="flag_has_reason"),
        CheckConstraint(
            "cleared_by_id IS NULL OR clear_reason IS NOT NULL", name="clear_has_reason"
        ),
        Index("ix_supply_offers_item_status", "item_code", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    supplier_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    item_code: Mapped[str] = mapped_column(ForeignKey("supply_items.code"))
    stock: Mapped[int] = mapped_column(Integer)
    daily_capacity: Mapped[int] = mapped_column(Integer, default=0)
    unit_price: Mapped[float] = mapped_column(Float)
    lead_time_days: Mapped[int] = mapped_column(Integer, default=1)
    districts: Mapped[list[str]] = mapped_column(JSONDoc)
    status: Mapped[str] = mapped_column(String(10), default="active")
    flag_reason: Mapped[str | None] = mapped_column(String(300))
    cleared_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    clear_reason: Mapped[str | None] = mapped_column(String(300))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    supplier: Mapped[Organisation] = relationship()
    item: Mapped[SupplyItem] = relationship(lazy="joined")


class SupplyRequest(Base):
    """An enterprise's request for one item. ``approved_qty`` (after the need cap) is kept apart
    from ``requested_qty``; ``allocated_qty`` sums its live orders, and what is approved but not
    allocated carries forward to the next round."""

    __tablename__ = "supply_requests"
    __table_args__ = (
        CheckConstraint(_in("status", REQUEST_STATUSES), name="status"),
        CheckConstraint("requested_qty > 0", name="requested_positive"),
        CheckConstraint(
            "approved_qty >= 0 AND approved_qty <= requested_qty", name="approved_range"
        ),
        CheckConstraint(
            "allocated_qty >= 0 AND allocated_qty <= approved_qty", name="allocated_range"
        ),
        CheckConstraint("carried_forward >= 0", name="carried_nonneg"),
        CheckConstraint("tier >= 1", name="tier_positive"),
        CheckConstraint("cap IS NULL OR cap >= 0", name="cap_nonneg"),
        CheckConstraint(
            "max_unit_price IS NULL OR max_unit_price >= 0", name="max_unit_price_nonneg"
        ),
        CheckConstraint(
            "status != 'withdrawn' OR withdrawn_at IS NOT NULL", name="withdrawn_has_time"
        ),
        Index("ix_supply_requests_item_status", "item_code", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    item_code: Mapped[str] = mapped_column(ForeignKey("supply_items.code"))
    district: Mapped[str] = mapped_column(String(20))
    requested_qty: Mapped[int] = mapped_column(Integer)
    approved_qty: Mapped[int] = mapped_column(Integer)
    allocated_qty: Mapped[int] = mapped_column(Integer, default=0)
    carried_forward: Mapped[int] = mapped_column(Integer, default=0)
    needed_by: Mapped[date] = mapped_column(Date)
    purpose: Mapped[str] = mapped_column(String(500))
    max_unit_price: Mapped[float | None] = mapped_column(Float)
    tier: Mapped[int] = mapped_column(Integer)
    cap: Mapped[int | None] = mapped_column(Integer)
    explanation: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="open")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    allocated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    enterprise: Mapped[Organisation] = relationship()
    item: Mapped[SupplyItem] = relationship(lazy="joined")

    @property
    def remaining(self) -> int:
        return self.approved_qty - self.allocated_qty


class AllocationRound(Base):
    """A round: the problem and the plan are stored, so it can be reproduced and exported."""

    __tablename__ = "supply_rounds"
    __table_args__ = (
        CheckConstraint(_in("status", ROUND_STATUSES), name="status"),
        CheckConstraint(
            "status != 'committed' OR committed_at IS NOT NULL", name="committed_has_time"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    district: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10), default="draft")
    problem: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    plan: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    committed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    committed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])


class SupplyOrder(Base):
    """An order: from a round (with its request) or a direct purchase (request optional)."""

    __tablename__ = "supply_orders"
    __table_args__ = (
        CheckConstraint(_in("status", ORDER_STATUSES), name="status"),
        CheckConstraint("kind IN ('round', 'direct')", name="kind"),
        CheckConstraint("kind != 'round' OR round_id IS NOT NULL", name="round_has_round"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_nonneg"),
        CheckConstraint(
            "status != 'cancelled' OR cancel_reason IS NOT NULL", name="cancelled_has_reason"
        ),
        CheckConstraint(
            "status NOT IN ('shipped', 'delivered') OR tracking_no IS NOT NULL",
            name="shipped_has_tracking",
        ),
        Index("ix_supply_orders_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    round_id: Mapped[int | None] = mapped_column(
        ForeignKey("supply_rounds.id", ondelete="SET NULL"), index=True
    )
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("supply_requests.id", ondelete="SET NULL"), index=True
    )
    offer_id: Mapped[int] = mapped_column(ForeignKey("supply_offers.id"), index=True)
    # Denormalised from the offer and the request, so scoping reads this table alone.
    supplier_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    item_code: Mapped[str] = mapped_column(ForeignKey("supply_items.code"))
    district: Mapped[str] = mapped_column(String(20))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(10), default="allocated")
    tracking_no: Mapped[str | None] = mapped_column(String(60))
    cancel_reason: Mapped[str | None] = mapped_column(String(300))
    idempotency_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    offer: Mapped[Offer] = relationship()
    request: Mapped[SupplyRequest | None] = relationship()
    supplier: Mapped[Organisation] = relationship(foreign_keys=[supplier_id])
    enterprise: Mapped[Organisation] = relationship(foreign_keys=[enterprise_id])
    item: Mapped[SupplyItem] = relationship(lazy="joined")
