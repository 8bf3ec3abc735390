"""Evaluate a pack over an enterprise table: statuses, amounts and (on request) explanations.

A measure is *eligible* for a row when all its conditions are true and its amount is known,
*ineligible* when some condition is false (whatever else is unknown), and *unknown* otherwise;
an unknown row names the inputs (or divisions by zero) that left it open. Amounts are rounded
half-up to the fen (0.01 yuan) and are 0 unless eligible.

The fast path is a handful of numpy operations per expression node over all rows; explanations
re-run the same compiled measures on just the rows asked for and read off the values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from fugong.policies.engine import expr as ex
from fugong.policies.engine.errors import EvaluationError
from fugong.policies.engine.pack import Measure, Pack
from fugong.policies.engine.params import Period
from fugong.policies.engine.table import Table
from fugong.policies.engine.vector import (
    BOOL,
    DATE,
    NUM,
    STR,
    Ctx,
    V,
    and3,
    as_array,
)

INELIGIBLE: Final = 0
ELIGIBLE: Final = 1
UNKNOWN: Final = 2
STATUS_NAMES: Final = ("ineligible", "eligible", "unknown")


@dataclass(frozen=True)
class MeasureResult:
    """One measure over all rows: ``status`` codes, ``cents`` (int64), unknown bits."""

    measure: Measure
    status: NDArray[np.int8]
    cents: NDArray[np.int64]
    missing_bits: NDArray[np.uint64] | None

    def missing(self, row: int) -> list[str]:
        """The inputs whose absence leaves this row unknown (empty unless status is unknown)."""
        if self.missing_bits is None:
            return []
        return self.measure.sources.decode(int(self.missing_bits[row]))


@dataclass(frozen=True)
class Results:
    """Per (enterprise, measure) outcomes in table row order and pack measure order."""

    pack: Pack
    at: dt.date
    ids: tuple[str, ...]
    measures: tuple[MeasureResult, ...]
    explanations: tuple[dict[str, Any], ...] | None = None

    def result(self, measure_id: str) -> MeasureResult:
        for r in self.measures:
            if r.measure.id == measure_id:
                return r
        raise KeyError(measure_id)

    def rows(self) -> Iterator[tuple[str, str, str, str]]:
        """``(uscc, measure, status, amount)`` rows, enterprise-major, amounts as ``0.00`` text."""
        names = np.array(STATUS_NAMES)
        statuses = [names[r.status].tolist() for r in self.measures]
        amounts = []
        for r in self.measures:
            # Most amounts repeat (0.00 above all): format each distinct one once.
            distinct, inverse = np.unique(r.cents, return_inverse=True)
            text = np.array([format_cents(c) for c in distinct.tolist()], dtype=str)
            amounts.append(text[inverse].tolist())
        ids = [r.measure.id for r in self.measures]
        for i, uscc in enumerate(self.ids):
            for k, mid in enumerate(ids):
                yield uscc, mid, statuses[k][i], amounts[k][i]

    def totals(self) -> dict[str, dict[str, Any]]:
        """Per measure: how many rows are eligible/ineligible/unknown and the eligible sum."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.measures:
            counts = np.bincount(r.status, minlength=3)
            out[r.measure.id] = {
                "eligible": int(counts[ELIGIBLE]),
                "ineligible": int(counts[INELIGIBLE]),
                "unknown": int(counts[UNKNOWN]),
                "amount": format_cents(int(r.cents.sum())),
            }
        return out


def format_cents(cents: int) -> str:
    """Integer fen as yuan text with exactly two decimals (no float formatting involved)."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"


def to_cents(amount: NDArray[np.float64]) -> NDArray[np.int64]:
    """Round yuan half-up (四舍五入) to whole fen.

    Rounding to 6 places first removes binary noise such as 1.005 * 100 = 100.49999999999999,
    so a half fen written in decimal rounds up as an official expects. Done in place: this runs
    over every eligible row of every measure.
    """
    scaled = np.multiply(amount, 100.0, dtype=np.float64)
    negative = scaled < 0
    has_negative = bool(negative.any())
    if has_negative:
        np.abs(scaled, out=scaled)
    np.multiply(scaled, 1e6, out=scaled)
    np.rint(scaled, out=scaled)
    np.divide(scaled, 1e6, out=scaled)
    np.add(scaled, 0.5, out=scaled)
    np.floor(scaled, out=scaled)
    if has_negative:
        np.negative(scaled, out=scaled, where=negative)
    return scaled.astype(np.int64)


def periods_at(pack: Pack, at: dt.date) -> dict[str, Period]:
    """The period of every parameter the pack's measures read, in force on ``at``."""
    names = set().union(*(m.params_read for m in pack.measures))
    return {name: pack.parameters[name].at(at) for name in sorted(names)}


