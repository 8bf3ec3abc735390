"""Parity: the vectorised engine against a row-at-a-time reference interpreter (the oracle).

The reference walks the AST for one row with plain Python values (None = unknown) and Kleene
logic, written independently of the numpy code; both must agree on every status, amount and
missing-field list for seeded random enterprises concentrated on the measures' boundaries.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pytest

from fugong.policies.engine import Measure, Pack, evaluate, table_from_records, unparse
from fugong.policies.engine import expr as ex

Val = tuple[Any, frozenset[str]]
KNOWN: frozenset[str] = frozenset()


class Reference:
    def __init__(self, pack: Pack, measure: Measure, row: dict[str, Any], at: dt.date) -> None:
        self.pack, self.measure, self.row, self.at = pack, measure, row, at
        self.vars = {v.name: v.expr.node for v in measure.variables}
        self.cache: dict[str, Val] = {}

    def run(self, n: ex.Node) -> Val:
        if isinstance(n, ex.Num | ex.Str | ex.Bool | ex.DateLit):
            return n.value, KNOWN
        if isinstance(n, ex.Name):
            if n.name in self.vars:
                if n.name not in self.cache:
                    self.cache[n.name] = self.run(self.vars[n.name])
                return self.cache[n.name]
            value = self.row.get(n.name)
            return (None, frozenset({n.name})) if value is None else (value, KNOWN)
        if isinstance(n, ex.Param):
            param = self.pack.parameters[n.name]
            period = param.at(self.at)
            if period.value is not None:
                return period.value, KNOWN
            assert param.split_by is not None
            category = self.row.get(param.split_by)
            if category is None:
                return None, frozenset({param.split_by})
            return period.for_category(category), KNOWN
        if isinstance(n, ex.Neg):
            v, m = self.run(n.operand)
            return (None, m) if m else (-v, KNOWN)
        if isinstance(n, ex.Not):
            v, m = self.run(n.operand)
            return (None, m) if m else (not v, KNOWN)
        if isinstance(n, ex.If):
            c, mc = self.run(n.cond)
            t, mt = self.run(n.then)
            e, me = self.run(n.orelse)
            if not mc:
                return (t, mt) if c else (e, me)
            if not mt and not me and t == e:
                return t, KNOWN
            return None, mc | mt | me
        if isinstance(n, ex.In):
            v, m = self.run(n.operand)
            if m:
                return None, m
            items = [self.run(i)[0] for i in n.items]
            return (v not in items) if n.negated else (v in items), KNOWN
        if isinstance(n, ex.Call):
            args = [self.run(a) for a in n.args]
            missing = frozenset().union(*(m for _, m in args))
            if missing:
                return None, missing
            vals = [v for v, _ in args]
            fns = {"min": min, "max": max, "floor": math.floor, "ceil": math.ceil, "abs": abs}
            return (fns[n.func](vals) if n.func in ("min", "max") else fns[n.func](vals[0])), KNOWN
        assert isinstance(n, ex.BinOp)
        a, ma = self.run(n.left)
        b, mb = self.run(n.right)
        if n.op == "and":
            if (not ma and a is False) or (not mb and b is False):
                return False, KNOWN
            return (None, ma | mb) if ma or mb else (True, KNOWN)
        if n.op == "or":
            if (not ma and a is True) or (not mb and b is True):
                return True, KNOWN
            return (None, ma | mb) if ma or mb else (False, KNOWN)
        if n.op == "/" and not mb and b == 0:
            return None, ma | {f"division by zero in {unparse(n)}"}
        if ma or mb:
            return None, ma | mb
        if isinstance(a, dt.date) and isinstance(b, dt.date) and n.op == "-":
            return float((a - b).days), KNOWN
        ops = {
            "+": lambda x, y: x + y,
            "-": lambda x, y: x - y,
            "*": lambda x, y: x * y,
            "/": lambda x, y: x / y,
            "==": lambda x, y: x == y,
            "!=": lambda x, y: x != y,
            "<": lambda x, y: x < y,
            "<=": lambda x, y: x <= y,
            ">": lambda x, y: x > y,
            ">=": lambda x, y: x >= y,
        }
        return ops[n.op](a, b), KNOWN

    def decide(self) -> tuple[str, int, set[str]]:
        elig: Val = (True, KNOWN)
        for c in self.measure.conditions:
            v, m = self.run(c.expr.node)
            e, me = elig
            if (not me and e is False) or (not m and v is False):
                elig = (False, KNOWN)
            else:
                elig = (None, me | m) if me or m else (True, KNOWN)
        amount, ma = self.run(self.measure.amount.node)
        e, me = elig
        if not me and e is False:
            return "ineligible", 0, set()
        if not me and not ma:
            cents = Decimal(repr(float(amount))) * 100
            return "eligible", int(cents.quantize(Decimal(1), rounding=ROUND_HALF_UP)), set()
        return "unknown", 0, set(me | ma)


def _random_rows(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    def pick(*options: Any) -> Any:
        return options[int(rng.integers(len(options)))]

    rows = []
    for _ in range(n):
        avg = pick(0, 30, 31, 200, 1000, 2000)
        row: dict[str, Any] = {
            "size": pick("large", "medium", "small", "micro"),
            "key_category": pick(True, False),
            "insured_employees": pick(5, 30, 31, 200, 2000),
            "ui_months": pick(11, 12, 13),
            "ui_premiums_last_year": pick(0, 12345.67, 100000, 3333.33),
            "avg_insured_last_year": avg,
            "layoffs_last_year": pick(0, 1, 6, 7, 11, 12, 21, 43, 44),
            "serious_default": pick(True, False, False),
            "zombie": pick(True, False, False),
            "emergency_products": pick(True, False),
            "restart_date": dt.date(2020, 2, 1) + dt.timedelta(days=int(rng.integers(0, 20))),
            "equipment_spend": pick(0, 500000, 1249999.99, 1250000, 1250000.01, 3e6),
            "emergency_retailer": pick(True, False),
            "output_2019": pick(999_999_999, 1e9, 5e9 - 1, 5e9, 1e10 - 1, 1e10, 2e10),
            "output_q1_2019": pick(0, 100_000_000, 200_000_000),
            "output_q1_2020": pick(100_000_000, 110_000_000, 110_010_000, 220_000_000),
            "soe_tenant": pick(True, False),
            "monthly_rent": pick(0, 10000, 12345.67),
            "incubator_rent_cut": pick(0, 1_000_000, 1_000_000.01, 2e6),
            "epidemic_hires": pick(0, 1, 3),
            "hr_agency": pick(True, False),
            "key_placements": pick(0, 100, 750, 751),
            "above_scale_industrial": pick(True, False),
            "first_job_hires": pick(0, 5),
            "monthly_employer_si": pick(0, 1234.56, 3333.33, 10000),
        }
        rows.append({k: v for k, v in row.items() if rng.random() > 0.12})
    return rows


@pytest.mark.parametrize("at", [dt.date(2020, 6, 30), dt.date(2021, 3, 1), dt.date(2022, 6, 1)])
def test_engine_matches_reference(pack: Pack, at: dt.date) -> None:
    rows = _random_rows(np.random.default_rng(at.toordinal()), 400)
    table = table_from_records(rows, pack.facts, pack.id_fact)
    results = evaluate(pack, table, at)
    statuses = {"eligible", "ineligible", "unknown"}
    seen: set[str] = set()
    for m, r in zip(pack.measures, results.measures, strict=True):
        for i, row in enumerate(rows):
            want = Reference(pack, m, row, at).decide()
            got = (
                ("ineligible", "eligible", "unknown")[int(r.status[i])],
                int(r.cents[i]),
                set(r.missing(i)),
            )
            assert got == want, (m.id, row)
            seen.add(got[0])
    assert seen == statuses
