"""The build: layout, idempotence, incremental days, stale-build detection, retention."""

from __future__ import annotations

import itertools
import json
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fugong.tracing.build import build, read_manifest, stays_usable
from fugong.tracing.common import CompanionQuery, Profile, TracingDataError
from fugong.tracing.compact import KB_SHIFT
from fugong.tracing.engines.duckdb import DuckDBEngine
from fugong.tracing.engines.reference import ReferenceEngine
from fugong.tracing.generate import generate
from fugong.tracing.retention import parse_age, purge

from .conftest import AT, T0, edge_cells, edge_records, write_data


def _snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*.parquet")}


def test_layout_and_manifest(edge_dir: Path) -> None:
    manifest = read_manifest(edge_dir)
    assert manifest is not None
    assert manifest["profile"] == Profile().as_dict()
    assert set(manifest["days"]) == {"2022-11-01", "2022-11-02", "2022-11-03", "2022-11-04"}
    day = manifest["days"]["2022-11-02"]
    assert day["unknown_cell_records"] == 1
    assert day["inputs"] == [
        "records/date=2022-11-02/part-0.parquet",
        "records/date=2022-11-03/part-0.parquet",
    ]
    grid_dir = edge_dir / "stays" / "grid" / "date=2022-11-02"
    with pa.memory_map(str(grid_dir / "part-0.arrow")) as src:
        grid = pa.ipc.open_file(src).read_all()
    assert grid.column_names == ["uid", "gkey", "b", "s", "e", "rs", "re", "cin", "cout"]
    keys = grid.column("gkey").to_pylist()
    assert keys == sorted(keys)  # clustered by grid: a case query slices out its grids
    index = np.load(grid_dir / "index.npy")
    kb = [k * KB_SHIFT + b for k, b in zip(keys, grid.column("b").to_pylist(), strict=True)]
    assert [kb[i] for i in index[:-1, 1]] == sorted(set(kb)) == list(index[:-1, 0])
    by_uid = pq.read_table(edge_dir / "stays" / "uid" / "date=2022-11-02" / "part-0.parquet")
    assert by_uid.column("uid").to_pylist() == sorted(by_uid.column("uid").to_pylist())
    # every piece lies within one bucket and is non-empty, and is its run cut to the bucket
    cols = ("b", "s", "e", "rs", "re")
    for b, s, e, rs, re in zip(*(grid.column(c).to_pylist() for c in cols), strict=True):
        assert b * 3600 <= s < e <= (b + 1) * 3600
        assert (s, e) == (max(rs, b * 3600), min(re, (b + 1) * 3600))
    # runs of one uid in one grid never touch inside a partition (second order relies on it);
    # cin marks each uid's first run of the day, cout its last when it reaches midnight
    cols = ("uid", "gkey", "rs", "re", "cin", "cout")
    runs = sorted(set(zip(*(grid.column(c).to_pylist() for c in cols), strict=True)))
    for (u1, g1, _, e1, _, _), (u2, g2, s2, _, _, _) in itertools.pairwise(runs):
        assert (u1, g1) != (u2, g2) or e1 < s2
    midnight = int(datetime(2022, 11, 3, tzinfo=UTC).timestamp())
    for uid in {r[0] for r in runs}:
        mine = sorted((rs, re, cin, cout) for u, _, rs, re, cin, cout in runs if u == uid)
        assert [r[2] for r in mine] == [1] + [0] * (len(mine) - 1)
        assert [r[3] for r in mine] == [0] * (len(mine) - 1) + [int(mine[-1][1] >= midnight)]


def test_rebuild_is_idempotent(tmp_path: Path) -> None:
    d = write_data(tmp_path / "d", edge_cells(), edge_records())
    first = build(d)
    assert first.built and not first.unchanged
    before = _snapshot(d / "stays")
    manifest = (d / "stays" / "manifest.json").read_text()
    again = build(d)
    assert again.built == [] and again.unchanged == first.built
    assert _snapshot(d / "stays") == before
    assert json.loads((d / "stays" / "manifest.json").read_text()) == json.loads(manifest)