@dataclass
class _Run:
    conditions: list[V]
    eligible: V
    amount: V
    result: MeasureResult


def _run_measure(measure: Measure, ctx: Ctx) -> _Run:
    n = ctx.n
    conds = [c.expr.fn(ctx) for c in measure.conditions]
    elig = reduce(and3, conds)
    amount = measure.amount.fn(ctx)
    e_val = as_array(elig, n)
    amt = as_array(amount, n)
    if elig.unk is None and amount.unk is None:
        status = e_val.astype(np.int8)
        missing = None
        eligible = e_val
    else:
        e_known = np.ones(n, np.bool_) if elig.unk is None else elig.unk == 0
        a_known = np.ones(n, np.bool_) if amount.unk is None else amount.unk == 0
        eligible = e_val & e_known & a_known
        ineligible = ~e_val & e_known
        status = np.full(n, UNKNOWN, np.int8)
        status[eligible] = ELIGIBLE
        status[ineligible] = INELIGIBLE
        bits = np.zeros(n, np.uint64)
        if elig.unk is not None:
            bits |= elig.unk
        if amount.unk is not None:
            bits |= np.broadcast_to(amount.unk, (n,))
        missing = np.where(status == UNKNOWN, bits, np.uint64(0))
    if np.ndim(amount.val) == 0:
        cents = np.where(eligible, to_cents(np.asarray([amount.val]))[0], 0).astype(np.int64)
    else:
        # Only eligible rows are paid, so only they are rounded (most measures are sparse).
        cents = np.zeros(n, np.int64)
        cents[eligible] = to_cents(amt[eligible])
    return _Run(conds, elig, amount, MeasureResult(measure, status, cents, missing))


def _guarded(measure: Measure, ctx: Ctx) -> _Run:
    # Overflow or NaN would otherwise flow silently into an amount; refuse instead. Division by
    # zero never reaches numpy (see vector._divide), so "divide" raising flags an engine bug.
    try:
        with np.errstate(divide="raise", invalid="raise", over="raise"):
            return _run_measure(measure, ctx)
    except FloatingPointError as exc:
        raise EvaluationError(f"measure {measure.id}: arithmetic failed ({exc})") from None


def evaluate(
    pack: Pack,
    table: Table,
    at: dt.date | None = None,
    explain: bool | Sequence[int] = False,
) -> Results:
    """Evaluate every measure of ``pack`` for every row of ``table`` on date ``at``.

    ``at`` (default: the pack's ``default_at``) picks the parameter values in force.
    ``explain`` True explains every row, a sequence of row indices explains those rows; either
    way explanations are built after the vectorised pass, from a re-run on those rows only.
    Raises EvaluationError if a parameter has no value at ``at`` or a needed column is absent.
    """
    when = at or pack.default_at
    periods = periods_at(pack, when)
    results = [
        _guarded(measure, Ctx(table, periods, measure.id)).result for measure in pack.measures
    ]
    explanations = None
    if explain is not False:
        rows = range(table.n) if explain is True else list(explain)
        explanations = tuple(explain_rows(pack, table, when, rows))
    return Results(pack, when, table.ids, tuple(results), explanations)


# --- explanations ---------------------------------------------------------------------------------

_FACT_KIND: Final = {"bool": BOOL, "number": NUM, "date": DATE}
_SENTINEL: Final = "\x00"


def _python_list(kind: str, v: V, n: int) -> list[Any]:
    """All rows of ``v`` as JSON-ready Python values, None where unknown (one numpy pass)."""
    arr = as_array(v, n)
    if kind == DATE:
        values: list[Any] = arr.astype("datetime64[D]").astype(str).tolist()
    elif kind == STR:
        cats = v.cats or ()
        values = [cats[c] for c in arr.tolist()]
    elif kind == BOOL:
        values = arr.astype(bool).tolist()
    else:
        values = [
            int(x) if x.is_integer() and abs(x) < 1e15 else round(x, 6)
            for x in arr.astype(np.float64).tolist()
        ]
    if v.unk is not None:
        unknown = np.broadcast_to(v.unk != 0, (n,)).tolist()
        values = [None if u else x for x, u in zip(values, unknown, strict=True)]
    return values


def _shown(value: Any) -> str:
    if value is None:
        return "?"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return ex.format_number(float(value))
    return f'"{value}"'


