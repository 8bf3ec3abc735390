"""Database foundation: declarative base, shared column types, sessions, migrations."""

from fugong.db.base import Base, TimestampMixin, utcnow
from fugong.db.session import make_engine, make_session_factory, unit_of_work
from fugong.db.types import JSONDoc, UTCDateTime, jsonable

__all__ = [
    "Base",
    "JSONDoc",
    "TimestampMixin",
    "UTCDateTime",
    "jsonable",
    "make_engine",
    "make_session_factory",
    "unit_of_work",
    "utcnow",
]
