"""``fugong policies evaluate`` and ``fugong policies test`` through Typer's CliRunner."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fugong.cli.policies import app

from .conftest import COLUMNS, GOOD_ROW, uscc, write_csv

runner = CliRunner()


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def test_evaluate_writes_results_and_explanations(tmp_path: Path) -> None:
    src = write_csv(
        tmp_path / "e.csv",
        [{"uscc": uscc(1), **GOOD_ROW}, {"uscc": uscc(2), **GOOD_ROW, "size": "large"}],
    )
    out, explain = tmp_path / "r.csv", tmp_path / "x.jsonl"
    result = runner.invoke(
        app,
        ["evaluate", "--pack", "huangpu-2020", str(src), "-o", str(out), "--explain", str(explain)],
    )
    assert result.exit_code == 0, result.output
    assert "2 enterprises x 11 measures" in result.stdout
    assert "hiring-subsidy" in result.stdout and "[stand-in amount]" in result.stdout
    rows = _rows(out)
    assert rows[0] == ["uscc", "measure", "status", "amount"]
    assert len(rows) == 1 + 2 * 11
    assert rows[1] == [uscc(1), "ui-refund", "eligible", "43200.00"]
    assert rows[12] == [uscc(2), "ui-refund", "ineligible", "0.00"]  # 3.4 % > 2.15 % for large
    assert rows[22] == [uscc(2), "si-exemption", "eligible", "52500.00"]
    lines = explain.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 22
    first = json.loads(lines[0])
    assert first["measure"] == "ui-refund" and first["conditions"][0]["held"] is True
    assert "失业保险" in lines[0]  # UTF-8, not \\u escapes


def test_evaluate_at_a_later_date(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "e.csv", [{"uscc": uscc(1), **GOOD_ROW}])
    out = tmp_path / "r.csv"
    result = runner.invoke(app, ["evaluate", str(src), "-o", str(out), "--at", "2022-06-01"])
    assert result.exit_code == 0, result.output
    assert _rows(out)[1] == [uscc(1), "ui-refund", "eligible", "77760.00"]  # 90 % of 86,400


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"uscc": "91440112MA5000001X"}, "row 2 (line 3), column 'uscc': 校验码错误"),
        ({"ui_months": "twelve"}, "row 2 (line 3), column 'ui_months': 'twelve' is not a number"),
        (
            {"restart_date": "10/02/2020"},
            "row 2 (line 3), column 'restart_date': '10/02/2020' is not a date",
        ),
        ({"zombie": "perhaps"}, "row 2 (line 3), column 'zombie': 'perhaps' is not a yes/no value"),
    ],
)
def test_bad_cells_fail_with_row_and_column(
    tmp_path: Path, change: dict[str, str], message: str
) -> None:
    src = write_csv(
        tmp_path / "e.csv", [{"uscc": uscc(1), **GOOD_ROW}, {"uscc": uscc(2), **GOOD_ROW, **change}]
    )
    out, explain = tmp_path / "r.csv", tmp_path / "x.jsonl"
    result = runner.invoke(app, ["evaluate", str(src), "-o", str(out), "--explain", str(explain)])
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""
    assert not out.exists() and not explain.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.csv"]


def test_missing_column_is_named(tmp_path: Path) -> None:
    columns = [c for c in COLUMNS if c != "monthly_employer_si"]
    src = write_csv(tmp_path / "e.csv", [{"uscc": uscc(1), **GOOD_ROW}], columns)
    out = tmp_path / "r.csv"
    result = runner.invoke(app, ["evaluate", str(src), "-o", str(out)])
    assert result.exit_code == 2
    assert "missing column 'monthly_employer_si', needed by si-exemption" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "2020-13-01"], "--at '2020-13-01' is not a date"),
        (["--at", "2019-06-30"], "has no value in force on 2019-06-30"),
        (["--pack", "nope"], "no such pack"),
    ],
)
def test_usage_errors_exit_2_and_write_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    src = write_csv(tmp_path / "e.csv", [{"uscc": uscc(1), **GOOD_ROW}])
    out = tmp_path / "r.csv"
    result = runner.invoke(app, ["evaluate", str(src), "-o", str(out), *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert not out.exists()


def test_missing_input_file_and_output_dir(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["evaluate", str(tmp_path / "none.csv"), "-o", str(tmp_path / "r.csv")]
    )
    assert result.exit_code == 2 and "cannot read" in result.stderr
    src = write_csv(tmp_path / "e.csv", [{"uscc": uscc(1), **GOOD_ROW}])
    result = runner.invoke(app, ["evaluate", str(src), "-o", str(tmp_path / "no" / "r.csv")])
    assert result.exit_code == 2 and "no such directory" in result.stderr


def test_pack_test_command_passes() -> None:
    result = runner.invoke(app, ["test", "huangpu-2020"])
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.stdout


def test_pack_test_command_reports_failures(pack_copy: Path) -> None:
    path = pack_copy / "tests" / "si-exemption.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("amount: 25000}", "amount: 50000}"), encoding="utf-8")
    result = runner.invoke(app, ["test", str(pack_copy)])
    assert result.exit_code == 1
    assert "FAIL" in result.stderr and "large firm gets 5 months halved" in result.stderr
    assert "amount 25000.00, expected 50000.00" in result.stderr
    assert "1 failed" in result.stderr


def test_pack_test_command_on_a_broken_pack(pack_copy: Path) -> None:
    path = pack_copy / "measures" / "first-job.yaml"
    path.write_text(
        path.read_text("utf-8").replace("first_job_hires > 0", "first_job_hires >"), "utf-8"
    )
    result = runner.invoke(app, ["test", str(pack_copy)])
    assert result.exit_code == 2
    assert f"{path}:" in result.stderr and "expected a value" in result.stderr


def test_explanations_are_written_in_slices_in_row_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fugong.cli.policies as cli

    monkeypatch.setattr(cli, "EXPLAIN_SLICE", 2)
    src = write_csv(tmp_path / "e.csv", [{"uscc": uscc(k), **GOOD_ROW} for k in range(5)])
    explain = tmp_path / "x.jsonl"
    result = runner.invoke(
        app, ["evaluate", str(src), "-o", str(tmp_path / "r.csv"), "--explain", str(explain)]
    )
    assert result.exit_code == 0, result.output
    items = [json.loads(line) for line in explain.read_text(encoding="utf-8").splitlines()]
    assert [(i["uscc"], i["measure"]) for i in items] == [
        (r[0], r[1]) for r in _rows(tmp_path / "r.csv")[1:]
    ]


def test_header_only_input_gives_header_only_output(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "e.csv", [])
    out = tmp_path / "r.csv"
    result = runner.invoke(app, ["evaluate", str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert _rows(out) == [["uscc", "measure", "status", "amount"]]


def test_outputs_are_ordinary_files(tmp_path: Path) -> None:
    import os

    src = write_csv(tmp_path / "e.csv", [{"uscc": uscc(1), **GOOD_ROW}])
    out, explain = tmp_path / "r.csv", tmp_path / "x.jsonl"
    result = runner.invoke(app, ["evaluate", str(src), "-o", str(out), "--explain", str(explain)])
    assert result.exit_code == 0, result.output
    umask = os.umask(0)
    os.umask(umask)
    for path in (out, explain):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask
