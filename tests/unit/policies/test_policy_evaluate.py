"""The public API end to end: CSV in, results and explanations out, errors naming row/column."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from fugong.policies.engine import (
    InputError,
    Pack,
    evaluate,
    explain_rows,
    format_cents,
    read_enterprises_csv,
    table_from_records,
)
from fugong.policies.engine.evaluation import to_cents

from .conftest import COLUMNS, GOOD_ROW, uscc, write_csv


def test_csv_to_results(pack: Pack, tmp_path: Path) -> None:
    rows = [{"uscc": uscc(1), **GOOD_ROW}, {"uscc": uscc(2), "size": "large"}]
    table = read_enterprises_csv(write_csv(tmp_path / "e.csv", rows), pack)
    assert table.ids == (uscc(1), uscc(2))
    results = evaluate(pack, table)
    out = list(results.rows())
    assert len(out) == 22
    assert out[0] == (uscc(1), "ui-refund", "eligible", "43200.00")
    assert out[10] == (uscc(1), "si-exemption", "eligible", "231000.00")
    assert out[11] == (uscc(2), "ui-refund", "unknown", "0.00")
    si = results.result("si-exemption")
    assert si.missing(1) == ["monthly_employer_si"]
    assert si.missing(0) == []
    totals = results.totals()
    assert totals["ui-refund"] == {
        "eligible": 1,
        "ineligible": 0,
        "unknown": 1,
        "amount": "43200.00",
    }


def test_explanations_show_values_and_verdicts(pack: Pack, tmp_path: Path) -> None:
    rows = [{"uscc": uscc(1), **GOOD_ROW, "restart_date": ""}]
    table = read_enterprises_csv(write_csv(tmp_path / "e.csv", rows), pack)
    results = evaluate(pack, table, explain=True)
    assert results.explanations is not None and len(results.explanations) == 11
    by_measure = {e["measure"]: e for e in results.explanations}
    early = by_measure["early-restart"]
    assert early["status"] == "unknown" and early["missing"] == ["restart_date"]
    assert [c["held"] for c in early["conditions"]] == [True, "unknown"]
    assert early["conditions"][1]["reads"] == {"restart_date": None}
    equipment = by_measure["equipment"]
    assert equipment["amount_formula"]["with_values"] == "min(0.8 * 150000, 1000000)"
    assert equipment["amount_formula"]["value"] == 120000
    assert equipment["amount"] == "120000.00"
    ui = by_measure["ui-refund"]
    assert ui["variables"][0]["name"] == "layoff_rate"
    assert ui["variables"][0]["value"] == round(4 / 118, 6)
    layoff = ui["conditions"][3]
    assert layoff["held"] is True
    assert layoff["reads"]["size"] == "medium"
    assert layoff["reads"]["param.ui_layoff_cap_sme"] == 0.055
    assert ui["stand_in"] is False
    assert ui["stand_in_parameters"] == ["urban_registered_unemployment_rate"]
    hiring = by_measure["hiring-subsidy"]
    assert hiring["stand_in"] is True
    assert hiring["stand_in_parameters"] == ["hiring_subsidy_per_hire"]
    assert hiring["source"]["document"] == "穗人社函〔2020〕8号（金额未经核实，见各项 stand_in）"


def test_explanations_agree_with_the_fast_path(pack: Pack) -> None:
    rng = np.random.default_rng(7)
    records = []
    for _ in range(60):
        rec: dict[str, object] = {
            "size": str(rng.choice(["large", "medium", "small", "micro"])),
            "insured_employees": int(rng.integers(1, 60)),
            "avg_insured_last_year": int(rng.integers(0, 60)),
            "layoffs_last_year": int(rng.integers(0, 8)),
            "ui_months": int(rng.integers(6, 18)),
            "serious_default": bool(rng.random() < 0.2),
            "zombie": bool(rng.random() < 0.2),
            "ui_premiums_last_year": float(rng.integers(0, 10**6)) / 100,
            "monthly_employer_si": float(rng.integers(0, 10**6)) / 100,
        }
        records.append({k: v for k, v in rec.items() if rng.random() > 0.15})
    table = table_from_records(records, pack.facts, pack.id_fact)
    results = evaluate(pack, table, explain=True)
    assert results.explanations is not None
    for k, exp in enumerate(results.explanations):
        row, m = divmod(k, len(pack.measures))
        r = results.measures[m]
        assert exp["measure"] == r.measure.id
        assert exp["status"] in ("eligible", "ineligible", "unknown")
        assert exp["amount"] == format_cents(int(r.cents[row]))
        assert exp["missing"] == r.missing(row)
        held = [c["held"] for c in exp["conditions"]]
        if exp["status"] == "eligible":
            assert all(h is True for h in held)
        elif exp["status"] == "ineligible":
            assert False in held


def test_explain_selected_rows_only(pack: Pack) -> None:
    table = table_from_records([{"size": "large"}, {"size": "small"}], pack.facts, pack.id_fact)
    results = evaluate(pack, table, explain=[1])
    assert results.explanations is not None
    assert {e["uscc"] for e in results.explanations} == {"row-2"}
    again = list(explain_rows(pack, table, dt.date(2021, 1, 1), [0]))
    assert again[0]["at"] == "2021-01-01"


@pytest.mark.parametrize(
    ("yuan", "cents"),
    [
        (1.005, 101),
        (2.675, 268),
        (-2.675, -268),
        (0.125, 13),
        (6172.835, 617284),
        (1e9, 10**11),
        (0.0, 0),
    ],
)
def test_rounding_is_half_up_to_the_fen(yuan: float, cents: int) -> None:
    assert to_cents(np.array([yuan])).tolist() == [cents]


def test_format_cents() -> None:
    assert [format_cents(c) for c in (0, 5, 100, 123456, -250)] == [
        "0.00",
        "0.05",
        "1.00",
        "1234.56",
        "-2.50",
    ]


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        ("uscc", "91440112MA5000001X", "wrong check character"),
        ("uscc", "9144011", "a USCC has 18 characters"),
        ("uscc", "", "the USCC is empty"),
        ("insured_employees", "12a", "'12a' is not a number"),
        ("insured_employees", "1,200", "'1,200' is not a number"),
        ("insured_employees", "12.5", "not a whole number"),
        ("monthly_rent", "-5", "below the minimum 0"),
        ("monthly_rent", "nan", "'nan' is not a number"),
        ("zombie", "maybe", "'maybe' is not a yes/no value"),
        ("restart_date", "2020/02/09", "'2020/02/09' is not a date (YYYY-MM-DD)"),
        ("restart_date", "2020-02-30", "'2020-02-30' is not a real date"),
        ("size", "huge", "'huge' is not one of large, medium, small, micro"),
    ],
)
def test_bad_cells_name_row_line_and_column(
    pack: Pack, tmp_path: Path, column: str, value: str, fragment: str
) -> None:
    rows = [{"uscc": uscc(1), **GOOD_ROW}, {"uscc": uscc(2), **GOOD_ROW, column: value}]
    with pytest.raises(InputError) as info:
        read_enterprises_csv(write_csv(tmp_path / "e.csv", rows), pack)
    err = info.value
    assert (err.row, err.line, err.column) == (2, 3, column)
    assert fragment in err.reason
    assert str(err).startswith(f"row 2 (line 3), column {column!r}: ")


def test_missing_column_names_the_measures(pack: Pack, tmp_path: Path) -> None:
    columns = [c for c in COLUMNS if c != "restart_date"]
    path = write_csv(tmp_path / "e.csv", [{"uscc": uscc(1), **GOOD_ROW}], columns)
    with pytest.raises(InputError, match="missing column 'restart_date', needed by early-restart"):
        read_enterprises_csv(path, pack)


def test_optional_and_unknown_columns(pack: Pack, tmp_path: Path) -> None:
    columns = [c for c in COLUMNS if c not in ("name", "district")] + ["remarks"]
    path = write_csv(tmp_path / "e.csv", [{"uscc": uscc(1), **GOOD_ROW, "remarks": "x"}], columns)
    table = read_enterprises_csv(path, pack)
    assert "remarks" not in table.columns and "name" not in table.columns


def test_duplicate_uscc_and_ragged_rows(pack: Pack, tmp_path: Path) -> None:
    rows = [{"uscc": uscc(1), **GOOD_ROW}, {"uscc": uscc(1), **GOOD_ROW}]
    with pytest.raises(InputError, match=r"row 2 \(line 3\), column 'uscc': duplicate USCC"):
        read_enterprises_csv(write_csv(tmp_path / "e.csv", rows), pack)
    path = tmp_path / "ragged.csv"
    write_csv(path, [{"uscc": uscc(1), **GOOD_ROW}])
    path.write_text(path.read_text("utf-8") + "a,b\n\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"row 2 \(line 3\): has 2 cells, the header has 28"):
        read_enterprises_csv(path, pack)


def test_blank_lines_and_bom_are_tolerated(pack: Pack, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", [{"uscc": uscc(1), **GOOD_ROW}])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes() + b"\n\n")
    assert read_enterprises_csv(path, pack).ids == (uscc(1),)


def test_unreadable_input(pack: Pack, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_enterprises_csv(tmp_path / "absent.csv", pack)
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="empty; expected a header"):
        read_enterprises_csv(empty, pack)
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"uscc,name\n" + "x,Caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_enterprises_csv(latin, pack)


@pytest.mark.parametrize(
    "text",
    [
        "1e5",
        "nan",
        "inf",
        "-inf",
        "1.2.3",
        "1-2",
        "+.5",
        "1.",
        "-0",
        " 7 ",
        "٣",
        "1_000",
        "0x10",
        "1 000",
        "--1",
        ".",
        "+",
        "12.50",
        "1\n2",
    ],
)
def test_csv_numbers_parse_exactly_like_single_cells(tmp_path: Path, text: str) -> None:
    from fugong.policies.engine.table import FactSpec, parse_cell, read_csv_table

    facts = {"uscc": FactSpec("uscc", "id"), "x": FactSpec("x", "number")}
    path = tmp_path / "n.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv_writer = csv.writer(handle)
        csv_writer.writerows([["uscc", "x"], [uscc(1), "5"], [uscc(2), text]])
    try:
        expected: object = parse_cell(facts["x"], text)
    except ValueError as exc:
        expected = str(exc)
    try:
        table = read_csv_table(path, facts, "uscc", {"x": ["m"]})
        got: object = float(table.columns["x"].values[1])
    except InputError as exc:
        assert (exc.row, exc.column) == (2, "x")
        got = exc.reason
    assert got == expected