@dataclass
class _Explainer:
    """One measure's explanation material for a few rows, converted to Python column by column."""

    measure: Measure
    run: _Run
    values: dict[str, list[Any]]
    held: list[list[bool | str]]
    amount: list[Any]
    template: list[str]
    holes: list[str]
    keys: list[list[str]]  # what each condition reads, then what the amount reads
    stand_in_params: list[str]

    @classmethod
    def build(cls, pack: Pack, measure: Measure, sub: Table, ctx: Ctx) -> _Explainer:
        n = sub.n
        run = _guarded(measure, ctx)
        values: dict[str, list[Any]] = {}
        for name in measure.facts_read:
            col = sub.columns[name]
            kind = _FACT_KIND.get(pack.facts[name].kind, STR)
            unk = None if col.unknown is None else col.unknown.astype(np.uint64)
            values[name] = _python_list(kind, V(col.values, unk, col.categories), n)
        for var in measure.variables:
            cached = ctx.cache.get(f"var:{var.name}")
            if cached is not None:
                values[var.name] = _python_list(var.expr.kind, cached, n)
        for p in measure.params_read:
            values[f"param.{p}"] = _python_list(NUM, ctx.cache[f"param:{p}"], n)
        held = [
            ["unknown" if x is None else x for x in _python_list(BOOL, cv, n)]
            for cv in run.conditions
        ]
        # The formula printed once with a numbered hole per name; each row fills the holes.
        names = sorted(measure.amount.names) + [f"param.{p}" for p in sorted(measure.amount.params)]
        holes = {name: f"{_SENTINEL}{k}{_SENTINEL}" for k, name in enumerate(names)}
        template = ex.unparse(measure.amount.node, holes).split(_SENTINEL)
        amount = _python_list(NUM, run.amount, n)
        exprs = [c.expr for c in measure.conditions] + [measure.amount]
        keys = [sorted(e.names) + [f"param.{p}" for p in sorted(e.params)] for e in exprs]
        stand_ins = sorted(p for p in measure.params_read if ctx.periods[p].stand_in)
        return cls(measure, run, values, held, amount, template, names, keys, stand_ins)

    def reads(self, keys: Sequence[str], row: int) -> dict[str, Any]:
        return {key: self.values[key][row] for key in keys}

    def formula(self, row: int) -> str:
        """The amount formula with this row's values in place of its names."""
        return "".join(
            part if k % 2 == 0 else _shown(self.values[self.holes[int(part)]][row])
            for k, part in enumerate(self.template)
        )

    def explain(self, pack: Pack, at: dt.date, uscc: str, row: int) -> dict[str, Any]:
        m = self.measure
        result = self.run.result
        source = pack.sources[m.source]
        return {
            "uscc": uscc,
            "measure": m.id,
            "title": m.title,
            "at": at.isoformat(),
            "pack": f"{pack.id}@{pack.version}",
            "source": {"document": source.reference or source.title, "clause": m.clause},
            "status": STATUS_NAMES[int(result.status[row])],
            "amount": format_cents(int(result.cents[row])),
            "missing": result.missing(row),
            "stand_in": m.stand_in,
            "stand_in_parameters": self.stand_in_params,
            "variables": [
                {
                    "name": v.name,
                    "expr": v.expr.text,
                    "value": self.values.get(v.name, [None] * (row + 1))[row],
                }
                for v in m.variables
            ],
            "conditions": [
                {
                    "name": c.name,
                    "label": c.label,
                    "expr": c.expr.text,
                    "reads": self.reads(self.keys[k], row),
                    "held": self.held[k][row],
                }
                for k, c in enumerate(m.conditions)
            ],
            "amount_formula": {
                "expr": m.amount.text,
                "reads": self.reads(self.keys[-1], row),
                "with_values": self.formula(row),
                "value": self.amount[row],
            },
        }


def explain_rows(
    pack: Pack, table: Table, at: dt.date, rows: Sequence[int] | range
) -> Iterator[dict[str, Any]]:
    """One JSON-ready dict per (row, measure), rows in the order given, measures in pack order.

    Each lists the conditions with the facts, parameters and variables they read (None where
    unknown) and whether they held (true/false/"unknown"), the variables, and the amount formula
    printed with its numbers substituted. ``stand_in`` flags a measure whose amount is not
    confirmed, ``stand_in_parameters`` the unconfirmed parameter values it read on that date; the
    UI must show both. The measures are re-run on just these rows, with the same compiled code as
    the fast path, so an explanation cannot disagree with its result.
    """
    sub = table.take(list(rows))
    periods = periods_at(pack, at)
    explainers = [_Explainer.build(pack, m, sub, Ctx(sub, periods, m.id)) for m in pack.measures]
    for i, uscc in enumerate(sub.ids):
        for explainer in explainers:
            yield explainer.explain(pack, at, uscc, i)
