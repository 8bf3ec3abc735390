"""Shared helpers for the policy engine tests: the real pack, tiny tables, enterprise CSVs."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from fugong.core.uscc import make
from fugong.policies.engine import PACKS_DIR, Pack, load_pack
from fugong.policies.engine import expr as ex
from fugong.policies.engine.params import Parameter
from fugong.policies.engine.table import FactSpec, table_from_records
from fugong.policies.engine.vector import Ctx, Env, Sources, V, as_array, compile_expr

# The input contract of shared/domain/policies.md, in its order.
COLUMNS = [
    "uscc",
    "name",
    "district",
    "size",
    "key_category",
    "insured_employees",
    "ui_months",
    "ui_premiums_last_year",
    "avg_insured_last_year",
    "layoffs_last_year",
    "serious_default",
    "zombie",
    "emergency_products",
    "restart_date",
    "equipment_spend",
    "emergency_retailer",
    "output_2019",
    "output_q1_2019",
    "output_q1_2020",
    "soe_tenant",
    "monthly_rent",
    "incubator_rent_cut",
    "epidemic_hires",
    "hr_agency",
    "key_placements",
    "above_scale_industrial",
    "first_job_hires",
    "monthly_employer_si",
]


def uscc(k: int) -> str:
    """A valid Huangpu USCC, distinct for each k."""
    return make(f"91440112MA5{k:06d}")


GOOD_ROW: dict[str, str] = {
    "name": "光宝科技",
    "district": "黄埔区",
    "size": "medium",
    "key_category": "true",
    "insured_employees": "120",
    "ui_months": "36",
    "ui_premiums_last_year": "86400",
    "avg_insured_last_year": "118",
    "layoffs_last_year": "4",
    "serious_default": "false",
    "zombie": "否",
    "emergency_products": "yes",
    "restart_date": "2020-02-03",
    "equipment_spend": "150000",
    "emergency_retailer": "0",
    "output_2019": "300000000",
    "output_q1_2019": "60000000",
    "output_q1_2020": "75000000",
    "soe_tenant": "true",
    "monthly_rent": "18000",
    "incubator_rent_cut": "0",
    "epidemic_hires": "12",
    "hr_agency": "false",
    "key_placements": "0",
    "above_scale_industrial": "true",
    "first_job_hires": "7",
    "monthly_employer_si": "21000",
}


def write_csv(
    path: Path, rows: Sequence[Mapping[str, str]], columns: Sequence[str] = COLUMNS
) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(columns)
        for row in rows:
            out.writerow([row.get(c, "") for c in columns])
    return path


@pytest.fixture(scope="session")
def pack() -> Pack:
    return load_pack("huangpu-2020")


@pytest.fixture
def pack_copy(tmp_path: Path) -> Path:
    """A writable copy of the built-in pack, for tests that break it on purpose."""
    target = tmp_path / "pack"
    shutil.copytree(PACKS_DIR / "huangpu-2020", target)
    return target


def _spec(name: str, values: Sequence[Any]) -> FactSpec:
    sample = next((v for v in values if v is not None), 0)
    if isinstance(sample, bool):
        return FactSpec(name, "bool")
    if isinstance(sample, int | float):
        return FactSpec(name, "number")
    if isinstance(sample, dt.date):
        return FactSpec(name, "date")
    return FactSpec(name, "enum", values=tuple(sorted({v for v in values if v is not None})))


Evaluator = Callable[..., tuple[list[Any], list[list[str]]]]


def evaluate_expr(
    source: str, params: Mapping[str, Parameter] | None = None, **columns: Sequence[Any]
) -> tuple[list[Any], list[list[str]]]:
    """Evaluate one expression over columns given as lists (None = unknown).

    Returns per row the value (None where unknown) and the names of the unknown inputs.
    """
    n = len(next(iter(columns.values()))) if columns else 1
    facts = {"uscc": FactSpec("uscc", "id")}
    facts.update({name: _spec(name, values) for name, values in columns.items()})
    records = [{name: values[i] for name, values in columns.items()} for i in range(n)]
    table = table_from_records(records, facts, "uscc")
    env = Env(facts=facts, params=params or {}, sources=Sources("test"))
    fn, kind, _ = compile_expr(ex.parse(source), env)
    periods = {name: p.at(dt.date(2020, 6, 30)) for name, p in (params or {}).items()}
    v: V = fn(Ctx(table, periods, "test"))
    vals = as_array(v, n).tolist()
    unk = [0] * n if v.unk is None else [int(u) for u in as_array(V(v.unk), n)]
    out = [None if unk[i] else vals[i] for i in range(n)]
    if kind == "text":
        out = [None if x is None else (v.cats or ())[x] for x in out]
    return out, [env.sources.decode(u) for u in unk]
