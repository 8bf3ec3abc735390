"""Tables of the screening domain: sites, devices, readings (never an image), alarms and their
re-check workflow, the person of a confirmed case, device alerts and per-day statistics.

The daily statistics are counted at ingest into ``screening_daily``, so purging old non-alarm
readings (``fugong screening purge``) never changes a past day's figures."""

from __future__ import annotations

from datetime import date, datetime, time
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
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fugong.core.models import Organisation, User
from fugong.db import Base, UTCDateTime, utcnow
from fugong.screening.rules import (
    ALARM_RULES,
    ALARM_STATUSES,
    ALERT_KINDS,
    PHYSICAL_MAX_C,
    PHYSICAL_MIN_C,
    READING_KINDS,
    SITE_KINDS,
)


def _in(column: str, values: Any) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


_PHYSICAL = f"BETWEEN {PHYSICAL_MIN_C} AND {PHYSICAL_MAX_C}"


class ScreeningSite(Base):
    """An entrance with thermal cameras (a school gate, a factory gate, an office lobby)."""

    __tablename__ = "screening_sites"
    __table_args__ = (
        CheckConstraint(_in("kind", SITE_KINDS), name="kind"),
        CheckConstraint("threshold_c BETWEEN 35 AND 40", name="threshold_range"),
        CheckConstraint("baseline_window BETWEEN 10 AND 1000", name="baseline_window_range"),
        CheckConstraint("baseline_offset_c BETWEEN 0.2 AND 3", name="baseline_offset_range"),
        CheckConstraint("silence_minutes BETWEEN 1 AND 1440", name="silence_range"),
        CheckConstraint("drift_c BETWEEN 0.1 AND 5", name="drift_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))
    #: Copied from the organisation, so an official's district scope needs no join.
    district: Mapped[str | None] = mapped_column(String(20), index=True)
    opens_at: Mapped[time] = mapped_column(Time(), default=time(7, 0))
    closes_at: Mapped[time] = mapped_column(Time(), default=time(19, 0))
    threshold_c: Mapped[float] = mapped_column(Float, default=37.3)
    baseline: Mapped[bool] = mapped_column(Boolean, default=False)
    baseline_window: Mapped[int] = mapped_column(Integer, default=50)
    baseline_offset_c: Mapped[float] = mapped_column(Float, default=1.0)
    silence_minutes: Mapped[int] = mapped_column(Integer, default=30)
    drift_c: Mapped[float] = mapped_column(Float, default=0.5)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    organisation: Mapped[Organisation] = relationship(lazy="joined")
    devices: Mapped[list[ScreeningDevice]] = relationship(
        back_populates="site", order_by="ScreeningDevice.code"
    )


class ScreeningDevice(Base):
    """A camera. It authenticates with its own token (HTTP bearer, or MQTT password), stored
    only as a SHA-256 digest."""

    __tablename__ = "screening_devices"
    __table_args__ = (
        UniqueConstraint("site_id", "code", name="uq_screening_devices_site_code"),
        CheckConstraint("images_dropped >= 0", name="images_dropped_nonneg"),
        CheckConstraint("readings >= 0", name="readings_nonneg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(
        ForeignKey("screening_sites.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(12))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    readings: Mapped[int] = mapped_column(Integer, default=0)
    #: Image fields that arrived with readings and were dropped unseen.
    images_dropped: Mapped[int] = mapped_column(Integer, default=0)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    site: Mapped[ScreeningSite] = relationship(back_populates="devices")


class ScreeningReading(Base):
    """One camera reading. There is no image column, on purpose."""

    __tablename__ = "screening_readings"
    __table_args__ = (
        UniqueConstraint("device_id", "event_id", name="uq_screening_readings_device_event"),
        CheckConstraint(_in("kind", READING_KINDS), name="kind"),
        CheckConstraint(f"temperature_c {_PHYSICAL}", name="temperature_physical"),
        CheckConstraint(f"ambient_c IS NULL OR ambient_c {_PHYSICAL}", name="ambient_physical"),
        CheckConstraint("source IN ('mqtt', 'http', 'vendor', 'demo')", name="source"),
        Index("ix_screening_readings_site_measured", "site_id", "measured_at"),
        Index("ix_screening_readings_kind_measured", "kind", "measured_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("screening_sites.id", ondelete="CASCADE"))
    device_id: Mapped[int] = mapped_column(ForeignKey("screening_devices.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(64))
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    temperature_c: Mapped[float] = mapped_column(Float)
    ambient_c: Mapped[float | None] = mapped_column(Float)
    mask: Mapped[bool | None] = mapped_column(Boolean)
    kind: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(10))


class ScreeningAlarm(Base):
    """A fever alarm and its re-check workflow; every step keeps its time and its actor."""

    __tablename__ = "screening_alarms"
    __table_args__ = (
        CheckConstraint(_in("status", ALARM_STATUSES), name="status"),
        CheckConstraint(_in("rule", ALARM_RULES), name="rule"),
        CheckConstraint(
            "status = 'open' OR (recheck_c IS NOT NULL AND rechecked_at IS NOT NULL)",
            name="rechecked_has_value",
        ),
        CheckConstraint("recheck_c IS NULL OR recheck_c BETWEEN 30 AND 45", name="recheck_range"),
        CheckConstraint("outcome IS NULL OR outcome IN ('cleared', 'confirmed')", name="outcome"),
        CheckConstraint("status = 'open' OR outcome IS NOT NULL", name="decided_has_outcome"),
        CheckConstraint(
            "status NOT IN ('observation', 'referred') OR disposed_at IS NOT NULL",
            name="disposed_has_time",
        ),
        CheckConstraint("status != 'closed' OR closed_at IS NOT NULL", name="closed_has_time"),
        Index("ix_screening_alarms_site_raised", "site_id", "raised_at"),
        Index("ix_screening_alarms_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reading_id: Mapped[int | None] = mapped_column(
        ForeignKey("screening_readings.id", ondelete="SET NULL"), unique=True
    )
    site_id: Mapped[int] = mapped_column(ForeignKey("screening_sites.id", ondelete="CASCADE"))
    device_id: Mapped[int] = mapped_column(
        ForeignKey("screening_devices.id", ondelete="CASCADE"), index=True
    )
    temperature_c: Mapped[float] = mapped_column(Float)
    rule: Mapped[str] = mapped_column(String(10))
    limit_c: Mapped[float | None] = mapped_column(Float)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime())
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status: Mapped[str] = mapped_column(String(12), default="open")
    outcome: Mapped[str | None] = mapped_column(String(10))
    recheck_c: Mapped[float | None] = mapped_column(Float)
    rechecked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rechecked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    disposed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(String(500))

    site: Mapped[ScreeningSite] = relationship(lazy="joined")
    device: Mapped[ScreeningDevice] = relationship(lazy="joined")
    rechecked_by: Mapped[User | None] = relationship(foreign_keys=[rechecked_by_id])
    disposed_by: Mapped[User | None] = relationship(foreign_keys=[disposed_by_id])
    closed_by: Mapped[User | None] = relationship(foreign_keys=[closed_by_id])


class ScreeningCase(Base):
    """The person behind a confirmed alarm: the minimum to follow up. Personal data: only the
    site's own organisation and the CDC read it, and every read is audited."""

    __tablename__ = "screening_cases"
    __table_args__ = (
        CheckConstraint(
            "person_name IS NOT NULL OR person_no IS NOT NULL", name="has_name_or_number"
        ),
    )

    alarm_id: Mapped[int] = mapped_column(
        ForeignKey("screening_alarms.id", ondelete="CASCADE"), primary_key=True
    )
    person_name: Mapped[str | None] = mapped_column(String(50))
    person_no: Mapped[str | None] = mapped_column(String(30))
    unit: Mapped[str | None] = mapped_column(String(50))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DeviceAlert(Base):
    """A device health alert: silent while open, drifting from its peers, or faulty readings.
    At most one open alert per device and kind (a partial unique index)."""

    __tablename__ = "screening_device_alerts"
    __table_args__ = (
        CheckConstraint(_in("kind", ALERT_KINDS), name="kind"),
        CheckConstraint(
            "resolved_at IS NULL OR resolved_at >= raised_at", name="resolved_after_raised"
        ),
        Index(
            "uq_screening_device_alerts_open",
            "device_id",
            "kind",
            unique=True,
            sqlite_where=text("resolved_at IS NULL"),
            postgresql_where=text("resolved_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(
        ForeignKey("screening_sites.id", ondelete="CASCADE"), index=True
    )
    device_id: Mapped[int] = mapped_column(ForeignKey("screening_devices.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    detail: Mapped[str] = mapped_column(String(300))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    device: Mapped[ScreeningDevice] = relationship(lazy="joined")


class ScreeningDaily(Base):
    """Counts per site and local day, added to at ingest (an upsert per batch)."""

    __tablename__ = "screening_daily"
    __table_args__ = (
        CheckConstraint("screened >= 0 AND alarms >= 0 AND faults >= 0", name="counts_nonneg"),
    )

    site_id: Mapped[int] = mapped_column(
        ForeignKey("screening_sites.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    screened: Mapped[int] = mapped_column(Integer, default=0)
    alarms: Mapped[int] = mapped_column(Integer, default=0)
    faults: Mapped[int] = mapped_column(Integer, default=0)
