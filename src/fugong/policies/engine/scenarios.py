"""Scenario tests shipped with a pack: inputs -> expected status, amount and missing facts.

File format (``tests/*.yaml`` in a pack)::

    at: 2020-06-30                 # optional, default the pack's default_at
    scenarios:
      - name: layoff rate exactly 5.5 % is still allowed
        at: 2020-06-30             # optional per scenario
        input: {size: small, ui_months: 12, ...}     # omitted or null fields are unknown
        expect:
          ui-refund: {status: eligible, amount: 5000.00}
          early-restart: ineligible                   # status only
          equipment: {status: unknown, missing: [equipment_spend]}

Amounts are compared exactly to the fen; ``missing`` as a set. Scenarios with the same date are
evaluated together, in one vectorised pass, exactly as production evaluation runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from fugong.policies.engine.errors import InputError, PackError
from fugong.policies.engine.evaluation import STATUS_NAMES, evaluate, explain_rows, format_cents
from fugong.policies.engine.pack import Pack
from fugong.policies.engine.table import Table, table_from_records
from fugong.policies.engine.yamlsrc import YList, YMap, load_yaml


@dataclass(frozen=True)
class Expectation:
    measure: str
    status: str
    cents: int | None
    missing: frozenset[str] | None
    line: int


@dataclass(frozen=True)
class Scenario:
    path: str
    line: int
    name: str
    at: dt.date
    input: dict[str, Any]
    expect: tuple[Expectation, ...]


@dataclass(frozen=True)
class Failure:
    """One unmet expectation, with where it is written and what the engine said instead."""

    scenario: Scenario
    expectation: Expectation
    message: str

    def __str__(self) -> str:
        return f"{self.scenario.path}:{self.expectation.line}: {self.scenario.name}: {self.message}"


@dataclass
class Report:
    scenarios: int = 0
    checks: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def _cents(value: Any, path: str, line: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PackError(path, line, f"amount must be a number, got {value!r}")
    try:
        exact = Decimal(str(value)) * 100
    except InvalidOperation:
        raise PackError(path, line, f"amount must be a number, got {value!r}") from None
    if exact != exact.to_integral_value():
        raise PackError(path, line, f"amount {value} has more than two decimals")
    return int(exact)


def _expectation(mid: str, raw: Any, path: str, line: int) -> Expectation:
    if isinstance(raw, str):
        raw = {"status": raw}
    if not isinstance(raw, YMap) and not isinstance(raw, dict):
        raise PackError(path, line, f"expectation for {mid!r} must be a status or a mapping")
    unknown_keys = set(raw) - {"status", "amount", "missing"}
    if unknown_keys:
        raise PackError(path, line, f"unknown keys {sorted(unknown_keys)} in an expectation")
    status = raw.get("status")
    if status not in STATUS_NAMES:
        raise PackError(path, line, f"status must be one of {', '.join(STATUS_NAMES)}")
    cents = None if raw.get("amount") is None else _cents(raw["amount"], path, line)
    missing = raw.get("missing")
    if missing is not None and (
        not isinstance(missing, list) or not all(isinstance(m, str) for m in missing)
    ):
        raise PackError(path, line, "missing must be a list of field names")
    return Expectation(
        mid, str(status), cents, None if missing is None else frozenset(missing), line
    )


def load_scenarios(pack: Pack, path: Path) -> list[Scenario]:
    """Read one scenario file; PackError (file, line) for anything malformed."""
    raw = load_yaml(path)
    if not isinstance(raw, YMap) or not isinstance(raw.get("scenarios"), YList):
        raise PackError(str(path), 1, "a scenario file is a mapping with a 'scenarios' list")
    file_at = raw.get("at", pack.default_at)
    if not isinstance(file_at, dt.date):
        raise PackError(str(path), raw.line_of("at"), "'at' must be a date YYYY-MM-DD")
    measure_ids = {m.id for m in pack.measures}
    out: list[Scenario] = []
    items: YList = raw["scenarios"]
    for item, line in zip(items, items.item_lines, strict=True):
        if not isinstance(item, YMap):
            raise PackError(str(path), line, "a scenario must be a mapping")
        extra = set(item) - {"name", "at", "input", "expect"}
        if extra:
            raise PackError(str(path), line, f"unknown keys {sorted(extra)} in a scenario")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise PackError(str(path), line, "a scenario needs a 'name'")
        at = item.get("at", file_at)
        if not isinstance(at, dt.date):
            raise PackError(str(path), item.line_of("at"), "'at' must be a date YYYY-MM-DD")
        inputs = item.get("input") or {}
        expect = item.get("expect")
        if not isinstance(inputs, dict) or not isinstance(expect, YMap) or not expect:
            raise PackError(str(path), line, "a scenario needs an 'input' and an 'expect' mapping")
        checks = []
        for mid, value in expect.items():
            if mid not in measure_ids:
                raise PackError(str(path), expect.line_of(mid), f"no measure {mid!r} in the pack")
            checks.append(_expectation(mid, value, str(path), expect.line_of(mid)))
        out.append(Scenario(str(path), line, name, at, dict(inputs), tuple(checks)))
    return out


def run_scenarios(pack: Pack, files: Sequence[Path] | None = None) -> Report:
    """Run the pack's scenario files (or ``files``); failures are collected, not raised."""
    report = Report()
    scenarios: list[Scenario] = []
    for path in files if files is not None else pack.scenario_files:
        scenarios.extend(load_scenarios(pack, path))
    by_date: dict[dt.date, list[Scenario]] = {}
    for s in scenarios:
        by_date.setdefault(s.at, []).append(s)
    for at, group in by_date.items():
        try:
            table = table_from_records([s.input for s in group], pack.facts, pack.id_fact)
        except InputError as exc:
            bad = group[exc.row - 1]
            raise PackError(bad.path, bad.line, f"input of {bad.name!r}: {exc}") from None
        results = evaluate(pack, table, at)
        for row, s in enumerate(group):
            report.scenarios += 1
            for e in s.expect:
                report.checks += 1
                r = results.result(e.measure)
                status = STATUS_NAMES[int(r.status[row])]
                cents = int(r.cents[row])
                missing = frozenset(r.missing(row))
                problems = []
                if status != e.status:
                    problems.append(f"status {status}, expected {e.status}")
                if e.cents is not None and cents != e.cents:
                    problems.append(
                        f"amount {format_cents(cents)}, expected {format_cents(e.cents)}"
                    )
                if e.missing is not None and missing != e.missing:
                    problems.append(f"missing {sorted(missing)}, expected {sorted(e.missing)}")
                if problems:
                    why = _why(pack, table, at, row, e.measure)
                    report.failures.append(
                        Failure(s, e, f"{e.measure}: {'; '.join(problems)}{why}")
                    )
    return report


def _why(pack: Pack, table: Table, at: dt.date, row: int, measure: str) -> str:
    for exp in explain_rows(pack, table, at, [row]):
        if exp["measure"] == measure:
            held = ", ".join(f"{c['name']}={c['held']}" for c in exp["conditions"])
            return f" [conditions: {held}; amount: {exp['amount_formula']['with_values']}]"
    return ""