def test_adding_a_day_rebuilds_it_and_recloses_the_day_before(tmp_path: Path) -> None:
    recs = [r for r in edge_records() if r[1] < T0 + 86400]  # up to 2022-11-02
    later = [r for r in edge_records() if r[1] >= T0 + 86400]
    d = write_data(tmp_path / "d", edge_cells(), recs)
    build(d)
    at = datetime(2022, 11, 3, 1, tzinfo=UTC)
    q = CompanionQuery("case", at, days=2)
    # The case's 23:50 record is closed by max_gap while the next day is missing.
    assert DuckDBEngine(allow_fallback=False).companions(d, q) == ReferenceEngine().companions(d, q)
    write_data(d, edge_cells(), recs + later)
    assert not stays_usable(d, Profile(), T0, T0 + 2 * 86400)[0]  # stale: day 2 has a successor
    with pytest.raises(TracingDataError, match="stale"):
        DuckDBEngine(allow_fallback=False).companions(d, q)
    report = build(d)
    assert "2022-11-02" in report.built and "2022-11-03" in report.built
    carol = {c.uid: c for c in DuckDBEngine(allow_fallback=False).companions(d, q)}["carol"]
    assert carol.longest_overlap_s == 13 * 60
    assert DuckDBEngine().companions(d, q) == ReferenceEngine().companions(d, q)


def test_changing_the_profile_rebuilds_everything(tmp_path: Path) -> None:
    d = write_data(tmp_path / "d", edge_cells(), edge_records())
    build(d)
    report = build(d, Profile(grid_m=400.0))
    assert report.unchanged == [] and len(report.built) == 4
    q = CompanionQuery("case", AT, days=3, profile=Profile(grid_m=400.0))
    assert DuckDBEngine(allow_fallback=False).companions(d, q) == ReferenceEngine().companions(d, q)


def test_misfiled_partition_is_refused(tmp_path: Path) -> None:
    d = write_data(tmp_path / "d", edge_cells(), edge_records())
    src = d / "records" / "date=2022-11-02" / "part-0.parquet"
    shutil.copy(src, d / "records" / "date=2022-11-01" / "extra.parquet")
    with pytest.raises(TracingDataError, match="another UTC day"):
        build(d)


def test_unpartitioned_records_build_and_answer(tmp_path: Path) -> None:
    d = write_data(tmp_path / "d", edge_cells(), edge_records())
    for part in sorted((d / "records").glob("date=*")):
        (part / "part-0.parquet").rename(d / "records" / f"{part.name[5:]}.parquet")
        part.rmdir()
    build(d)
    q = CompanionQuery("case", AT, days=3)
    assert DuckDBEngine(allow_fallback=False).second_order(d, q) == ReferenceEngine().second_order(
        d, q
    )


def test_missing_or_malformed_data_dir(tmp_path: Path) -> None:
    with pytest.raises(TracingDataError, match="not found"):
        build(tmp_path / "absent")
    (tmp_path / "bad" / "records").mkdir(parents=True)
    (tmp_path / "bad" / "cells.parquet").write_text("not parquet")
    with pytest.raises(TracingDataError, match=r"cells\.parquet"):
        build(tmp_path / "bad")
    with pytest.raises(TracingDataError):
        DuckDBEngine().trajectory(tmp_path / "bad", "x", AT)


def test_purge_deletes_old_partitions_everywhere(tmp_path: Path) -> None:
    d = tmp_path / "city"
    generate(d, subscribers=20, days=4, seed=1, start=date(2022, 11, 1), cells=60)
    build(d)
    report = purge(d, parse_age("2d"), today=date(2022, 11, 5))
    assert report.removed_days == ["2022-11-01", "2022-11-02"]
    left = sorted(p.name for p in (d / "records").iterdir())
    assert left == ["date=2022-11-03", "date=2022-11-04"]
    for kind in ("grid", "uid", "city"):
        assert sorted(p.name for p in (d / "stays" / kind).iterdir()) == left
    manifest = read_manifest(d)
    assert manifest is not None and sorted(manifest["days"]) == ["2022-11-03", "2022-11-04"]
    assert build(d).built == []  # the kept days were built from the files still there
    assert parse_age("4w") == 28
    with pytest.raises(ValueError, match="28d"):
        parse_age("soon")
