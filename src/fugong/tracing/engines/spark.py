"""The Spark engine: the same SQL as DuckDB, for data that outgrows one machine.

Runs the shared SQL of :mod:`.sql` in Spark SQL over the same ``stays/`` partitions. Local mode
(``local[2]``) by default; pass ``master="spark://host:7077"`` (or ``FUGONG_SPARK_MASTER``) for a
cluster, where the data directory must be on storage every executor can read. When the stays do
not fit the query it computes them from the raw records, as the DuckDB engine does.
"""

# S608: SQL here is assembled from integers computed in Python and from file paths we quote;
# values a user types (uids) are always bound parameters.
# ruff: noqa: S608

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from fugong.tracing.common import (
    DEFAULT_DAYS,
    DEFAULT_MIN_STAY_S,
    CityStay,
    Companion,
    CompanionQuery,
    Profile,
    TracingDataError,
    TrajectoryStay,
    Window,
    cell_grid_table,
    check_data_dir,
    data_grid_cities,
    files_for_range,
    grid_label,
    read_cells,
    record_files,
    to_epoch,
)
from fugong.tracing.engines import sql
from fugong.tracing.engines.base import (
    companions_from_overlaps,
    itinerary_from_intervals,
    long_stay_filter,
    second_order_rows,
    trajectory_from_intervals,
)

log = logging.getLogger(__name__)

DEFAULT_MASTER = "local[2]"
FALLBACK_BUCKET_S = 3600
_GRID_SCHEMA = (
    "uid string, gkey bigint, b bigint, s bigint, e bigint, rs bigint, re bigint, "
    "cin tinyint, cout tinyint"
)
_CITY_SCHEMA = "uid string, city string, s bigint, e bigint"


