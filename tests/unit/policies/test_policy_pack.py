"""Loading packs: the built-in pack is complete; a broken pack names its file, line and reason."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from fugong.policies.engine import Pack, PackError, load_pack, run_scenarios

MEASURES = (
    "ui-refund",
    "early-restart",
    "equipment",
    "emergency-retail",
    "output-growth",
    "soe-rent",
    "incubator-rent",
    "hiring-subsidy",
    "agency-referral",
    "first-job",
    "si-exemption",
)


def test_builtin_pack_has_the_eleven_measures_with_full_metadata(pack: Pack) -> None:
    assert tuple(m.id for m in pack.measures) == MEASURES
    for m in pack.measures:
        assert m.title and m.target and m.content and m.conditions_text and m.office
        assert m.mode in ("automatic", "application")
        assert m.time_limit.processing
        assert m.source in pack.sources
        assert m.conditions
    assert {m.id for m in pack.measures if m.stand_in} == {"hiring-subsidy", "agency-referral"}
    assert {m.id for m in pack.measures if m.mode == "automatic"} == {"soe-rent", "si-exemption"}
    assert pack.measure("ui-refund").time_limit.apply_by == dt.date(2020, 12, 31)
    assert "稳岗返还承诺书" in pack.measure("ui-refund").documents


def test_needed_columns_cover_the_input_contract(pack: Pack) -> None:
    needed = pack.needed_columns()
    assert needed["size"] == ["ui-refund", "si-exemption"]
    assert "name" not in needed and "district" not in needed and "uscc" not in needed
    assert len(needed) == 25


def test_unknown_pack_name_lists_the_available_ones() -> None:
    with pytest.raises(PackError, match="huangpu-2020"):
        load_pack("no-such-pack")


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("file", "old", "new", "needle", "reason"),
    [
        (
            "measures/equipment.yaml",
            "expr: equipment_spend > 0",
            "expr: equipment_spnd > 0",
            "equipment_spnd",
            "unknown name 'equipment_spnd'",
        ),
        (
            "measures/equipment.yaml",
            "expr: equipment_spend > 0",
            "expr: equipment_spend + 0",
            "equipment_spend + 0",
            "must be bool, but this expression gives number",
        ),
        (
            "measures/equipment.yaml",
            "expr: equipment_spend > 0",
            "expr: equipment_spend.__class__",
            "__class__",
            "names may not start with an underscore",
        ),
        (
            "measures/early-restart.yaml",
            'date("2020-02-10")',
            'date("2020-02-31")',
            "2020-02-31",
            "not a date",
        ),
        (
            "measures/output-growth.yaml",
            "else if output_2019 >= param.output_band_2_min",
            "else if output_2019 >== param.output_band_2_min",
            ">==",
            "(expression line 2, column 23)",
        ),
        (
            "measures/soe-rent.yaml",
            "source: nuanqi-8",
            "source: nuanqi-9",
            "nuanqi-9",
            "source 'nuanqi-9' is not declared",
        ),
        (
            "measures/soe-rent.yaml",
            "office: 出租物业的区属国有企业",
            "ofice: 出租物业的区属国有企业",
            "ofice",
            "unknown field 'ofice'",
        ),
        (
            "measures/soe-rent.yaml",
            "mode: automatic",
            "mode: sometimes",
            "mode: sometimes",
            "mode must be one of automatic, application",
        ),
        (
            "measures/soe-rent.yaml",
            "id: soe-rent",
            "id: soe-rents",
            "id: soe-rents",
            "must match the file name",
        ),
        (
            "measures/soe-rent.yaml",
            "  - name: pays_rent",
            "  - name: soe_tenant  # again",
            "# again",
            "condition 'soe_tenant' defined twice",
        ),
        (
            "measures/soe-rent.yaml",
            "title_en: Rent relief in district state-owned premises",
            "title_en: Rent relief\ntarget: again",
            "target: 租用区属国有企业物业的企业",
            "duplicate key 'target'",
        ),
        (
            "measures/soe-rent.yaml",
            "documents: []",
            "documents: [] ]",
            "documents: [] ]",
            "not valid YAML",
        ),
        (
            "parameters/nuanqi.yaml",
            "{from: 2020-02-04, value: 0.8, source: nuanqi-8}",
            "{from: 2020-02-04, value: eighty, source: nuanqi-8}",
            "eighty",
            "value must be a number",
        ),
        (
            "parameters/nuanqi.yaml",
            "{from: 2020-02-04, value: 0.8, source: nuanqi-8}",
            "{from: 2020-02-31, value: 0.8, source: nuanqi-8}",
            "2020-02-31",
            "'2020-02-31' is not a real date",
        ),
        (
            "parameters/ui_refund.yaml",
            "    - from: 2022-06-01",
            "    - from: 2020-06-01",
            "from: 2020-06-01",
            "increasing 'from' order",
        ),
        (
            "parameters/ui_refund.yaml",
            "value: {large: 0.5, default: 0.9}",
            "value: {large: 0.5, small: 0.9}",
            "small: 0.9",
            "no value for medium, micro and no default",
        ),
        (
            "parameters/ui_refund.yaml",
            "value: {large: 0.5, default: 0.9}",
            "value: {huge: 0.5, default: 0.9}",
            "huge",
            "'huge' is not a value of size",
        ),
        (
            "facts.yaml",
            "zombie: {type: bool, label: 僵尸企业}",
            "zombie: {type: boolean, label: 僵尸企业}",
            "boolean",
            "unknown fact type 'boolean'",
        ),
        (
            "pack.yaml",
            "  - first-job\n",
            "  - first-jobs\n",
            "first-jobs",
            "has no file measures/first-jobs.yaml",
        ),
        (
            "pack.yaml",
            "default_at: 2020-06-30",
            "default_at: 2020-01-15",
            "default_at",
            "has no value on default_at 2020-01-15",
        ),
    ],
)
def test_broken_pack_names_file_line_and_reason(
    pack_copy: Path, file: str, old: str, new: str, needle: str, reason: str
) -> None:
    path = pack_copy / file
    _edit(path, old, new)
    with pytest.raises(PackError) as info:
        load_pack(pack_copy)
    err = info.value
    assert Path(err.path) == path
    assert err.line == _line_of(path, needle), str(err)
    assert reason in err.reason
    assert str(err).startswith(f"{path}:{err.line}: ")


def test_missing_required_field_points_at_the_measure(pack_copy: Path) -> None:
    path = pack_copy / "measures" / "emergency-retail.yaml"
    _edit(path, "office: 黄埔区商务局（待确认）\n", "")
    with pytest.raises(PackError, match="missing required field 'office'") as info:
        load_pack(pack_copy)
    assert Path(info.value.path) == path and info.value.line == 1


def test_unlisted_measure_file_is_an_error(pack_copy: Path) -> None:
    (pack_copy / "measures" / "extra.yaml").write_text("id: extra\n", encoding="utf-8")
    with pytest.raises(PackError, match="not listed: extra"):
        load_pack(pack_copy)


def test_scenario_file_errors_name_file_and_line(pack_copy: Path) -> None:
    path = pack_copy / "tests" / "employment.yaml"
    _edit(
        path,
        "      hiring-subsidy: {status: eligible, amount: 3000}",
        "      hiring-subsidies: eligible",
    )
    loaded = load_pack(pack_copy)
    with pytest.raises(PackError, match="no measure 'hiring-subsidies'") as info:
        run_scenarios(loaded)
    assert info.value.line == _line_of(path, "hiring-subsidies")


def test_scenario_input_errors_name_the_scenario(pack_copy: Path) -> None:
    path = pack_copy / "tests" / "employment.yaml"
    _edit(
        path,
        "input: {key_category: true, epidemic_hires: 3}",
        "input: {key_category: maybe, epidemic_hires: 3}",
    )
    loaded = load_pack(pack_copy)
    with pytest.raises(PackError, match="column 'key_category': 'maybe' is not a yes/no value"):
        run_scenarios(loaded)
