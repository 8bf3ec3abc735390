"""Alembic environment: migrations run on the engine the caller hands over (``fugong db
upgrade``, the tests) or on ``sqlalchemy.url``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

import fugong.models  # noqa: F401 - registers every table on Base.metadata
from fugong.db import Base, make_engine, migrate

config = context.config
target_metadata = Base.metadata


def run() -> None:
    engine: Engine | None = config.attributes.get("engine")
    if engine is None:
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("no engine and no sqlalchemy.url given to the migrations")
        engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copy
            compare_type=True,
            include_name=migrate.include_name,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run()
