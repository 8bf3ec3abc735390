"""supplies_price_history: pre-epidemic prices and margin price caps

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 07:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fugong.db.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "supply_pre_epidemic_prices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("supplier_id", sa.Integer(), nullable=False),
        sa.Column("item_code", sa.String(length=30), nullable=False),
        sa.Column("unit_price", sa.Float(), nullable=False),
        sa.Column("invoice_no", sa.String(length=60), nullable=False),
        sa.Column("invoice_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("submitted_by_id", sa.Integer(), nullable=True),
        sa.Column("submitted_at", fugong.db.types.UTCDateTime(), nullable=False),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", fugong.db.types.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "unit_price >= 0", name=op.f("ck_supply_pre_epidemic_prices_unit_price_nonneg")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'refused')",
            name=op.f("ck_supply_pre_epidemic_prices_status"),
        ),
        sa.CheckConstraint(
            "status != 'refused' OR reason IS NOT NULL",
            name=op.f("ck_supply_pre_epidemic_prices_refused_has_reason"),
        ),
        sa.CheckConstraint(
            "status = 'pending' OR reviewed_by_id IS NOT NULL",
            name=op.f("ck_supply_pre_epidemic_prices_reviewed_has_reviewer"),
        ),
        sa.ForeignKeyConstraint(
            ["item_code"],
            ["supply_items.code"],
            name=op.f("fk_supply_pre_epidemic_prices_item_code_supply_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by_id"],
            ["users.id"],
            name=op.f("fk_supply_pre_epidemic_prices_reviewed_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["submitted_by_id"],
            ["users.id"],
            name=op.f("fk_supply_pre_epidemic_prices_submitted_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["supplier_id"],
            ["organisations.id"],
            name=op.f("fk_supply_pre_epidemic_prices_supplier_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supply_pre_epidemic_prices")),
        sa.UniqueConstraint(
            "supplier_id", "item_code", name=op.f("uq_supply_pre_epidemic_prices_supplier_id")
        ),
    )
    # Existing caps are all reference x factor: the new mode column says so.
    with op.batch_alter_table("supply_price_caps", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mode", sa.String(length=10), server_default="factor", nullable=False)
        )
        batch_op.add_column(sa.Column("margin", sa.Float(), nullable=True))
        batch_op.alter_column("factor", existing_type=sa.Float(), nullable=True)
        batch_op.create_check_constraint(
            op.f("ck_supply_price_caps_mode"), "mode IN ('factor', 'margin')"
        )
        batch_op.create_check_constraint(
            op.f("ck_supply_price_caps_margin_nonneg"), "margin IS NULL OR margin >= 0"
        )
        batch_op.create_check_constraint(
            op.f("ck_supply_price_caps_factor_mode_has_factor"),
            "mode != 'factor' OR factor IS NOT NULL",
        )
        batch_op.create_check_constraint(
            op.f("ck_supply_price_caps_margin_mode_has_margin"),
            "mode != 'margin' OR margin IS NOT NULL",
        )


def downgrade() -> None:
    # A margin cap without a fallback factor has no form in the older schema: it is dropped
    # (the audit log keeps what it was).
    op.execute("DELETE FROM supply_price_caps WHERE factor IS NULL")
    with op.batch_alter_table("supply_price_caps", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_supply_price_caps_margin_mode_has_margin"), type_="check")
        batch_op.drop_constraint(op.f("ck_supply_price_caps_factor_mode_has_factor"), type_="check")
        batch_op.drop_constraint(op.f("ck_supply_price_caps_margin_nonneg"), type_="check")
        batch_op.drop_constraint(op.f("ck_supply_price_caps_mode"), type_="check")
        batch_op.alter_column("factor", existing_type=sa.Float(), nullable=False)
        batch_op.drop_column("margin")
        batch_op.drop_column("mode")
    op.drop_table("supply_pre_epidemic_prices")
