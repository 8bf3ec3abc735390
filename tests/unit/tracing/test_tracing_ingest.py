"""Ingest: pseudonyms, malformed rows reported by line, no phone number anywhere in the output."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fugong.tracing.build import build
from fugong.tracing.engines.duckdb import DuckDBEngine
from fugong.tracing.ingest import IngestError, ingest, normalise_phone, pseudonymise

from .conftest import AT, edge_cells, write_data

KEY = b"k" * 32
PHONES = ["13800138000", "13912345678", "+86 150-0000-1111", "8618600001111"]


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    data = write_data(tmp_path / "data", edge_cells(), [])
    key_file = tmp_path / "secret" / "tracing.key"
    key_file.parent.mkdir()
    key_file.write_bytes(KEY + b"\n")
    return data, key_file


def test_pseudonymise_normalises_and_hides() -> None:
    uid = pseudonymise("13800138000", KEY)
    assert len(uid) == 64 and int(uid, 16) >= 0
    assert pseudonymise("+86 138-0013-8000", KEY) == uid
    assert pseudonymise("008613800138000", KEY) == uid
    assert pseudonymise("13800138000", b"x" * 32) != uid
    with pytest.raises(ValueError) as err:
        normalise_phone("12345")
    assert "12345" not in str(err.value)
    with pytest.raises(ValueError, match="at least"):
        pseudonymise("13800138000", b"short")


def test_ingest_reports_bad_rows_and_keeps_good_ones(setup: tuple[Path, Path]) -> None:
    data, key_file = setup
    raw = data.parent / "export.csv"
    lines = [
        "phone,time,cell_id",  # 1: header
        f"{PHONES[0]},2022-11-02T08:00:00+08:00,1",  # 2 ok (Beijing time)
        f"{PHONES[0]},2022-11-02 09:00:00,2",  # 3 ok, naive -> Beijing
        f"{PHONES[1]},not-a-time,1",  # 4 bad time
        f"{PHONES[1]},2022-11-02T01:00:00Z,999",  # 5 unknown cell
        "1008611223,2022-11-02T01:00:00Z,1",  # 6 bad phone (10 digits)
        f"{PHONES[2]},2022-11-02T01:30:00Z,1",  # 7 ok, formatted number
        f"{PHONES[3]},1667350800,3",  # 8 ok, epoch seconds
        f"{PHONES[1]},2022-11-02T01:00:00Z",  # 9 wrong column count
        f"{PHONES[1]},2022-11-02T01:00:00Z,abc",  # 10 bad cell id
        "",  # 11 blank: ignored
        f"{PHONES[1]},2022-11-03T02:00:00Z,4",  # 12 ok, next day
    ]
    raw.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = ingest(raw, data, key_file)
    assert report.rows == 10 and report.written == 5 and report.rejected == 5
    assert report.errors == [
        (4, "bad time"),
        (5, "unknown cell"),
        (6, "bad phone number"),
        (9, "expected 3 columns"),
        (10, "bad cell id"),
    ]
    uids = {pseudonymise(p, KEY) for p in PHONES}
    files = sorted((data / "records").rglob("*.parquet"))
    assert [f.parent.name for f in files] == ["date=2022-11-02", "date=2022-11-03"]
    stored = {u for f in files for u in pq.read_table(f).column("uid").to_pylist()}
    assert stored <= uids and pseudonymise(PHONES[0], KEY) in stored
    ts = pq.read_table(files[0]).column("ts").to_pylist()
    assert min(ts).isoformat() == "2022-11-02T00:00:00+00:00"
    # Again: the same file names are rewritten, nothing is duplicated.
    ingest(raw, data, key_file)
    assert sorted((data / "records").rglob("*.parquet")) == files
    build(data)
    traj = DuckDBEngine().trajectory(data, pseudonymise(PHONES[0], KEY), AT, 3)
    assert traj and traj[0].start.isoformat() == "2022-11-02T00:00:00+00:00"
    # No phone number, in any spelling, in any file written under the data directory.
    needles = [p.encode() for p in PHONES] + [normalise_phone(p).encode() for p in PHONES]
    # Ten digits: a short needle like "10086" turns up by chance in the build manifest's
    # nanosecond file times.
    needles += [b"1008611223"]
    for f in data.rglob("*"):
        if f.is_file():
            blob = f.read_bytes()
            for n in needles:
                assert n not in blob, f"{n!r} leaked into {f}"
    report_file = next((data / "ingest_reports").glob("*.json"))
    assert json.loads(report_file.read_text())["rejected"] == 5


def test_key_file_inside_the_data_dir_is_refused(setup: tuple[Path, Path]) -> None:
    data, _ = setup
    inside = data / "key"
    inside.write_bytes(KEY)
    raw = data.parent / "export.csv"
    raw.write_text(f"{PHONES[0]},2022-11-02T08:00:00Z,1\n")
    with pytest.raises(IngestError, match="outside"):
        ingest(raw, data, inside)
    short = data.parent / "short.key"
    short.write_bytes(b"abc")
    with pytest.raises(IngestError, match="fewer"):
        ingest(raw, data, short)
