"""screening

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 07:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fugong.db.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "screening_sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("district", sa.String(length=20), nullable=True),
        sa.Column("opens_at", sa.Time(), nullable=False),
        sa.Column("closes_at", sa.Time(), nullable=False),
        sa.Column("threshold_c", sa.Float(), nullable=False),
        sa.Column("baseline", sa.Boolean(), nullable=False),
        sa.Column("baseline_window", sa.Integer(), nullable=False),
        sa.Column("baseline_offset_c", sa.Float(), nullable=False),
        sa.Column("silence_minutes", sa.Integer(), nullable=False),
        sa.Column("drift_c", sa.Float(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", fugong.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('school', 'factory', 'office', 'other')", name=op.f("ck_screening_sites_kind")
        ),
        sa.CheckConstraint(
            "baseline_offset_c BETWEEN 0.2 AND 3",
            name=op.f("ck_screening_sites_baseline_offset_range"),
        ),
        sa.CheckConstraint(
            "baseline_window BETWEEN 10 AND 1000",
            name=op.f("ck_screening_sites_baseline_window_range"),
        ),
        sa.CheckConstraint(
            "drift_c BETWEEN 0.1 AND 5", name=op.f("ck_screening_sites_drift_range")
        ),
        sa.CheckConstraint(
            "silence_minutes BETWEEN 1 AND 1440", name=op.f("ck_screening_sites_silence_range")
        ),
        sa.CheckConstraint(
            "threshold_c BETWEEN 35 AND 40", name=op.f("ck_screening_sites_threshold_range")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_screening_sites_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_screening_sites_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening_sites")),
        sa.UniqueConstraint("code", name=op.f("uq_screening_sites_code")),
    )
    op.create_index(
        op.f("ix_screening_sites_district"), "screening_sites", ["district"], unique=False
    )
    op.create_index(
        op.f("ix_screening_sites_organisation_id"),
        "screening_sites",
        ["organisation_id"],
        unique=False,
    )
    op.create_table(
        "screening_daily",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("screened", sa.Integer(), nullable=False),
        sa.Column("alarms", sa.Integer(), nullable=False),
        sa.Column("faults", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "screened >= 0 AND alarms >= 0 AND faults >= 0",
            name=op.f("ck_screening_daily_counts_nonneg"),
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["screening_sites.id"],
            name=op.f("fk_screening_daily_site_id_screening_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("site_id", "day", name=op.f("pk_screening_daily")),
    )
    op.create_table(
        "screening_devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_prefix", sa.String(length=12), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("readings", sa.Integer(), nullable=False),
        sa.Column("images_dropped", sa.Integer(), nullable=False),
        sa.Column("last_seen_at", fugong.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", fugong.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "images_dropped >= 0", name=op.f("ck_screening_devices_images_dropped_nonneg")
        ),
        sa.CheckConstraint("readings >= 0", name=op.f("ck_screening_devices_readings_nonneg")),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["screening_sites.id"],
            name=op.f("fk_screening_devices_site_id_screening_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening_devices")),
        sa.UniqueConstraint("site_id", "code", name="uq_screening_devices_site_code"),
        sa.UniqueConstraint("token_hash", name=op.f("uq_screening_devices_token_hash")),
    )
    op.create_index(
        op.f("ix_screening_devices_site_id"), "screening_devices", ["site_id"], unique=False
    )
    op.create_table(
        "screening_device_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("detail", sa.String(length=300), nullable=False),
        sa.Column("raised_at", fugong.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", fugong.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('silent', 'drift', 'fault')", name=op.f("ck_screening_device_alerts_kind")
        ),
        sa.CheckConstraint(
            "resolved_at IS NULL OR resolved_at >= raised_at",
            name=op.f("ck_screening_device_alerts_resolved_after_raised"),
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["screening_devices.id"],
            name=op.f("fk_screening_device_alerts_device_id_screening_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["screening_sites.id"],
            name=op.f("fk_screening_device_alerts_site_id_screening_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening_device_alerts")),
    )
    op.create_index(
        op.f("ix_screening_device_alerts_site_id"),
        "screening_device_alerts",
        ["site_id"],
        unique=False,
    )
    op.create_index(
        "uq_screening_device_alerts_open",
        "screening_device_alerts",
        ["device_id", "kind"],
        unique=True,
        sqlite_where=sa.text("resolved_at IS NULL"),
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.create_table(
        "screening_readings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("measured_at", fugong.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", fugong.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("temperature_c", sa.Float(), nullable=False),
        sa.Column("ambient_c", sa.Float(), nullable=True),
        sa.Column("mask", sa.Boolean(), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.CheckConstraint(
            "kind IN ('normal', 'alarm', 'fault')", name=op.f("ck_screening_readings_kind")
        ),
        sa.CheckConstraint(
            "source IN ('mqtt', 'http', 'vendor', 'demo')",
            name=op.f("ck_screening_readings_source"),
        ),
        sa.CheckConstraint(
            "ambient_c IS NULL OR ambient_c BETWEEN -60.0 AND 150.0",
            name=op.f("ck_screening_readings_ambient_physical"),
        ),
        sa.CheckConstraint(
            "temperature_c BETWEEN -60.0 AND 150.0",
            name=op.f("ck_screening_readings_temperature_physical"),
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["screening_devices.id"],
            name=op.f("fk_screening_readings_device_id_screening_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["screening_sites.id"],
            name=op.f("fk_screening_readings_site_id_screening_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening_readings")),
        sa.UniqueConstraint("device_id", "event_id", name="uq_screening_readings_device_event"),
    )
    op.create_index(
        "ix_screening_readings_kind_measured",
        "screening_readings",
        ["kind", "measured_at"],
        unique=False,
    )
    op.create_index(
        "ix_screening_readings_site_measured",
        "screening_readings",
        ["site_id", "measured_at"],
        unique=False,
    )
    op.create_table(
        "screening_alarms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reading_id", sa.Integer(), nullable=True),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("temperature_c", sa.Float(), nullable=False),
        sa.Column("rule", sa.String(length=10), nullable=False),
        sa.Column("limit_c", sa.Float(), nullable=True),
        sa.Column("measured_at", fugong.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("raised_at", fugong.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=True),
        sa.Column("recheck_c", sa.Float(), nullable=True),
        sa.Column("rechecked_at", fugong.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rechecked_by_id", sa.Integer(), nullable=True),
        sa.Column("disposed_at", fugong.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("disposed_by_id", sa.Integer(), nullable=True),
        sa.Column("closed_at", fugong.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_by_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('cleared', 'confirmed')",
            name=op.f("ck_screening_alarms_outcome"),
        ),
        sa.CheckConstraint(
            "rule IN ('threshold', 'baseline', 'device')", name=op.f("ck_screening_alarms_rule")
        ),
        sa.CheckConstraint(
            "status != 'closed' OR closed_at IS NOT NULL",
            name=op.f("ck_screening_alarms_closed_has_time"),
        ),
        sa.CheckConstraint(
            "status = 'open' OR (recheck_c IS NOT NULL AND rechecked_at IS NOT NULL)",
            name=op.f("ck_screening_alarms_rechecked_has_value"),
        ),
        sa.CheckConstraint(
            "status = 'open' OR outcome IS NOT NULL",
            name=op.f("ck_screening_alarms_decided_has_outcome"),
        ),
        sa.CheckConstraint(
            "status IN ('open', 'cleared', 'confirmed', 'observation', 'referred', 'closed')",
            name=op.f("ck_screening_alarms_status"),
        ),
        sa.CheckConstraint(
            "status NOT IN ('observation', 'referred') OR disposed_at IS NOT NULL",
            name=op.f("ck_screening_alarms_disposed_has_time"),
        ),
        sa.CheckConstraint(
            "recheck_c IS NULL OR recheck_c BETWEEN 30 AND 45",
            name=op.f("ck_screening_alarms_recheck_range"),
        ),
        sa.ForeignKeyConstraint(
            ["closed_by_id"],
            ["users.id"],
            name=op.f("fk_screening_alarms_closed_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["screening_devices.id"],
            name=op.f("fk_screening_alarms_device_id_screening_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["disposed_by_id"],
            ["users.id"],
            name=op.f("fk_screening_alarms_disposed_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["reading_id"],
            ["screening_readings.id"],
            name=op.f("fk_screening_alarms_reading_id_screening_readings"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["rechecked_by_id"],
            ["users.id"],
            name=op.f("fk_screening_alarms_rechecked_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["screening_sites.id"],
            name=op.f("fk_screening_alarms_site_id_screening_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening_alarms")),
        sa.UniqueConstraint("reading_id", name=op.f("uq_screening_alarms_reading_id")),
    )
    op.create_index(
        op.f("ix_screening_alarms_device_id"), "screening_alarms", ["device_id"], unique=False
    )
    op.create_index(
        "ix_screening_alarms_site_raised",
        "screening_alarms",
        ["site_id", "raised_at"],
        unique=False,
    )
    op.create_index("ix_screening_alarms_status", "screening_alarms", ["status"], unique=False)
    op.create_table(
        "screening_cases",
        sa.Column("alarm_id", sa.Integer(), nullable=False),
        sa.Column("person_name", sa.String(length=50), nullable=True),
        sa.Column("person_no", sa.String(length=30), nullable=True),
        sa.Column("unit", sa.String(length=50), nullable=True),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", fugong.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "person_name IS NOT NULL OR person_no IS NOT NULL",
            name=op.f("ck_screening_cases_has_name_or_number"),
        ),
        sa.ForeignKeyConstraint(
            ["alarm_id"],
            ["screening_alarms.id"],
            name=op.f("fk_screening_cases_alarm_id_screening_alarms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["users.id"],
            name=op.f("fk_screening_cases_recorded_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("alarm_id", name=op.f("pk_screening_cases")),
    )


def downgrade() -> None:
    op.drop_table("screening_cases")
    op.drop_index("ix_screening_alarms_status", table_name="screening_alarms")
    op.drop_index("ix_screening_alarms_site_raised", table_name="screening_alarms")
    op.drop_index(op.f("ix_screening_alarms_device_id"), table_name="screening_alarms")
    op.drop_table("screening_alarms")
    op.drop_index("ix_screening_readings_site_measured", table_name="screening_readings")
    op.drop_index("ix_screening_readings_kind_measured", table_name="screening_readings")
    op.drop_table("screening_readings")
    op.drop_index(
        "uq_screening_device_alerts_open",
        table_name="screening_device_alerts",
        sqlite_where=sa.text("resolved_at IS NULL"),
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.drop_index(op.f("ix_screening_device_alerts_site_id"), table_name="screening_device_alerts")
    op.drop_table("screening_device_alerts")
    op.drop_index(op.f("ix_screening_devices_site_id"), table_name="screening_devices")
    op.drop_table("screening_devices")
    op.drop_table("screening_daily")
    op.drop_index(op.f("ix_screening_sites_organisation_id"), table_name="screening_sites")
    op.drop_index(op.f("ix_screening_sites_district"), table_name="screening_sites")
    op.drop_table("screening_sites")
