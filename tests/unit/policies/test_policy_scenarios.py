"""The pack's scenario tests pass, and a wrong expectation is caught and located."""

from __future__ import annotations

from pathlib import Path

import pytest

from fugong.policies.engine import Pack, load_pack, run_scenarios
from fugong.policies.engine.scenarios import load_scenarios


def test_builtin_scenarios_all_pass(pack: Pack) -> None:
    report = run_scenarios(pack)
    assert report.ok, "\n".join(str(f) for f in report.failures)
    assert report.scenarios >= 80
    assert len(pack.scenario_files) == 5


def test_every_measure_has_eligible_ineligible_and_unknown_scenarios(pack: Pack) -> None:
    seen: dict[str, set[str]] = {m.id: set() for m in pack.measures}
    for path in pack.scenario_files:
        for scenario in load_scenarios(pack, path):
            for e in scenario.expect:
                seen[e.measure].add(e.status)
    for measure, statuses in seen.items():
        assert statuses == {"eligible", "ineligible", "unknown"}, measure


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "equipment: {status: eligible, amount: 1000000.00}",
            "equipment: {status: eligible, amount: 1000000.01}",
            "equipment: amount 1000000.00, expected 1000000.01",
        ),
        (
            "early-restart: {status: ineligible, amount: 0}",
            "early-restart: {status: eligible, amount: 0}",
            "early-restart: status ineligible, expected eligible",
        ),
        (
            "early-restart: {status: unknown, missing: [restart_date]}",
            "early-restart: {status: unknown, missing: [emergency_products]}",
            "missing ['restart_date'], expected ['emergency_products']",
        ),
    ],
)
def test_a_wrong_expectation_fails_with_its_line(
    pack_copy: Path, old: str, new: str, message: str
) -> None:
    path = pack_copy / "tests" / "nuanqi.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    report = run_scenarios(load_pack(pack_copy))
    assert len(report.failures) == 1
    failure = report.failures[0]
    lines = path.read_text("utf-8").splitlines()
    line = next(i for i, text in enumerate(lines, 1) if new in text)
    assert str(failure).startswith(f"{path}:{line}: ")
    assert message in str(failure)
    # The failure explains itself: conditions and the formula with its numbers.
    assert "conditions:" in str(failure)
