"""Tracing fixtures: a small generated city, hand-made edge cases, one shared SparkSession.

Spark is real: without Java or pyspark the Spark half is skipped with a loud reason on a laptop and
fails under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fugong.tracing.build import build
from fugong.tracing.common import DEFAULT_ORIGIN, EARTH_RADIUS_M, day_of
from fugong.tracing.generate import generate

IN_CI = os.environ.get("CI", "").lower() == "true"
CITY_START = date(2022, 11, 1)
CITY_DAYS = 3


def write_data(
    data_dir: Path,
    cells: Sequence[tuple[int, float, float, str]],
    records: Sequence[tuple[str, int, int]],
    ts_as_int: bool = False,
) -> Path:
    """Write a data directory from literal cells ``(id, lon, lat, city)`` and records
    ``(uid, epoch s, cell)``, partitioned by UTC date, one file per date."""
    data_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "cell_id": pa.array([c[0] for c in cells], pa.int64()),
                "lon": pa.array([c[1] for c in cells], pa.float64()),
                "lat": pa.array([c[2] for c in cells], pa.float64()),
                "city": pa.array([c[3] for c in cells], pa.string()),
            }
        ),
        data_dir / "cells.parquet",
    )
    shutil.rmtree(data_dir / "records", ignore_errors=True)
    (data_dir / "records").mkdir()
    by_day: dict[date, list[tuple[str, int, int]]] = {}
    for r in records:
        by_day.setdefault(day_of(r[1]), []).append(r)
    for d, rows in by_day.items():
        part = data_dir / "records" / f"date={d.isoformat()}"
        part.mkdir()
        ts = pa.array([r[1] for r in rows], pa.int64())
        pq.write_table(
            pa.table(
                {
                    "uid": pa.array([r[0] for r in rows], pa.string()),
                    "ts": ts if ts_as_int else ts.cast(pa.timestamp("s", tz="UTC")),
                    "cell_id": pa.array([r[2] for r in rows], pa.int64()),
                }
            ),
            part / "part-0.parquet",
        )
    return data_dir


def lonlat_in_grid(gx: int, gy: int, fx: float = 0.5, fy: float = 0.5) -> tuple[float, float]:
    """A point at fraction (fx, fy) inside grid (gx, gy) of the default 800 m profile."""
    import math

    lon0, lat0 = DEFAULT_ORIGIN
    k = math.pi / 180
    x, y = (gx + fx) * 800.0, (gy + fy) * 800.0
    return lon0 + x / (EARTH_RADIUS_M * k * math.cos(lat0 * k)), lat0 + y / (EARTH_RADIUS_M * k)


T0 = int(datetime(2022, 11, 2, tzinfo=UTC).timestamp())  # midnight UTC
AT = datetime(2022, 11, 4, tzinfo=UTC)


def edge_cells() -> list[tuple[int, float, float, str]]:
    a1, a2 = lonlat_in_grid(50, 50, 0.2, 0.3), lonlat_in_grid(50, 50, 0.8, 0.7)
    b1 = lonlat_in_grid(51, 50)
    c1 = lonlat_in_grid(60, 60)
    far = (121.47, 31.23)
    return [
        (1, *a1, "广州市"),  # cells 1 and 2 share grid 50:50
        (2, *a2, "广州市"),
        (3, *b1, "广州市"),  # grid 51:50, next door
        (4, *c1, "广州市"),
        (9, *far, "上海市"),
    ]


def edge_records() -> list[tuple[str, int, int]]:
    """Hand-made records, each block one situation the semantics must get exactly right."""
    m = 60
    recs: list[tuple[str, int, int]] = []
    # case: grid A from 08:00 to 10:00 using both cells of A (touching intervals, two cells one
    # grid), a duplicate, a record in an unknown cell, then a 2 h gap (> max_gap), then A again.
    for i, cell in enumerate([1, 2, 1, 2, 1]):
        recs.append(("case", T0 + 8 * 3600 + i * 30 * m, cell))
    recs.append(("case", T0 + 8 * 3600, 1))  # exact duplicate
    recs.append(("case", T0 + 8 * 3600 + 45 * m, 777))  # unknown cell: skipped entirely
    recs.append(("case", T0 + 13 * 3600, 2))
    # case: 23:50 in A, next record 00:20 next day in A: presence spills over midnight.
    recs.append(("case", T0 + 23 * 3600 + 50 * m, 1))
    recs.append(("case", T0 + 86400 + 20 * m, 1))
    # case: ping-pong A/B every 5 min 15:00-16:00.
    for i in range(12):
        recs.append(("case", T0 + 15 * 3600 + i * 5 * m, 1 if i % 2 == 0 else 3))
    # case: same second in two cells of different grids (tie ordered by cell_id).
    recs.append(("case", T0 + 18 * 3600, 3))
    recs.append(("case", T0 + 18 * 3600, 4))
    # case: a last record exactly at the window end (excluded) and one at the start (included).
    at = int(AT.timestamp())
    recs.append(("case", at, 1))
    recs.append(("case", at - 2 * 86400, 4))
    recs.append(("case", at - 2 * 86400 - 1800, 1))  # before the window, covers into it

    # alice: in A 08:20-09:10 with cell 2 only: overlap 50 min, continuous -> companion.
    recs += [("alice", T0 + 8 * 3600 + 20 * m, 2), ("alice", T0 + 9 * 3600 + 10 * m, 3)]
    # bob: stays in A during the ping-pong: only 5 min pieces -> not a companion from that.
    recs += [("bob", T0 + 15 * 3600 + i * 10 * m, 2) for i in range(7)]
    # carol: 23:55 -> 00:08 in A: 13 min, only when merged across the midnight cut (5 + 8).
    recs += [("carol", T0 + 23 * 3600 + 55 * m, 2), ("carol", T0 + 86400 + 8 * m, 4)]
    # dave: exactly 10 min in A (min_overlap is inclusive), touching two records of his.
    recs += [("dave", T0 + 13 * 3600, 1), ("dave", T0 + 13 * 3600 + 5 * m, 2)]
    recs += [("dave", T0 + 13 * 3600 + 10 * m, 4)]
    # erin: 9:59 of overlap only -> not a companion.
    recs += [("erin", T0 + 13 * 3600 + 1, 1), ("erin", T0 + 13 * 3600 + 600, 4)]
    # frank meets alice (first order) after her first contact -> second order; gina meets alice
    # only before her first contact -> not second order.
    recs += [("frank", T0 + 9 * 3600 + 10 * m, 3), ("frank", T0 + 9 * 3600 + 40 * m, 4)]
    recs += [("gina", T0 + 6 * 3600, 4), ("gina", T0 + 7 * 3600, 4)]
    recs += [("alice", T0 + 6 * 3600, 4), ("alice", T0 + 6 * 3600 + 40 * m, 4)]
    # helen: travels: 5 h in Shanghai, 3 h back in Guangzhou (itinerary min_stay 4 h).
    recs += [("helen", T0 + 86400 + h * 3600, 9) for h in range(5)]
    recs += [("helen", T0 + 86400 + 6 * 3600 + h * 3600, 4) for h in range(3)]
    # ivan: exact duplicates and same-second records only, in grid C with the case at 18:00.
    recs += [("ivan", T0 + 18 * 3600, 4), ("ivan", T0 + 18 * 3600, 4)]
    recs += [("ivan", T0 + 18 * 3600 + 20 * m, 4)]
    return recs


@pytest.fixture(scope="session")
def edge_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = write_data(tmp_path_factory.mktemp("edge"), edge_cells(), edge_records())
    build(d)
    return d


def border_cells() -> list[tuple[int, float, float, str]]:
    """Border grids: 70:70 holds two cells of 广州市 and one of 佛山市 (the majority wins over the
    smaller name); 71:70 one of each (a tie: the smaller name, 佛山市, U+4F5B < 广 U+5E7F); 72:70
    is all 广州市. File order puts 广州市 first so that it cannot decide the tie."""
    return [
        (21, *lonlat_in_grid(70, 70, 0.2, 0.2), "广州市"),
        (22, *lonlat_in_grid(70, 70, 0.5, 0.5), "佛山市"),
        (23, *lonlat_in_grid(70, 70, 0.8, 0.8), "广州市"),
        (24, *lonlat_in_grid(71, 70, 0.3, 0.5), "广州市"),
        (25, *lonlat_in_grid(71, 70, 0.7, 0.5), "佛山市"),
        (26, *lonlat_in_grid(72, 70), "广州市"),
    ]


def border_records() -> list[tuple[str, int, int]]:
    """walker: 08:00 in 70:70 on its 佛山市 cell, 09:00 in 71:70 on its 广州市 cell, 10:00 in 72:70
    (the last record covers max_gap); a stay's city is its grid's, whatever cell the phone used.
    runner: the same grids back and forth every 20 minutes across midnight."""
    recs = [("walker", T0 + 8 * 3600, 22), ("walker", T0 + 9 * 3600, 24)]
    recs.append(("walker", T0 + 10 * 3600, 26))
    recs += [
        ("runner", T0 + 23 * 3600 + i * 20 * 60, (21, 25, 26, 23, 24)[i % 5]) for i in range(9)
    ]
    return recs


@pytest.fixture(scope="session")
def border_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = write_data(tmp_path_factory.mktemp("border"), border_cells(), border_records())
    build(d)
    return d


@pytest.fixture(scope="session")
def city_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("city")
    generate(d, subscribers=120, days=CITY_DAYS, seed=7, start=CITY_START, cells=150)
    build(d)
    return d


def _spark_or_skip() -> Any:
    reason = ""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        reason = "pyspark is not installed"
    if not reason and not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        reason = "no Java runtime (java not on PATH, JAVA_HOME unset)"
    if reason:
        if IN_CI:
            pytest.fail(f"Spark tests cannot run under CI=true: {reason}")
        pytest.skip(f"SPARK TESTS SKIPPED: {reason}")
    from fugong.tracing.engines.spark import spark_session

    return spark_session("local[2]", shuffle_partitions=2)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    session = _spark_or_skip()
    yield session
    session.stop()
