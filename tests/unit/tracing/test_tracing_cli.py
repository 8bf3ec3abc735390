"""The ``fugong tracing`` commands: formats, exit codes, the generate → build → query path."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import typer
from typer.testing import CliRunner

from fugong.cli.tracing import app
from fugong.tracing.common import CompanionQuery, parse_at
from fugong.tracing.engines.reference import ReferenceEngine

from .conftest import AT

root = typer.Typer()
root.add_typer(app, name="tracing")
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(root, ["tracing", *args])
    return result.exit_code, result.stdout, result.stderr


def test_companions_json_matches_the_engine(edge_dir: Path) -> None:
    code, out, _ = run(
        "companions",
        str(edge_dir),
        "--case",
        "case",
        "--at",
        AT.isoformat(),
        "--days",
        "3",
        "--purpose",
        "GZ-2022-1101",
    )
    assert code == 0
    trail = (edge_dir / "audit" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    entry = json.loads(trail[-1])
    assert entry["purpose"] == "GZ-2022-1101" and entry["subject"] == "case"
    rows = json.loads(out)
    expected = ReferenceEngine().companions(edge_dir, CompanionQuery("case", AT, days=3))
    assert rows == [c.to_json() for c in expected]
    assert rows[0]["first_contact"].endswith("Z")


def test_formats_and_second_order(edge_dir: Path) -> None:
    at = "2022-11-04T08:00:00+08:00"  # the same instant as AT, written in Beijing time
    assert parse_at(at) == AT
    code, out, _ = run(
        "second-order",
        str(edge_dir),
        "--case",
        "case",
        "--at",
        at,
        "--days",
        "3",
        "--format",
        "csv",
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert any(r["uid"] == "frank" and r["via"] == "alice" for r in rows)
    code, out, _ = run(
        "trajectory", str(edge_dir), "--uid", "case", "--at", at, "--days", "3", "--format", "table"
    )
    assert code == 0 and out.splitlines()[0].split()[:4] == ["grid", "city", "start", "end"]
    code, out, _ = run("itinerary", str(edge_dir), "--uid", "helen", "--at", at, "--days", "3")
    assert code == 0 and [r["city"] for r in json.loads(out)] == ["上海市"]


def test_trajectory_names_each_stays_city(edge_dir: Path, border_dir: Path) -> None:
    """helen crosses from 上海市 into 广州市; walker's 71:70 is a border grid (tie: 佛山市)."""
    code, out, _ = run("trajectory", str(edge_dir), "--uid", "helen", "--at", AT.isoformat())
    assert code == 0
    rows = json.loads(out)
    expected = ReferenceEngine().trajectory(edge_dir, "helen", AT)
    assert rows == [t.to_json() for t in expected]
    assert [r["city"] for r in rows] == ["上海市", "广州市"]
    code, out, _ = run(
        "trajectory",
        str(border_dir),
        "--uid",
        "walker",
        "--at",
        AT.isoformat(),
        "--format",
        "csv",
        "--engine",
        "duckdb",
    )
    assert code == 0
    got = [(r["grid"], r["city"]) for r in csv.DictReader(io.StringIO(out))]
    assert got == [("70:70", "广州市"), ("71:70", "佛山市"), ("72:70", "广州市")]
    code, out, _ = run(
        "trajectory",
        str(border_dir),
        "--uid",
        "walker",
        "--at",
        AT.isoformat(),
        "--format",
        "table",
    )
    lines = out.splitlines()
    assert code == 0 and lines[2].split()[:2] == ["71:70", "佛山市"] and lines[-1] == "(3 rows)"


def test_unknown_uid_and_bad_data_dir(edge_dir: Path, tmp_path: Path) -> None:
    code, out, _ = run("trajectory", str(edge_dir), "--uid", "nobody", "--at", AT.isoformat())
    assert code == 0 and json.loads(out) == []
    code, out, err = run(
        "companions", str(tmp_path / "nope"), "--case", "x", "--at", AT.isoformat()
    )
    assert code == 2 and out == "" and "not found" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run("itinerary", str(tmp_path / "empty"), "--uid", "x", "--at", AT.isoformat())
    assert code == 2 and "cells.parquet" in err
    code, _, err = run("build", str(tmp_path / "empty"))
    assert code == 2 and "cells.parquet" in err
    code, _, err = run("trajectory", str(edge_dir), "--uid", "x", "--at", "yesterday")
    assert code == 2


def test_generate_build_ingest_purge(tmp_path: Path) -> None:
    d = tmp_path / "city"
    code, out, _ = run("generate", str(d), "--subscribers", "30", "--days", "2", "--seed", "3")
    assert code == 0 and json.loads(out)["records"] > 0
    code, out, _ = run("build", str(d))
    assert code == 0 and json.loads(out)["built"] == ["2022-11-01", "2022-11-02"]
    code, out, _ = run("build", str(d))
    assert json.loads(out)["built"] == []
    cells = pq.read_table(d / "cells.parquet").column("cell_id").to_pylist()
    raw = tmp_path / "raw.csv"
    raw.write_text(f"13800138000,2022-11-02T10:00:00Z,{cells[0]}\n13800138000,bad,{cells[0]}\n")
    key = tmp_path / "key"
    key.write_bytes(b"0123456789abcdef0123")
    code, out, err = run("ingest", str(raw), str(d), "--key-file", str(key))
    assert code == 0 and json.loads(out)["errors"] == [{"line": 2, "reason": "bad time"}]
    assert "13800138000" not in out + err
    code, _, err = run("ingest", str(raw), str(d), "--key-file", str(d / "cells.parquet"))
    assert code == 2 and "outside" in err
    code, out, _ = run("purge", str(d), "--older-than", "1d", "--today", "2022-11-03")
    assert code == 0 and json.loads(out)["removed_days"] == ["2022-11-01"]
