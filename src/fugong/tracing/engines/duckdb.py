"""The default engine: embedded DuckDB over the built stays.

A query opens an in-memory DuckDB, points views at the stays partitions the window needs (see
:func:`fugong.tracing.build.stay_files`) and runs the shared SQL of :mod:`.sql`. When the stays do
not fit the query — no build, a stale day, or a query with another grid size / max_gap than the
build — it computes the same stays for the window from the raw records instead (slower, same answer)
and says so on the log.
"""

# S608: SQL here is assembled from integers computed in Python and from file paths we quote;
# values a user types (uids) are always bound parameters.
# ruff: noqa: S608

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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

FALLBACK_BUCKET_S = 3600

_EMPTY_GRID = (
    "SELECT ''::VARCHAR AS uid, 0::BIGINT AS gkey, 0::BIGINT AS b, 0::BIGINT AS s, "
    "0::BIGINT AS e, 0::BIGINT AS rs, 0::BIGINT AS re, 0::TINYINT AS cin, 0::TINYINT AS cout "
    "WHERE false"
)
_EMPTY_CITY = (
    "SELECT ''::VARCHAR AS uid, ''::VARCHAR AS city, 0::BIGINT AS s, 0::BIGINT AS e WHERE false"
)


def ts_expression(files: list[Path]) -> str:
    """SQL turning the stored ``ts`` (timestamp or epoch seconds) into epoch seconds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    kinds = set()
    for f in files:
        t = pq.read_schema(f).field("ts").type
        kinds.add("timestamp" if pa.types.is_timestamp(t) else "int")
    if len(kinds) > 1:
        raise TracingDataError("records mix timestamp and integer ts columns across files")
    if kinds == {"timestamp"}:
        return "CAST(epoch(ts) AS BIGINT)"
    return "CAST(ts AS BIGINT)"


def sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def records_view_sql(files: list[Path]) -> str:
    """DuckDB SELECT of ``records(uid, ts, cell_id, filename)`` over the given files."""
    return (
        f"SELECT CAST(uid AS VARCHAR) AS uid, {ts_expression(files)} AS ts, "
        f"CAST(cell_id AS BIGINT) AS cell_id, filename "
        f"FROM read_parquet({sql_list(files)}, filename = true, hive_partitioning = false)"
    )


def connect(threads: int | None = None) -> Any:
    import duckdb

    con = duckdb.connect(":memory:")
    # An in-memory database spills large joins to ".tmp" under the working directory, which
    # for a server may be the code or a read-only folder; the system's temp folder is meant
    # for it (and is cleared with the machine).
    spill = Path(tempfile.gettempdir()) / "fugong-duckdb"
    con.execute("SET temp_directory = ?", [str(spill)])
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    # Stays are written sorted; the order inside a query result is imposed where it matters.
    con.execute("SET preserve_insertion_order = false")
    return con


def register_cellmap(con: Any, data_dir: Path, profile: Profile) -> None:
    table = cell_grid_table(read_cells(data_dir), profile)
    con.register("cellmap_arrow", table)
    con.execute("CREATE OR REPLACE TEMP TABLE cellmap AS SELECT * FROM cellmap_arrow")
    con.unregister("cellmap_arrow")


class DuckDBEngine:
    """Tracing queries on embedded DuckDB. ``threads=None`` lets DuckDB use every core."""

    name = "duckdb"

    def __init__(self, threads: int | None = None, allow_fallback: bool = True) -> None:
        self.threads = threads
        self.allow_fallback = allow_fallback
        self._db: Any = None

    def _cursor(self) -> Any:
        """A fresh connection to the engine's one in-memory database: its own temp views,
        without paying for a new database per query."""
        if self._db is None:
            self._db = connect(self.threads)
        return self._db.cursor()

    @contextmanager
    def _session(self, data_dir: Path, profile: Profile, window: Window) -> Iterator[Any]:
        from fugong.tracing import build

        check_data_dir(data_dir)
        con = self._cursor()
        self._grid_files: list[Path] | None = None
        self._grid: Any = None  # GridFiles over _grid_files, once a query opened them
        try:
            ok, why = build.stays_usable(data_dir, profile, window.lo, window.hi)
            if ok:
                # stays_grid starts as the uid-ordered pieces (the same rows); queries that join
                # on grids narrow it to the (grid, hour) slices they need (GridFiles.covering).
                self._grid_files = build.stay_files(
                    data_dir, "grid", window.lo, window.hi, profile.max_gap_s
                )
                for kind, view, empty in (
                    ("uid", "stays_grid", _EMPTY_GRID),
                    ("uid", "stays_uid", _EMPTY_GRID),
                    ("city", "stays_city", _EMPTY_CITY),
                ):
                    files = build.stay_files(
                        data_dir, kind, window.lo, window.hi, profile.max_gap_s
                    )
                    body = (
                        f"SELECT * FROM read_parquet({sql_list(files)}, hive_partitioning = false)"
                        if files
                        else empty
                    )
                    con.execute(f"CREATE TEMP VIEW {view} AS {body}")
            elif self.allow_fallback:
                log.warning("computing presence from raw records: %s", why)
                self._stays_from_records(con, data_dir, profile, window)
            else:
                raise TracingDataError(f"stays cannot answer this query: {why}")
            yield con
        finally:
            con.close()
            self._grid = None  # releases the memory-mapped grid files

    def _stays_from_records(self, con: Any, data_dir: Path, profile: Profile, w: Window) -> None:

        register_cellmap(con, data_dir, profile)
        g = profile.max_gap_s
        files = files_for_range(record_files(data_dir), w.lo - g, w.hi)
        if not files:
            con.execute(f"CREATE TEMP VIEW stays_grid AS {_EMPTY_GRID}")
            con.execute(f"CREATE TEMP VIEW stays_uid AS {_EMPTY_GRID}")
            con.execute(f"CREATE TEMP VIEW stays_city AS {_EMPTY_CITY}")
            return
        con.execute(f"CREATE TEMP VIEW records AS {records_view_sql(files)}")
        # Records at or after hi only shorten intervals that the window cuts at hi anyway.
        con.execute(f"CREATE TEMP TABLE iv AS {sql.intervals_in(w.lo - g, w.hi, w.hi, g)}")
        grid_runs = sql.runs("SELECT * FROM iv", "gkey")
        con.execute(
            "CREATE TEMP TABLE stays_grid AS "
            + sql.split_buckets(grid_runs, FALLBACK_BUCKET_S, sql.DUCKDB)
        )
        con.execute("CREATE TEMP VIEW stays_uid AS SELECT * FROM stays_grid")
        con.execute(f"CREATE TEMP TABLE stays_city AS {sql.runs('SELECT * FROM iv', 'city')}")

    @staticmethod
    def _run(con: Any, text: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = con.execute(sql.DUCKDB.params(text), params).fetchall()
        return rows

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
        with self._session(data_dir, profile, w) as con:
            rows = self._run(con, sql.trajectory(w.lo, w.hi), {"uid": uid})
        return trajectory_from_intervals(rows, profile, data_grid_cities(data_dir, profile))

    def _first_order_built(
        self, con: Any, q: CompanionQuery, keys: list[int]
    ) -> list[tuple[Any, ...]]:
        """The companion overlaps on the built grid files: ``stays_grid`` becomes exactly the
        (grid, hour) slices the case visited, with integer uid ids; names come back at the end."""
        import numpy as np

        from fugong.tracing.compact import KB_SHIFT, GridFiles

        grid = self._grid = GridFiles(self._grid_files or [])
        (case_id,) = grid.ids_of([q.case])
        kbs = con.execute(f"SELECT DISTINCT gkey * {KB_SHIFT} + b FROM case_stays").fetchall()
        con.execute("DROP VIEW IF EXISTS stays_grid")
        con.register("stays_grid", grid.covering(np.array([k for (k,) in kbs], np.int64)))
        rows = self._run(con, sql.companions(keys, q.min_overlap_s), {"case": int(case_id)})
        name = dict(zip(ids := sorted({r[0] for r in rows}), grid.names(ids), strict=True))
        return [(name[u], *rest) for u, *rest in rows]

    def _first_order(self, con: Any, q: CompanionQuery) -> list[Companion]:
        w = q.window
        con.execute(
            "CREATE OR REPLACE TEMP TABLE case_stays AS "
            + sql.DUCKDB.params(sql.case_pieces(w.lo, w.hi)),
            {"case": q.case},
        )
        keys = [int(r[0]) for r in con.execute("SELECT DISTINCT gkey FROM case_stays").fetchall()]
        if not keys:
            return []
        if self._grid_files:
            rows = self._first_order_built(con, q, keys)
        else:
            rows = self._run(con, sql.companions(keys, q.min_overlap_s), {"case": q.case})
        found = companions_from_overlaps(rows, q.min_overlap_s)
        if q.min_total_stay_s is None or not found:
            return found
        import pyarrow as pa

        wanted = pa.table({"uid": pa.array([q.case] + [c.uid for c in found], pa.string())})
        con.register("wanted", wanted)
        totals = {
            (str(u), grid_label(int(k))): int(t)
            for u, k, t in self._run(con, sql.presence_totals(w.lo, w.hi), {})
        }
        con.unregister("wanted")
        return long_stay_filter(found, totals, q.case, q.min_total_stay_s)

    def companions(self, data_dir: Path, query: CompanionQuery) -> list[Companion]:
        with self._session(data_dir, query.profile, query.window) as con:
            return self._first_order(con, query)

    def second_order(self, data_dir: Path, query: CompanionQuery) -> list[Companion]:
        import pyarrow as pa

        with self._session(data_dir, query.profile, query.window) as con:
            first = self._first_order(con, query)
            if not first:
                return []
            t0 = [to_epoch(c.first_contact) for c in first]
            if self._grid_files:
                return self._second_order_built(con, query, first, t0)
            f = pa.table({"uid": pa.array([c.uid for c in first], pa.string()), "t0": t0})
            con.register("first_order", f)
            rows = self._second_order_rows(con, query, query.case)
        return second_order_rows(rows)

    def _second_order_rows(
        self, con: Any, q: CompanionQuery, case: Any, uid_rel: str = "stays_uid"
    ) -> list[tuple[Any, ...]]:
        """Run the shared second-order SQL on the registered ``first_order`` / stays views."""
        con.execute(
            "CREATE OR REPLACE TEMP TABLE so_iv AS "
            + sql.DUCKDB.params(sql.second_order_intervals(q.window.hi, uid_rel)),
            {"case": case},
        )
        rows = self._run(con, sql.second_order_fold(q.min_overlap_s, sql.DUCKDB), {})
        con.execute("DROP TABLE so_iv")
        return rows

    def _second_order_built(
        self, con: Any, q: CompanionQuery, first: list[Companion], t0: list[int]
    ) -> list[Companion]:
        """Second order on the built grid files, with uids as integer ids throughout: the pieces
        of the first order and of everyone in the (grid, hour) slices they visited after their
        first contact are read straight from the memory-mapped files, and names come back only
        for the answer."""
        import numpy as np
        import pyarrow as pa

        from fugong.tracing.compact import KB_SHIFT, GridFiles

        grid = self._grid or GridFiles(self._grid_files or [])
        ids = grid.ids_of([c.uid for c in first])
        (case_id,) = grid.ids_of([q.case])
        hi = q.window.hi
        pieces = grid.rows_of(ids)
        # The first contact of each piece's uid, to keep only the slices visited after it.
        t0_of = np.full(len(grid.uids) + 1, np.iinfo(np.int64).max, np.int64)
        t0_of[ids] = t0
        uid, s, e = (pieces.column(c).to_numpy() for c in ("uid", "s", "e"))
        keep = (e > t0_of[uid]) & (s < hi)
        kbs = (pieces.column("gkey").to_numpy() * KB_SHIFT + pieces.column("b").to_numpy())[keep]
        con.register("so_uid", pieces.filter(pa.array(keep)))
        con.execute("DROP VIEW IF EXISTS stays_grid")
        con.register("stays_grid", grid.covering(kbs))
        con.register(
            "first_order", pa.table({"uid": pa.array(ids, pa.int32()), "t0": pa.array(t0)})
        )
        rows = self._second_order_rows(con, q, int(case_id), "so_uid")
        if not rows:
            return []
        names = grid.names([r[0] for r in rows])
        name_of = dict(zip(ids.tolist(), (c.uid for c in first), strict=True))
        return second_order_rows(
            (n, longest, total, first_s, [name_of[v] for v in vias], gkeys)
            for n, (_, longest, total, first_s, vias, gkeys) in zip(names, rows, strict=True)
        )

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
        with self._session(data_dir, profile, w) as con:
            rows = self._run(con, sql.itinerary(w.lo, w.hi), {"uid": uid})
        return itinerary_from_intervals(rows, min_stay_s)
