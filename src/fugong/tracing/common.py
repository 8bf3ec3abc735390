"""Shared contract of the tracing engines: parameters, result rows, the grid projection, data dirs.

Everything an engine needs to agree on with the others lives here, so that the DuckDB engine, the
Spark engine and the reference oracle cannot drift apart on a constant or on a rounding rule.

Semantics (see ``shared/domain/tracing.md``): a record at time ``t_i`` in cell ``c`` puts its uid in
``c`` over ``[t_i, min(t_{i+1}, t_i + max_gap))``. Two decisions the text leaves open are fixed here
and followed by every engine:

* records are ordered by ``(ts, cell_id)``; exact duplicates count once, and of two records with the
  same second in different cells the one with the smaller ``cell_id`` covers an empty interval;
* a record whose cell is not in ``cells.parquet`` is dropped *before* ordering, so it neither covers
  time nor cuts the previous record's interval short.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

EARTH_RADIUS_M = 6371008.8
DEFAULT_ORIGIN = (112.9, 22.5)
DEFAULT_GRID_M = 800.0
DEFAULT_MAX_GAP_S = 3600
DEFAULT_DAYS = 14
DEFAULT_MIN_OVERLAP_S = 600
DEFAULT_MIN_STAY_S = 4 * 3600
DAY_S = 86400

# Grid keys pack (gx, gy) into one int64 so a grid is one sortable column (row-group pruning) and
# one equality in joins. Offsets keep both halves non-negative for any grid within ~26 000 km.
_GKEY_OFFSET = 1 << 15
_GKEY_SHIFT = 1 << 16


class TracingDataError(Exception):
    """The data directory is missing, malformed, or not built for the asked query."""


@dataclass(frozen=True, slots=True)
class Profile:
    """How presence is cut into grids: fixed per build, recorded in the manifest.

    ``max_gap_s`` is capped at one day: the build reads one following day to close a day's last
    intervals, which is only exact while an interval cannot outlive the next day.
    """

    grid_m: float = DEFAULT_GRID_M
    max_gap_s: int = DEFAULT_MAX_GAP_S
    lon0: float = DEFAULT_ORIGIN[0]
    lat0: float = DEFAULT_ORIGIN[1]

    def __post_init__(self) -> None:
        if not (self.grid_m > 0):
            raise ValueError("grid_m must be positive")
        if not (0 < self.max_gap_s <= DAY_S):
            raise ValueError("max_gap_s must be in (0, 86400]")

    def as_dict(self) -> dict[str, float | int]:
        return {
            "grid_m": self.grid_m,
            "max_gap_s": self.max_gap_s,
            "lon0": self.lon0,
            "lat0": self.lat0,
        }


@dataclass(frozen=True, slots=True)
class Window:
    """The half-open query window ``[lo, hi)`` in epoch seconds."""

    lo: int
    hi: int

    @classmethod
    def ending(cls, at: datetime, days: int) -> Window:
        if days <= 0:
            raise ValueError("days must be positive")
        hi = to_epoch(at)
        return cls(hi - days * DAY_S, hi)


@dataclass(frozen=True, slots=True)
class CompanionQuery:
    """Parameters of a companion / second-order query.

    ``min_total_stay_s`` is the optional reading of the official text's "and either number stayed
    more than 30 hours in total" (off by default, ``108000`` for 30 h): a first-order companion is
    kept only when, in one of the grids where it qualified, the case or the companion was present
    more than that in total within the window. Second order then starts from the kept companions.
    """

    case: str
    at: datetime
    days: int = DEFAULT_DAYS
    min_overlap_s: int = DEFAULT_MIN_OVERLAP_S
    profile: Profile = field(default_factory=Profile)
    min_total_stay_s: int | None = None

    @property
    def window(self) -> Window:
        return Window.ending(self.at, self.days)


@dataclass(frozen=True, slots=True)
class Companion:
    """A uid that shared a grid with the case for at least ``min_overlap_s`` without a break.

    ``total_overlap_s`` sums every intersection with the case (qualifying or not); ``first_contact``
    is the start of the earliest qualifying interval; ``grids`` are the grids holding a qualifying
    interval, as sorted ``"gx:gy"`` strings. ``via`` is empty for first order; for second order it
    lists the first-order companions through whom the uid qualified, and the other fields aggregate
    over them (longest: max, total: sum, first contact: min, grids: union).
    """

    uid: str
    longest_overlap_s: int
    total_overlap_s: int
    first_contact: datetime
    grids: tuple[str, ...]
    via: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "uid": self.uid,
            "longest_overlap_s": self.longest_overlap_s,
            "total_overlap_s": self.total_overlap_s,
            "first_contact": iso(self.first_contact),
            "grids": list(self.grids),
        }
        if self.via:
            out["via"] = list(self.via)
        return out


@dataclass(frozen=True, slots=True)
class CityStay:
    """One row of the itinerary card: a city where the uid stayed at least ``min_stay`` seconds."""

    city: str
    first_seen: datetime
    last_seen: datetime
    total_s: int

    def to_json(self) -> dict[str, Any]:
        return {
            "city": self.city,
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "total_s": self.total_s,
        }


@dataclass(frozen=True, slots=True)
class TrajectoryStay:
    """A maximal presence interval in one grid, clipped to the window; ``lon``/``lat`` is the grid
    centre (WGS-84), for drawing, not a measured position; ``city`` is the grid's city as
    :func:`grid_cities` defines it (a property of the grid, not of the records in the stay)."""

    grid: str
    city: str
    start: datetime
    end: datetime
    duration_s: int
    lon: float
    lat: float

    def to_json(self) -> dict[str, Any]:
        return {
            "grid": self.grid,
            "city": self.city,
            "start": iso(self.start),
            "end": iso(self.end),
            "duration_s": self.duration_s,
            "lon": round(self.lon, 6),
            "lat": round(self.lat, 6),
        }


# --- time -----------------------------------------------------------------------------------


def to_epoch(ts: datetime) -> int:
    """Epoch seconds of an aware datetime (naive is taken as UTC)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return int(ts.timestamp())


