"""The synthetic city: the data contract, determinism, and a plausible shape."""

# S608: SQL here is assembled from integers computed in Python and from file paths we quote;
# values a user types (uids) are always bound parameters.
# ruff: noqa: S608

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from fugong.tracing.generate import LU_PERIOD_S, generate


def test_contract_and_determinism(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    ra = generate(a, subscribers=60, days=2, seed=5, start=date(2022, 11, 5), cells=80)
    rb = generate(b, subscribers=60, days=2, seed=5, start=date(2022, 11, 5), cells=80)
    assert ra.records == rb.records > 0
    cells = pq.read_table(a / "cells.parquet")
    assert cells.schema.field("cell_id").type == pa.int64()
    assert cells.schema.field("lon").type == pa.float64()
    assert len(set(cells.column("city").to_pylist())) > 3  # other cities for itineraries
    parts = sorted(p.name for p in (a / "records").iterdir())
    assert parts == ["date=2022-11-05", "date=2022-11-06"]
    t = pq.read_table(sorted((a / "records").rglob("*.parquet"))[0])
    assert t.schema.field("uid").type == pa.string()
    assert t.schema.field("ts").type == pa.timestamp("ms", tz="UTC")  # Parquet has no seconds
    assert t.schema.field("cell_id").type == pa.int64()
    for fa in sorted((a / "records").rglob("*.parquet")):
        fb = b / fa.relative_to(a)
        assert pq.read_table(fa).equals(pq.read_table(fb))


def test_shape_of_a_day(tmp_path: Path) -> None:
    d = tmp_path / "c"
    generate(d, subscribers=200, days=1, seed=1, start=date(2022, 11, 7), cells=300)
    con = duckdb.connect()
    glob = str(d / "records" / "*" / "*.parquet")
    per_sub = con.execute(
        f"SELECT count(*) / count(DISTINCT uid), count(DISTINCT uid) FROM read_parquet('{glob}')"
    ).fetchall()[0]
    assert per_sub[1] == 200
    assert 40 < per_sub[0] < 400  # location updates + activity + handovers
    # Periodic location updates: each subscriber has records LU_PERIOD_S apart at night.
    gaps = con.execute(
        f"""SELECT count(*) FILTER (WHERE gap = {LU_PERIOD_S}) FROM (
              SELECT epoch(ts) - lag(epoch(ts)) OVER (PARTITION BY uid ORDER BY ts) AS gap
              FROM read_parquet('{glob}'))"""
    ).fetchall()[0][0]
    assert gaps > 200
    dense = con.execute(
        f"""SELECT count(*) FILTER (WHERE abs(lon - 113.2644) < 0.05 AND abs(lat - 23.1291) < 0.05)
                   / count(*) FILTER (WHERE abs(lon - 113.55) < 0.05 AND abs(lat - 23.1291) < 0.05)
            FROM read_parquet('{d / "cells.parquet"}')"""
    ).fetchall()[0][0]
    assert dense > 3  # cells are denser in the centre than 30 km out
