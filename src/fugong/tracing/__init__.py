"""Trajectory tracing for the CDC: synthetic cities, pseudonymised ingest, the stays build and
the queries (trajectory, companions, second order, itinerary) on DuckDB and Spark behind one
interface (:mod:`.engines`); :mod:`.services` runs them for an audited case query and
:mod:`.permissions` admits the ``cdc`` role only. Location data lives in Parquet files, not in
the platform's database, so the package has no ORM models. Only the pure result types are
re-exported here: importing the package must not pull in the database layer (the engines and
the generator run without it)."""

from fugong.tracing.common import (
    CityStay,
    Companion,
    CompanionQuery,
    Profile,
    TracingDataError,
    TrajectoryStay,
)

__all__ = [
    "CityStay",
    "Companion",
    "CompanionQuery",
    "Profile",
    "TracingDataError",
    "TrajectoryStay",
]
