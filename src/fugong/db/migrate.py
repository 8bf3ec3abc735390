"""Alembic, driven from code: ``fugong db upgrade`` and the tests use the same entry point,
so no alembic.ini has to be found relative to the current directory."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None, engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """What autogenerate and the models-vs-migrations test compare. Full-text search objects
    are made by migrations in raw SQL and have no model: SQLite FTS5 tables with their shadow
    tables (``x_fts``, ``x_fts_data``…) and PostgreSQL indexes over ``to_tsvector`` or
    trigrams (``ix_…_fts``). Their names end in ``_fts`` by convention; without this,
    autogenerate would propose dropping them."""
    return not (name and (name.endswith("_fts") or "_fts_" in name))


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine=engine), revision)
    analyze(engine)


def analyze(engine: Engine) -> None:
    """Refresh the planner's statistics. Without them SQLite picks the district index for a
    street filter (every row of the district) instead of the street index; run after bulk loads."""
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def downgrade(engine: Engine, revision: str = "base") -> None:
    command.downgrade(alembic_config(engine=engine), revision)


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
