"""Dated parameters: the value in force on the evaluation date, split by size, added as data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from fugong.policies.engine import EvaluationError, Pack, evaluate, load_pack, table_from_records


def test_value_in_force_switches_on_its_first_day(pack: Pack) -> None:
    ratio = pack.parameters["ui_refund_ratio"]
    assert ratio.split_by == "size"
    assert ratio.at(dt.date(2020, 12, 31)).value == 0.5
    p2021 = ratio.at(dt.date(2021, 1, 1))
    assert p2021.value is None
    assert p2021.for_category("large") == 0.3
    assert p2021.for_category("micro") == 0.6
    assert ratio.at(dt.date(2022, 5, 31)).for_category("small") == 0.6
    assert ratio.at(dt.date(2022, 6, 1)).for_category("small") == 0.9
    assert ratio.at(dt.date(2022, 6, 1)).for_category("large") == 0.5
    assert ratio.at(dt.date(2030, 1, 1)).for_category("large") == 0.3


def test_every_period_names_its_source(pack: Pack) -> None:
    for param in pack.parameters.values():
        for period in param.periods:
            assert period.source in pack.sources
    later = pack.parameters["ui_refund_ratio"].periods[1:]
    assert later and all(p.stand_in for p in later)


def test_before_the_first_value_is_an_error(pack: Pack) -> None:
    with pytest.raises(EvaluationError, match="has no value in force on 2019-12-31"):
        pack.parameters["ui_refund_ratio"].at(dt.date(2019, 12, 31))
    table = table_from_records([{}], pack.facts, pack.id_fact)
    with pytest.raises(EvaluationError, match="no value in force on 2020-01-01"):
        evaluate(pack, table, dt.date(2020, 1, 1))


def _sme(pack: Pack) -> list[dict[str, object]]:
    return [
        {
            "size": size,
            "insured_employees": 50,
            "avg_insured_last_year": 50,
            "layoffs_last_year": 0,
            "ui_months": 24,
            "serious_default": False,
            "zombie": False,
            "ui_premiums_last_year": 10000,
        }
        for size in ("small", "large")
    ]


def test_an_official_adds_a_period_without_code(pack: Pack, pack_copy: Path) -> None:
    path = pack_copy / "parameters" / "ui_refund.yaml"
    text = path.read_text(encoding="utf-8")
    marker = "ui_min_months:"
    addition = (
        "    - from: 2024-01-01\n"
        "      value: {large: 0.4, small: 0.75, default: 0.7}\n"
        "      source: stand-in-ui-later\n"
        "      stand_in: true\n"
    )
    path.write_text(text.replace(marker, addition + marker), encoding="utf-8")
    changed = load_pack(pack_copy)
    table = table_from_records(_sme(changed), changed.facts, changed.id_fact)
    r2023 = evaluate(changed, table, dt.date(2023, 12, 31)).result("ui-refund")
    r2024 = evaluate(changed, table, dt.date(2024, 1, 1)).result("ui-refund")
    assert r2023.cents.tolist() == [600000, 300000]
    assert r2024.cents.tolist() == [750000, 400000]
    # The built-in pack is untouched.
    base = evaluate(
        pack, table_from_records(_sme(pack), pack.facts, pack.id_fact), dt.date(2024, 1, 1)
    )
    assert base.result("ui-refund").cents.tolist() == [600000, 300000]


def test_default_date_is_the_packs(pack: Pack) -> None:
    table = table_from_records(_sme(pack), pack.facts, pack.id_fact)
    results = evaluate(pack, table)
    assert results.at == pack.default_at == dt.date(2020, 6, 30)
    assert results.result("ui-refund").cents.tolist() == [500000, 500000]