def from_epoch(s: int) -> datetime:
    return datetime.fromtimestamp(s, tz=UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_at(text: str) -> datetime:
    """Parse an ISO-8601 time; a time without zone is UTC."""
    ts = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


def day_of(epoch_s: int) -> date:
    return date.fromordinal(date(1970, 1, 1).toordinal() + epoch_s // DAY_S)


def day_start(d: date) -> int:
    return (d.toordinal() - date(1970, 1, 1).toordinal()) * DAY_S


def days_between(first: date, last: date) -> list[date]:
    """Dates from ``first`` to ``last`` inclusive."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# --- grid -----------------------------------------------------------------------------------


def grid_of(lon: float, lat: float, profile: Profile) -> tuple[int, int]:
    """The grid of a point, exactly as the contract writes it (math, not numpy: one rounding)."""
    k = math.pi / 180.0
    x = EARTH_RADIUS_M * (lon - profile.lon0) * k * math.cos(profile.lat0 * k)
    y = EARTH_RADIUS_M * (lat - profile.lat0) * k
    return math.floor(x / profile.grid_m), math.floor(y / profile.grid_m)


def grid_centre(gx: int, gy: int, profile: Profile) -> tuple[float, float]:
    """WGS-84 lon/lat of a grid's centre (inverse of :func:`grid_of`'s projection)."""
    k = math.pi / 180.0
    x = (gx + 0.5) * profile.grid_m
    y = (gy + 0.5) * profile.grid_m
    lon = profile.lon0 + x / (EARTH_RADIUS_M * k * math.cos(profile.lat0 * k))
    lat = profile.lat0 + y / (EARTH_RADIUS_M * k)
    return lon, lat


def gkey(gx: int, gy: int) -> int:
    return (gx + _GKEY_OFFSET) * _GKEY_SHIFT + (gy + _GKEY_OFFSET)


def ungkey(key: int) -> tuple[int, int]:
    return key // _GKEY_SHIFT - _GKEY_OFFSET, key % _GKEY_SHIFT - _GKEY_OFFSET


def grid_label(key: int) -> str:
    gx, gy = ungkey(key)
    return f"{gx}:{gy}"


# --- data directory -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    cell_id: int
    lon: float
    lat: float
    city: str


def check_data_dir(data_dir: Path) -> None:
    """Raise :class:`TracingDataError` unless ``data_dir`` holds a valid ``cells.parquet`` and
    a ``records/`` directory."""
    if not data_dir.is_dir():
        raise TracingDataError(f"data directory not found: {data_dir}")
    if not (data_dir / "cells.parquet").is_file():
        raise TracingDataError(f"{data_dir} has no cells.parquet: not a tracing data directory")
    if not (data_dir / "records").is_dir():
        raise TracingDataError(
            f"{data_dir} has no records/ directory: not a tracing data directory"
        )
    import pyarrow.parquet as pq

    try:
        names = set(pq.read_schema(data_dir / "cells.parquet").names)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise TracingDataError(f"cells.parquet is not a readable Parquet file: {exc}") from exc
    missing = {"cell_id", "lon", "lat", "city"} - names
    if missing:
        raise TracingDataError(f"cells.parquet lacks column(s): {', '.join(sorted(missing))}")


def read_cells(data_dir: Path) -> list[Cell]:
    """Read and validate ``cells.parquet``."""
    import pyarrow.parquet as pq

    check_data_dir(data_dir)
    try:
        table = pq.read_table(data_dir / "cells.parquet")
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise TracingDataError(f"cells.parquet is not readable: {exc}") from exc
    cols = table.select(["cell_id", "lon", "lat", "city"]).to_pydict()
    return [
        Cell(int(c), float(x), float(y), str(city))
        for c, x, y, city in zip(
            cols["cell_id"], cols["lon"], cols["lat"], cols["city"], strict=True
        )
    ]


def cell_grid_table(cells: Sequence[Cell], profile: Profile) -> pa.Table:
    """``cell_id, gkey, city`` for every cell: the one place where grids are computed."""
    import pyarrow as pa

    keys = [gkey(*grid_of(c.lon, c.lat, profile)) for c in cells]
    return pa.table(
        {
            "cell_id": pa.array([c.cell_id for c in cells], pa.int64()),
            "gkey": pa.array(keys, pa.int64()),
            "city": pa.array([c.city for c in cells], pa.string()),
        }
    )


def grid_cities(cells: Iterable[Cell], profile: Profile) -> dict[int, str]:
    """The city of every grid holding a cell, by grid key.

    A grid's city is the city of its cells. An 800 m grid on a city boundary can hold cells of two
    cities (a border grid); it is then the city with the most cells in the grid, and on a tie the
    smallest name in code-point order (the order of Python strings and of SQL's binary collation).
    The majority is where a phone in that grid most likely is; the tie rule only has to be fixed,
    so that every engine names the same city for the same grid. The itinerary does not use this:
    it counts each record in its own cell's city. A cell id listed twice counts once (last row
    wins, as in the reference engine's cell lookup).
    """
    counts: dict[int, dict[str, int]] = {}
    for c in {c.cell_id: c for c in cells}.values():
        per_city = counts.setdefault(gkey(*grid_of(c.lon, c.lat, profile)), {})
        per_city[c.city] = per_city.get(c.city, 0) + 1
    return {
        key: min(per_city.items(), key=lambda item: (-item[1], item[0]))[0]
        for key, per_city in counts.items()
    }


def data_grid_cities(data_dir: Path, profile: Profile) -> Mapping[int, str]:
    """:func:`grid_cities` of ``data_dir``'s ``cells.parquet``, cached while the file is unchanged.

    The fast engines answer a trajectory from the built stays without reading the cells; reading
    and projecting them costs about as much as the query itself (~80 ms for 20 000 cells), so a
    long-lived engine (the web app's) pays it once per cells file and profile.
    """
    try:
        st = (data_dir / "cells.parquet").stat()
    except OSError as exc:
        raise TracingDataError(f"cells.parquet is not readable: {exc}") from exc
    return _grid_cities_of(str(data_dir.absolute()), st.st_mtime_ns, st.st_size, profile)


@functools.lru_cache(maxsize=8)
def _grid_cities_of(data_dir: str, mtime_ns: int, size: int, profile: Profile) -> Mapping[int, str]:
    # mtime and size are in the key only so that a rewritten cells.parquet misses the cache.
    return MappingProxyType(grid_cities(read_cells(Path(data_dir)), profile))


def record_files(data_dir: Path) -> list[Path]:
    """All Parquet files of the records dataset, sorted (hidden and ``_``-prefixed skipped)."""
    root = data_dir / "records"
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        out.extend(
            Path(dirpath) / f
            for f in sorted(filenames)
            if f.endswith(".parquet") and not f.startswith((".", "_"))
        )
    return sorted(out)


def partition_date(path: Path) -> date | None:
    """The ``date=YYYY-MM-DD`` partition a file lies in, or None when it is not partitioned."""
    for part in path.parts:
        if part.startswith("date="):
            try:
                return date.fromisoformat(part[5:])
            except ValueError:
                return None
    return None


def files_for_range(files: Iterable[Path], lo: int, hi: int) -> list[Path]:
    """Files that may hold records with ``lo <= ts < hi``: partitioned files of the dates touched,
    and every unpartitioned file (those cannot be pruned)."""
    first, last = day_of(lo), day_of(hi - 1)
    out = []
    for f in files:
        d = partition_date(f)
        if d is None or first <= d <= last:
            out.append(f)
    return out
