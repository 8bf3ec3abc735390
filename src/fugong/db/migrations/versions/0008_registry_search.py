"""registry_search: indexes for the enterprise list under load

* district-led composite indexes on ``enterprises``: an official's filtered count becomes an
  index-only search (they are in the models);
* the name search's trigram index, outside the models because each database builds it its own
  way (named ``…_fts``, which ``tests/integration/test_migrations.py`` leaves out of its
  comparison):
  on SQLite an FTS5 ``trigram`` table over ``organisations.name`` kept by triggers, on
  PostgreSQL a ``pg_trgm`` GIN index where the extension exists or may be created.

Any later migration that rebuilds ``organisations`` on SQLite (a batch ALTER copies the table
and drops the old one) drops these triggers with it and must create them again;
``tests/integration/test_registry_search.py`` fails if names stop reaching the index.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 07:10:00
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy.exc import DBAPIError

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_enterprises_district_status": ["district", "resumption_status"],
    "ix_enterprises_district_street": ["district", "street", "resumption_status"],
    "ix_enterprises_district_industry": ["district", "industry", "size"],
    "ix_enterprises_district_key": ["district", "key_category"],
    "ix_enterprises_district_manager": ["district", "manager_id"],
}

# Spelled out, not formatted: DDL is fixed text.
SQLITE_UP = [
    # External content: the index holds trigrams only; names stay in ``organisations``.
    "CREATE VIRTUAL TABLE organisations_name_fts USING fts5(name, content='organisations', "
    "content_rowid='id', tokenize='trigram case_sensitive 0')",
    "CREATE TRIGGER organisations_name_fts_ai AFTER INSERT ON organisations BEGIN "
    "INSERT INTO organisations_name_fts(rowid, name) VALUES (new.id, new.name); END",
    "CREATE TRIGGER organisations_name_fts_ad AFTER DELETE ON organisations BEGIN "
    "INSERT INTO organisations_name_fts(organisations_name_fts, rowid, name) "
    "VALUES ('delete', old.id, old.name); END",
    "CREATE TRIGGER organisations_name_fts_au AFTER UPDATE OF name ON organisations BEGIN "
    "INSERT INTO organisations_name_fts(organisations_name_fts, rowid, name) "
    "VALUES ('delete', old.id, old.name); "
    "INSERT INTO organisations_name_fts(rowid, name) VALUES (new.id, new.name); END",
    "INSERT INTO organisations_name_fts(organisations_name_fts) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS organisations_name_fts_au",
    "DROP TRIGGER IF EXISTS organisations_name_fts_ad",
    "DROP TRIGGER IF EXISTS organisations_name_fts_ai",
    "DROP TABLE IF EXISTS organisations_name_fts",
]
# Named ``…_fts`` like every full-text object without a model (test_migrations.py).
PG_TRGM_INDEX = "ix_organisations_name_fts"


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "enterprises", columns, unique=False)
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_UP:
            op.execute(statement)
    elif dialect == "postgresql":
        _pg_trigram_index()


def _pg_trgm_schema() -> str | None:
    return (
        op.get_bind()
        .exec_driver_sql(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pg_trgm'"
        )
        .scalar()
    )


def _pg_trigram_index() -> None:
    """The index where pg_trgm is installed or this role may install it (into ``public``, so
    that dropping an application schema never takes the extension with it); without it the
    same LIKE runs as a scan."""
    bind = op.get_bind()
    schema = _pg_trgm_schema()
    if schema is None:
        try:
            with bind.begin_nested():
                bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        except DBAPIError:
            # No privilege, no contrib package, or another session installing it meanwhile.
            schema = _pg_trgm_schema()
            if schema is None:
                return
        else:
            schema = "public"
    # fastupdate off: with the pending list on, a bulk import left every new name in it, and
    # the planner priced the index out until a VACUUM (a plain ANALYZE does not flush it).
    op.execute(
        f"CREATE INDEX {PG_TRGM_INDEX} ON organisations "
        f'USING gin (name "{schema}".gin_trgm_ops) WITH (fastupdate = off)'
    )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_DOWN:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {PG_TRGM_INDEX}")
    for name in INDEXES:
        op.drop_index(name, table_name="enterprises")