def _literal(text: str) -> str:
    """A Spark SQL string literal (backslash is an escape character in Spark SQL)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def spark_session(master: str | None = None, shuffle_partitions: int = 4, **conf: str) -> Any:
    """A (shared) SparkSession for tracing: UTC, no UI, few shuffle partitions for small data;
    ``conf`` adds Spark settings (dots written as underscores are not translated: pass them as
    ``**{"spark.x.y": "v"}``)."""
    from pyspark.sql import SparkSession

    master = master or os.environ.get("FUGONG_SPARK_MASTER") or DEFAULT_MASTER
    builder = (
        SparkSession.builder.master(master)
        .appName("fugong-tracing")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    )
    for k, v in conf.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


class SparkEngine:
    """Tracing queries on PySpark; give a ``spark`` session to share one, or a ``master`` URL."""

    name = "spark"

    def __init__(
        self, spark: Any = None, master: str | None = None, allow_fallback: bool = True
    ) -> None:
        self._spark = spark
        self.master = master
        self.allow_fallback = allow_fallback
        self._built = False  # whether the views of the last query read built stays

    @property
    def spark(self) -> Any:
        if self._spark is None:
            self._spark = spark_session(self.master)
        return self._spark

    def _views(self, data_dir: Path, profile: Profile, w: Window) -> None:
        from fugong.tracing import build

        check_data_dir(data_dir)
        spark = self.spark
        ok, why = build.stays_usable(data_dir, profile, w.lo, w.hi)
        self._built = ok
        if ok:
            # The uid-ordered Parquet pieces serve both views: Spark scans and shuffles either way.
            for kind, view, schema in (
                ("uid", "stays_grid", _GRID_SCHEMA),
                ("uid", "stays_uid", _GRID_SCHEMA),
                ("city", "stays_city", _CITY_SCHEMA),
            ):
                files = build.stay_files(data_dir, kind, w.lo, w.hi, profile.max_gap_s)
                cols = [c.split()[0] for c in schema.split(", ")]
                df = (
                    spark.read.schema(schema).parquet(*[str(f) for f in files]).select(*cols)
                    if files
                    else spark.createDataFrame([], schema)
                )
                df.createOrReplaceTempView(view)
        elif self.allow_fallback:
            log.warning("computing presence from raw records: %s", why)
            self._stays_from_records(data_dir, profile, w)
        else:
            raise TracingDataError(f"stays cannot answer this query: {why}")

    def _stays_from_records(self, data_dir: Path, profile: Profile, w: Window) -> None:
        spark = self.spark
        g = profile.max_gap_s
        files = files_for_range(record_files(data_dir), w.lo - g, w.hi)
        if not files:
            for view, schema in (
                ("stays_grid", _GRID_SCHEMA),
                ("stays_uid", _GRID_SCHEMA),
                ("stays_city", _CITY_SCHEMA),
            ):
                spark.createDataFrame([], schema).createOrReplaceTempView(view)
            return
        cells = cell_grid_table(read_cells(data_dir), profile).to_pylist()
        spark.createDataFrame(
            [(c["cell_id"], c["gkey"], c["city"]) for c in cells],
            "cell_id bigint, gkey bigint, city string",
        ).createOrReplaceTempView("cellmap")
        # Spark casts a timestamp to bigint as epoch seconds, and an integer ts stays as it is.
        spark.read.parquet(*[str(f) for f in files]).selectExpr(
            "CAST(uid AS STRING) AS uid",
            "CAST(ts AS BIGINT) AS ts",
            "CAST(cell_id AS BIGINT) AS cell_id",
        ).createOrReplaceTempView("records")
        iv = spark.sql(sql.intervals_in(w.lo - g, w.hi, w.hi, g)).cache()
        iv.createOrReplaceTempView("iv")
        grid = spark.sql(
            sql.split_buckets(sql.runs("SELECT * FROM iv", "gkey"), FALLBACK_BUCKET_S, sql.SPARK)
        ).cache()
        grid.createOrReplaceTempView("stays_grid")
        grid.createOrReplaceTempView("stays_uid")
        spark.sql(sql.runs("SELECT * FROM iv", "city")).createOrReplaceTempView("stays_city")

    def _rows(self, text: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.spark.sql(sql.SPARK.params(text), args=params).collect()]

    def trajectory(
        self,
        data_dir: Path,
        uid: str,
        at: datetime,
        days: int = DEFAULT_DAYS,
        profile: Profile | None = None,
    ) -> list[TrajectoryStay]:
        profile = profile or Profile()
        w = Window.ending(at, days)
        self._views(data_dir, profile, w)
        return trajectory_from_intervals(
            self._rows(sql.trajectory(w.lo, w.hi), {"uid": uid}),
            profile,
            data_grid_cities(data_dir, profile),
        )

    def _first_order(self, q: CompanionQuery) -> list[Companion]:
        w = q.window
        pieces = self._rows(sql.case_pieces(w.lo, w.hi), {"case": q.case})
        if not pieces:
            return []
        # The case's pieces go back in as literal rows: one small VALUES relation costs no Spark
        # job, where a DataFrame made from Python rows would need Python workers.
        values = ", ".join(f"({int(k)}L, {int(b)}L, {int(s)}L, {int(e)}L)" for k, b, s, e in pieces)
        self.spark.sql(
            f"SELECT * FROM VALUES {values} AS c(gkey, b, s, e)"
        ).createOrReplaceTempView("case_stays")
        keys = sorted({int(r[0]) for r in pieces})
        rows = self._rows(sql.companions(keys, q.min_overlap_s), {"case": q.case})
        found = companions_from_overlaps(rows, q.min_overlap_s)
        if q.min_total_stay_s is None or not found:
            return found
        values = ", ".join(f"({_literal(u)})" for u in [q.case] + [c.uid for c in found])
        self.spark.sql(f"SELECT * FROM VALUES {values} AS w(uid)").createOrReplaceTempView("wanted")
        totals = {
            (str(u), grid_label(int(k))): int(t)
            for u, k, t in self._rows(sql.presence_totals(w.lo, w.hi), {})
        }
        return long_stay_filter(found, totals, q.case, q.min_total_stay_s)

    def companions(self, data_dir: Path, query: CompanionQuery) -> list[Companion]:
        self._views(data_dir, query.profile, query.window)
        return self._first_order(query)

    def second_order(self, data_dir: Path, query: CompanionQuery) -> list[Companion]:
        from fugong.tracing import build

        w = query.window
        self._views(data_dir, query.profile, w)
        first = self._first_order(query)
        if not first:
            return []
        t0 = [to_epoch(c.first_contact) for c in first]
        values = ", ".join(
            f"({_literal(c.uid)}, CAST({t} AS BIGINT))" for c, t in zip(first, t0, strict=True)
        )
        self.spark.sql(f"SELECT * FROM VALUES {values} AS f(uid, t0)").createOrReplaceTempView(
            "first_order"
        )
        # Only presence after the earliest first contact matters: read the partitions from there.
        pieces = "stays_grid"
        if self._built:
            files = build.stay_files(data_dir, "uid", min(t0), w.hi, query.profile.max_gap_s)
            cols = [c.split()[0] for c in _GRID_SCHEMA.split(", ")]
            self.spark.read.schema(_GRID_SCHEMA).parquet(*[str(f) for f in files]).select(
                *cols
            ).createOrReplaceTempView("so_stays")
            pieces = "so_stays"
        iv = self.spark.sql(
            sql.SPARK.params(sql.second_order_intervals(w.hi, pieces, pieces)),
            args={"case": query.case},
        ).cache()
        try:
            iv.createOrReplaceTempView("so_iv")
            rows = self._rows(sql.second_order_fold(query.min_overlap_s, sql.SPARK), {})
        finally:
            iv.unpersist()
        return second_order_rows(rows)

    def itinerary(
        self,
        data_dir: Path,
        uid: str,
        at: datetime,
        days: int = DEFAULT_DAYS,
        min_stay_s: int = DEFAULT_MIN_STAY_S,
        profile: Profile | None = None,
    ) -> list[CityStay]:
        profile = profile or Profile()
        w = Window.ending(at, days)
        self._views(data_dir, profile, w)
        return itinerary_from_intervals(
            self._rows(sql.itinerary(w.lo, w.hi), {"uid": uid}), min_stay_s
        )
