"""Bench: the policy engine over seeded synthetic enterprises, against OpenFisca.

    python bench/policies.py [--rows 1000000] [--seed 2020] [--repeat 3] [--sample 10000]

Prints, for ``--rows`` enterprises of the ``huangpu-2020`` pack:

* ours, all eleven measures, no explanations (best of ``--repeat``; goal < 5 s for 1M rows);
* ours with explanations: built per (row, measure) as Python dicts, so they are measured on a
  ``--sample`` of rows and extrapolated linearly to all rows (the report says so);
* OpenFisca (``openfisca-core``, optional: ``pip install openfisca-core``) on the four measures
  ui-refund, hiring-subsidy, agency-referral and soe-rent over the same rows, timed from the same
  in-memory numpy columns to computed amounts, with the amounts checked equal to ours to the fen
  and the throughput ratio (goal >= 3x).

OpenFisca stores ``float`` variables as float32, so the money columns the comparison reads are
generated in whole yuan (exact in float32 at these sizes); both sides then agree exactly. The
synthetic data leave some cells empty (restart date, Q1 outputs, equipment spend, incubator rent
cut) so the unknown-propagation path is exercised too; the compared measures read none of them.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from fugong.core.uscc import CHARSET, WEIGHTS
from fugong.policies.engine import Pack, Table, evaluate, explain_rows, load_pack
from fugong.policies.engine.table import EPOCH, Column

COMPARED = ("ui-refund", "hiring-subsidy", "agency-referral", "soe-rent")
AT = dt.date(2020, 6, 30)


def synthetic_usccs(rng: np.random.Generator, n: int) -> tuple[str, ...]:
    """``n`` distinct-enough valid USCCs of Huangpu (440112), checksums computed vectorised."""
    values = np.empty((n, 18), dtype=np.int64)
    values[:, 0] = CHARSET.index("9")
    values[:, 1] = CHARSET.index("1")
    for k, ch in enumerate("440112", start=2):
        values[:, k] = CHARSET.index(ch)
    values[:, 8:17] = rng.integers(0, len(CHARSET), size=(n, 9))
    total = values[:, :17] @ np.array(WEIGHTS, dtype=np.int64)
    values[:, 17] = (31 - total % 31) % 31
    chars = np.array(list(CHARSET), dtype="<U1")[values]
    return tuple(np.ascontiguousarray(chars).view("<U18").ravel().tolist())


def synthetic_table(pack: Pack, n: int, seed: int) -> Table:
    """A seeded, plausible district: sizes, headcounts, premiums, flags, a few empty cells."""
    rng = np.random.default_rng(seed)
    size_codes = rng.choice(4, size=n, p=[0.03, 0.17, 0.40, 0.40]).astype(np.int32)
    insured = np.rint(rng.lognormal(3.2, 1.2, n)).clip(1, 5000)
    avg_insured = np.rint(insured * rng.uniform(0.85, 1.15, n))
    layoffs = np.floor(avg_insured * rng.beta(1.0, 25.0, n))
    cols: dict[str, Column] = {}

    def num(name: str, values: np.ndarray[Any, Any], empty: float = 0.0) -> None:
        unknown = rng.random(n) < empty if empty else None
        cols[name] = Column(values.astype(np.float64), unknown)

    def flag(name: str, p: float, empty: float = 0.0) -> None:
        unknown = rng.random(n) < empty if empty else None
        cols[name] = Column(rng.random(n) < p, unknown)

    cols["size"] = Column(size_codes, None, pack.facts["size"].values)
    flag("key_category", 0.15)
    num("insured_employees", insured)
    num("ui_months", rng.integers(0, 120, n))
    # Whole yuan so that OpenFisca's float32 holds them exactly (see the module docstring).
    num("ui_premiums_last_year", np.rint(insured * rng.uniform(300, 900, n)))
    num("avg_insured_last_year", avg_insured)
    num("layoffs_last_year", layoffs)
    flag("serious_default", 0.01)
    flag("zombie", 0.02)
    flag("emergency_products", 0.02)
    restart = (dt.date(2020, 2, 1) - EPOCH).days + rng.integers(0, 40, n)
    cols["restart_date"] = Column(restart.astype(np.int64), rng.random(n) < 0.3)
    num("equipment_spend", np.rint(rng.exponential(400_000, n)), empty=0.2)
    flag("emergency_retailer", 0.005)
    out_2019 = np.rint(rng.lognormal(17.0, 2.0, n))
    num("output_2019", out_2019)
    q1_2019 = np.rint(out_2019 * rng.uniform(0.15, 0.3, n))
    num("output_q1_2019", q1_2019, empty=0.1)
    num("output_q1_2020", np.rint(q1_2019 * rng.uniform(0.5, 1.4, n)), empty=0.1)
    flag("soe_tenant", 0.08)
    num("monthly_rent", np.rint(rng.uniform(0, 80_000, n)))
    num("incubator_rent_cut", np.rint(rng.exponential(300_000, n)), empty=0.6)
    num("epidemic_hires", rng.poisson(2.0, n))
    flag("hr_agency", 0.01)
    num("key_placements", rng.poisson(300, n))
    flag("above_scale_industrial", 0.1)
    num("first_job_hires", rng.poisson(1.0, n))
    num("monthly_employer_si", np.rint(insured * rng.uniform(400, 1200, n)))
    return Table(synthetic_usccs(rng, n), cols)


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


# --- OpenFisca ------------------------------------------------------------------------------------


def openfisca_model(pack: Pack) -> Any:
    """The four compared measures written as an OpenFisca tax-benefit system (same parameters)."""
    import numpy as onp
    from openfisca_core.entities import build_entity
    from openfisca_core.model_api import MONTH, Enum, ParameterNode, Variable, not_, select, where
    from openfisca_core.taxbenefitsystems import TaxBenefitSystem

    enterprise = build_entity(
        key="enterprise", plural="enterprises", label="Enterprise", is_person=True
    )

    class Size(Enum):
        large = "large"
        medium = "medium"
        small = "small"
        micro = "micro"

    def var(name: str, kind: type, **extra: Any) -> type:
        attrs = {"value_type": kind, "entity": enterprise, "definition_period": MONTH, **extra}
        return type(name, (Variable,), attrs)

    inputs = [
        var("size", Enum, possible_values=Size, default_value=Size.medium),
        var("insured_employees", float),
        var("ui_months", float),
        var("ui_premiums_last_year", float),
        var("avg_insured_last_year", float),
        var("layoffs_last_year", float),
        var("serious_default", bool),
        var("zombie", bool),
        var("key_category", bool),
        var("epidemic_hires", float),
        var("hr_agency", bool),
        var("key_placements", float),
        var("soe_tenant", bool),
        var("monthly_rent", float),
    ]

    def cents(x: Any) -> Any:
        # Half-up to the fen, as the engine does.
        return onp.floor(onp.round(onp.asarray(x, dtype=onp.float64) * 100, 6) + 0.5) / 100

    def ui_refund(e: Any, period: Any, parameters: Any) -> Any:
        p = parameters(period)
        # float32 inputs would make 11/200 differ from 0.055 and flip exact-boundary rows;
        # the rate is computed in float64, as a careful OpenFisca modeller would.
        avg = e("avg_insured_last_year", period).astype(onp.float64)
        lay = e("layoffs_last_year", period).astype(onp.float64)
        rate = where(avg > 0, lay / where(avg > 0, avg, 1), where(lay > 0, 1, 0))
        size = e("size", period)
        cap = select(
            [e("insured_employees", period) <= p.ui_small_firm_max_employees, size == Size.large],
            [p.ui_layoff_cap_small_firm, p.urban_registered_unemployment_rate],
            default=p.ui_layoff_cap_sme,
        )
        ok = (
            (e("ui_months", period) >= p.ui_min_months)
            * not_(e("serious_default", period))
            * not_(e("zombie", period))
            * (rate <= cap)
        )
        return ok * cents(p.ui_refund_ratio * e("ui_premiums_last_year", period))

    def hiring(e: Any, period: Any, parameters: Any) -> Any:
        hires = e("epidemic_hires", period)
        ok = e("key_category", period) * (hires > 0)
        return ok * cents(parameters(period).hiring_subsidy_per_hire * hires)

    def agency(e: Any, period: Any, parameters: Any) -> Any:
        p = parameters(period)
        placed = e("key_placements", period)
        ok = e("hr_agency", period) * (placed > 0)
        amount = onp.minimum(p.agency_referral_per_placement * placed, p.agency_referral_cap)
        return ok * cents(amount)

    def soe_rent(e: Any, period: Any, parameters: Any) -> Any:
        p = parameters(period)
        rent = e("monthly_rent", period)
        ok = e("soe_tenant", period) * (rent > 0)
        return ok * cents((p.soe_rent_free_months + p.soe_rent_half_months * 0.5) * rent)

    outputs = [
        var("ui_refund", float, formula=ui_refund),
        var("hiring_subsidy", float, formula=hiring),
        var("agency_referral", float, formula=agency),
        var("soe_rent", float, formula=soe_rent),
    ]
    system = TaxBenefitSystem([enterprise])
    for v in inputs + outputs:
        system.add_variable(v)
    # The same dated values as the pack (scalar periods only: the 2020 ratio is not split).
    data: dict[str, Any] = {}
    for name, param in pack.parameters.items():
        values = {
            p.start.isoformat(): {"value": p.value} for p in param.periods if p.value is not None
        }
        if values:
            data[name] = {"values": values}
    system.parameters = ParameterNode("", data=data)
    return system, Size


def run_openfisca(system: Any, size_enum: Any, table: Table) -> dict[str, np.ndarray[Any, Any]]:
    from openfisca_core.indexed_enums import EnumArray
    from openfisca_core.simulations import SimulationBuilder

    builder = SimulationBuilder()
    builder.create_entities(system)
    builder.declare_person_entity("enterprise", np.arange(table.n))
    simulation = builder.build(system)
    period = f"{AT.year}-{AT.month:02d}"
    for name in (
        "insured_employees",
        "ui_months",
        "ui_premiums_last_year",
        "avg_insured_last_year",
        "layoffs_last_year",
        "serious_default",
        "zombie",
        "key_category",
        "epidemic_hires",
        "hr_agency",
        "key_placements",
        "soe_tenant",
        "monthly_rent",
    ):
        simulation.set_input(name, period, table.columns[name].values)
    codes = table.columns["size"].values.astype(np.int16)
    simulation.set_input("size", period, EnumArray(codes, size_enum))
    return {
        mid: np.asarray(simulation.calculate(mid.replace("-", "_"), period)) for mid in COMPARED
    }


# --- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sample", type=int, default=10_000, help="rows to explain")
    args = ap.parse_args(argv)

    pack = load_pack("huangpu-2020")
    t0 = time.perf_counter()
    table = synthetic_table(pack, args.rows, args.seed)
    print(
        f"synthetic table: {table.n:,} enterprises, seed {args.seed} "
        f"({time.perf_counter() - t0:.1f} s to generate)"
    )

    t_all, results = best_of(args.repeat, lambda: evaluate(pack, table, AT))
    n_measures = len(pack.measures)
    print(
        f"ours, {n_measures} measures x {table.n:,} rows, no explanations: {t_all:.3f} s "
        f"({table.n * n_measures / t_all / 1e6:.1f} M decisions/s; goal < 5 s)"
    )
    for mid, t in results.totals().items():
        print(
            f"  {mid:<17} eligible {t['eligible']:>8,}  unknown {t['unknown']:>8,}  "
            f"total {t['amount']:>18}"
        )

    sample = min(args.sample, table.n)
    rows = np.random.default_rng(args.seed).choice(table.n, size=sample, replace=False)
    t_exp, explained = best_of(1, lambda: list(explain_rows(pack, table, AT, rows.tolist())))
    per_row = t_exp / sample
    print(
        f"ours, explanations: {len(explained):,} explanations for a sample of {sample:,} rows in "
        f"{t_exp:.2f} s -> extrapolated {per_row * table.n:.0f} s for all {table.n:,} rows "
        f"(plus {t_all:.2f} s for the vectorised pass); explanations are Python dicts, "
        "so they are made on demand, not in the fast path"
    )

    four = dataclasses.replace(pack, measures=tuple(pack.measure(m) for m in COMPARED))
    t_ours4, ours4 = best_of(args.repeat, lambda: evaluate(four, table, AT))
    print(f"ours, {len(COMPARED)} compared measures ({', '.join(COMPARED)}): {t_ours4:.3f} s")

    try:
        import openfisca_core  # noqa: F401
    except ImportError:
        print(
            "OpenFisca: NOT RUN - openfisca-core is not installed "
            "(pip install openfisca-core); no comparison or ratio to report"
        )
        return 0
    from importlib.metadata import version

    system, size_enum = openfisca_model(pack)
    t_of, theirs = best_of(args.repeat, lambda: run_openfisca(system, size_enum, table))
    print(f"OpenFisca {version('openfisca-core')}, same {len(COMPARED)} measures: {t_of:.3f} s")
    all_equal = True
    for mid in COMPARED:
        ours_cents = ours4.result(mid).cents
        their_cents = np.floor(np.asarray(theirs[mid], dtype=np.float64) * 100 + 0.5)
        diff = int(np.count_nonzero(ours_cents != their_cents.astype(np.int64)))
        all_equal &= diff == 0
        print(f"  {mid:<17} amounts equal: {'yes' if diff == 0 else f'NO, {diff:,} rows differ'}")
    print(
        f"throughput ratio ours/OpenFisca on the compared measures: {t_of / t_ours4:.1f}x "
        "(goal >= 3x)"
    )
    return 0 if all_equal else 1


if __name__ == "__main__":
    sys.exit(main())
