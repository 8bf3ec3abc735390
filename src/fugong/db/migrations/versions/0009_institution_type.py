"""institution_type: what kind of public institution an organisation is

Adds ``organisations.institution_type`` (court, cdc, school, hospital, other), set for every
institution and NULL for every other kind, backfills the institutions already registered (by
name where the name says it, ``other`` otherwise), then constrains it with
``ck_organisations_institution_type``.

On SQLite the table is *not* rebuilt: a batch ALTER copies ``organisations`` and drops the old
table, which drops the name-search triggers of 0008 and, with foreign keys on, cascades the
implicit DELETE of the drop into every child row (enterprises, users, contacts...). Instead the
column is added by a plain ``ALTER TABLE ... ADD COLUMN`` carrying the CHECK as a column
constraint, which SQLite keeps and, being the column's own, drops with the column on downgrade.
SQLite tests such a CHECK against the existing rows as the column is added, before any backfill
could run, so that one statement runs with ``ignore_check_constraints`` and a ``quick_check``
afterwards proves every row satisfies it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 04:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "ck_organisations_institution_type"
# Spelled out, not formatted from reference.py: a migration is fixed text (models.py builds the
# same condition from INSTITUTION_TYPES).
CHECK = (
    "(kind = 'institution' AND institution_type IS NOT NULL AND "
    "institution_type IN ('court', 'cdc', 'school', 'hospital', 'other')) "
    "OR (kind != 'institution' AND institution_type IS NULL)"
)
# First match wins: a university hospital (…大学附属第一医院) is a hospital, not a school.
BACKFILL = (
    "UPDATE organisations SET institution_type = CASE "
    "WHEN name LIKE '%法院%' THEN 'court' "
    "WHEN name LIKE '%疾病预防控制中心%' OR name LIKE '%疾控%' THEN 'cdc' "
    "WHEN name LIKE '%医院%' THEN 'hospital' "
    "WHEN name LIKE '%学校%' OR name LIKE '%小学%' OR name LIKE '%中学%' "
    "OR name LIKE '%大学%' THEN 'school' "
    "ELSE 'other' END "
    "WHERE kind = 'institution'"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_upgrade()
        return
    op.add_column("organisations", sa.Column("institution_type", sa.String(20), nullable=True))
    op.execute(BACKFILL)
    op.create_check_constraint(op.f(CONSTRAINT), "organisations", CHECK)


def _sqlite_upgrade() -> None:
    bind = op.get_bind()
    op.execute("PRAGMA ignore_check_constraints = ON")
    try:
        op.execute(
            "ALTER TABLE organisations ADD COLUMN institution_type VARCHAR(20) "
            f"CONSTRAINT {CONSTRAINT} CHECK ({CHECK})"
        )
        op.execute(BACKFILL)
    finally:
        op.execute("PRAGMA ignore_check_constraints = OFF")
    problems = [
        row[0]
        for row in bind.exec_driver_sql("PRAGMA quick_check(organisations)")
        if row[0] != "ok"
    ]
    if problems:
        raise RuntimeError(f"organisations violate {CONSTRAINT} after the backfill: {problems}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # A plain DROP COLUMN: the CHECK is the column's own and goes with it, the table (and
        # 0008's triggers) stay.
        op.execute("ALTER TABLE organisations DROP COLUMN institution_type")
        return
    op.drop_constraint(op.f(CONSTRAINT), "organisations", type_="check")
    op.drop_column("organisations", "institution_type")
