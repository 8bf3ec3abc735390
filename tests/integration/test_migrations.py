"""Migrations go up from empty and back down on both databases, and match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

import fugong.models  # noqa: F401 - registers every table
from fugong.db import Base, migrate


def test_head_matches_models(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": migrate.include_name}
        )
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_down_to_empty_and_up_again(engine: Engine) -> None:
    migrate.downgrade(engine, "base")
    try:
        tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
        assert tables == set()
        assert migrate.current(engine) is None
    finally:
        migrate.upgrade(engine)
    assert migrate.current(engine) is not None
    assert {"enterprises", "audit_log", "users"} <= set(inspect(engine).get_table_names())
