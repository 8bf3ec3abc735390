"""``fugong supplies allocate PROBLEM -o PLAN`` through Typer's test runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fugong.cli.supplies import app

runner = CliRunner()

PROBLEM = {
    "offers": [
        {"id": "O1", "supplier": "广州某医疗器械厂", "item": "KN95口罩", "quantity": 1000,
         "unit_price": 3.5, "regions": ["黄埔区", "天河区"]},
        {"id": "O2", "supplier": "S2", "item": "KN95口罩", "quantity": 100,
         "unit_price": 6.0, "regions": ["黄埔区"]},
    ],
    "requests": [
        {"id": "申请-1", "enterprise": "E1", "item": "KN95口罩", "quantity": 200, "tier": 1,
         "region": "黄埔区", "max_unit_price": 5.0},
        {"id": "申请-2", "enterprise": "E2", "item": "KN95口罩", "quantity": 1000, "tier": 2,
         "region": "黄埔区", "max_unit_price": None},
        {"id": "申请-3", "enterprise": "E3", "item": "KN95口罩", "quantity": 10, "tier": 3,
         "region": "海珠区"},
    ],
}  # fmt: skip


def run(tmp_path: Path, problem_text: str) -> tuple[int, str, Path]:
    src = tmp_path / "problem.json"
    src.write_text(problem_text, encoding="utf-8")
    out = tmp_path / "plan.json"
    result = runner.invoke(app, ["allocate", str(src), "-o", str(out)])
    return result.exit_code, result.stderr, out


def test_happy_path_writes_the_plan(tmp_path: Path) -> None:
    code, err, out = run(tmp_path, json.dumps(PROBLEM, ensure_ascii=False))
    assert code == 0, err
    text = out.read_text(encoding="utf-8")
    assert "申请-1" in text  # UTF-8, not \\u escapes
    plan = json.loads(text)
    assert plan == {
        "lines": [
            {"request": "申请-1", "offer": "O1", "quantity": 200},
            {"request": "申请-2", "offer": "O1", "quantity": 800},
            {"request": "申请-2", "offer": "O2", "quantity": 100},
        ],
        "requests": [
            {"id": "申请-1", "allocated": 200, "fill": 1.0},
            {"id": "申请-2", "allocated": 900, "fill": 0.9},
            {"id": "申请-3", "allocated": 0, "fill": 0.0},
        ],
        "tiers": [
            {"tier": 1, "requested": 200, "allocated": 200},
            {"tier": 2, "requested": 1000, "allocated": 900},
            {"tier": 3, "requested": 10, "allocated": 0},
        ],
        "cost": 1000 * 3.5 + 100 * 6.0,
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json", "problem.json"]


def test_long_option_and_summary(tmp_path: Path) -> None:
    src = tmp_path / "p.json"
    src.write_text(json.dumps(PROBLEM), encoding="utf-8")
    result = runner.invoke(app, ["allocate", str(src), "--output", str(tmp_path / "o.json")])
    assert result.exit_code == 0
    assert "1100/1210 units allocated" in result.stdout


def broken(path: str, value: object) -> str:
    """PROBLEM with the field at ``path`` (e.g. ``requests.1.quantity``) set or deleted."""
    doc = json.loads(json.dumps(PROBLEM))
    *parents, leaf = path.split(".")
    node = doc
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is KeyError:
        del node[leaf]
    else:
        node[leaf] = value
    return json.dumps(doc, ensure_ascii=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"offers": [], "requests": [', "bad JSON at line 1"),
        (broken("requests.1.tier", KeyError), "requests[1] (id 申请-2): missing field 'tier'"),
        (broken("offers.0.quantity", -5), "offers[0] (id O1): field 'quantity' must be >= 0"),
        (broken("requests.2.quantity", -5), "requests[2] (id 申请-3): field 'quantity'"),
        (broken("requests.2.id", "申请-1"), "requests[2] (id 申请-1): field 'id' duplicates"),
        (broken("offers.1.id", "O1"), "offers[1] (id O1): field 'id' duplicates offers[0]"),
        (broken("offers.1.unit_price", "6"), "offers[1] (id O2): field 'unit_price'"),
    ],
)
def test_malformed_problem_exits_2_and_writes_nothing(
    tmp_path: Path, text: str, expected: str
) -> None:
    code, err, out = run(tmp_path, text)
    assert code == 2
    assert expected in err
    assert err.startswith("error: ")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["problem.json"]


def test_missing_problem_file_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = runner.invoke(app, ["allocate", str(tmp_path / "nope.json"), "-o", str(out)])
    assert result.exit_code == 2
    assert "nope.json" in result.stderr
    assert not out.exists()


def test_not_utf8_exits_2(tmp_path: Path) -> None:
    src = tmp_path / "problem.json"
    src.write_bytes(json.dumps(PROBLEM, ensure_ascii=False).encode("gbk"))
    out = tmp_path / "plan.json"
    result = runner.invoke(app, ["allocate", str(src), "-o", str(out)])
    assert result.exit_code == 2
    assert "not UTF-8" in result.stderr
    assert not out.exists()


def test_unwritable_output_exits_2(tmp_path: Path) -> None:
    src = tmp_path / "problem.json"
    src.write_text(json.dumps(PROBLEM), encoding="utf-8")
    out = tmp_path / "missing-folder" / "plan.json"
    result = runner.invoke(app, ["allocate", str(src), "-o", str(out)])
    assert result.exit_code == 2
    assert "missing-folder" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["problem.json"]


def test_mounts_under_a_root_app(tmp_path: Path) -> None:
    root = typer.Typer()

    @root.command()
    def version() -> None:
        """A second command, so the root is a group as the real one is."""

    root.add_typer(app, name="supplies")
    src = tmp_path / "problem.json"
    src.write_text(json.dumps(PROBLEM), encoding="utf-8")
    out = tmp_path / "plan.json"
    result = runner.invoke(root, ["supplies", "allocate", str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text(encoding="utf-8"))["cost"] == 4100.0
