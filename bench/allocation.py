"""Allocation engine vs HiGHS on one district-scale round.

Builds a seeded round (10 items, 500 offers, Guangzhou's 11 districts, 3 tiers, supply 15% of
demand, so that even tier 1 is short) and prints, in one run:

* **ours**: ``allocate(problem)``, the whole plan: input checks, all three tiers' exact fair
  shares (Fujishige decomposition on the compressed networks, each round one exact compiled
  max flow (OR-Tools) on the union of all items' open parts), whole units (two augmentations
  per tier of one master flow on that union), the cheapest routing, every request's allocation
  and fair fill, every routed line, tier totals and the cost. The plan holds its per-record
  results as columns and builds the ``RequestResult`` / ``PlanLine`` objects on first access,
  so the script also prints the time
  *including* building all of them (``plan.requests`` and ``plan.lines``), and that ratio too;
* **HiGHS** (highspy): only the *first* LP of the textbook max-min method for tier 1 (maximise
  the smallest fill ``t``), built sparsely with one variable per eligible (offer, request) pair,
  solved under a time limit; the time is ``Highs.run()`` alone (building the model and reading
  the solution are not counted), best of ``--lp-repeat`` solves on fresh solvers;
* both sides are timed interleaved (after each HiGHS solve, ``--our-repeat`` runs of ours),
  each keeping its best, so that a burst of other load on the machine falls on both;
* the ratios, and our times at 2,000 and 200,000 requests.

Requests that no offer can reach are left out of that LP (their fill is 0 whatever happens; with
them in it the optimum is the trivial t = 0). As a cross-check the script prints our smallest
tier-1 fill over the same requests, which must equal the LP's t.

Usage: ``python bench/allocation.py [--requests 20000] [--time-limit 120] [--seed 7]
[--lp-repeat 3] [--our-repeat 10]``
"""

from __future__ import annotations

import argparse
import random
import time
from bisect import bisect_right
from collections.abc import Callable

import numpy as np

from fugong.supplies.allocation import Offer, Problem, Request, allocate

DISTRICTS = (
    "越秀区", "海珠区", "荔湾区", "天河区", "白云区", "黄埔区",
    "番禺区", "花都区", "南沙区", "从化区", "增城区",
)  # fmt: skip
# (item, reference unit price in yuan, typical request size)
CATALOGUE = (
    ("医用外科口罩", 0.6, 2000),
    ("KN95口罩", 3.0, 800),
    ("医用防护服", 60.0, 40),
    ("护目镜", 12.0, 60),
    ("红外额温枪", 150.0, 4),
    ("红外热成像测温仪", 20000.0, 1),
    ("84消毒液", 8.0, 50),
    ("75%酒精", 12.0, 50),
    ("免洗洗手液", 15.0, 100),
    ("一次性手套", 0.3, 1000),
)
N_OFFERS = 500
SCARCITY = 0.15  # supply / demand per item: tier 1 alone asks for about 0.2


def make_problem(n_requests: int, seed: int) -> Problem:
    rng = random.Random(seed)
    demand = [0] * len(CATALOGUE)
    requests = []
    for i in range(n_requests):
        k = rng.randrange(len(CATALOGUE))
        _, ref, size = CATALOGUE[k]
        qty = max(1, round(size * rng.lognormvariate(0.0, 0.8)))
        demand[k] += qty
        # Caps are policy (reference price times a factor), so few distinct values.
        cap = None if rng.random() < 0.5 else round(ref * rng.choice((1.0, 1.2, 1.5)), 2)
        tier = rng.choices((1, 2, 3), weights=(2, 3, 5))[0]
        requests.append(
            Request(f"R{i}", f"E{i}", CATALOGUE[k][0], qty, tier, rng.choice(DISTRICTS), cap)
        )
    offers = []
    per_item = N_OFFERS // len(CATALOGUE)
    for k, (item, ref, _) in enumerate(CATALOGUE):
        weights = [rng.random() for _ in range(per_item)]
        scale = SCARCITY * demand[k] / sum(weights)
        for j in range(per_item):
            offers.append(
                Offer(
                    f"O{k}-{j}",
                    f"S{(k * per_item + j) % 173}",
                    item,
                    int(weights[j] * scale),
                    round(ref * rng.uniform(0.8, 1.6), 2),
                    tuple(rng.sample(DISTRICTS, rng.randint(1, 4))),
                )
            )
    return Problem(tuple(offers), tuple(requests))


Timing = tuple[float, float]  # (wall seconds, CPU seconds of this process)


def _nothing() -> None:
    pass


def _best(a: Timing | None, b: Timing) -> Timing:
    """The faster of two timings (by wall time); ``a`` None means none yet."""
    return b if a is None or b[0] < a[0] else a


def time_ours(problem: Problem, repeat: int = 3, records: bool = False) -> Timing:
    """Best of ``repeat`` runs: the minimum is the least disturbed by other load. With
    ``records``, building every request and line record is timed too."""
    best: Timing | None = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        plan = allocate(problem)
        if records:
            assert len(plan.requests) == len(problem.requests) and plan.lines is not None
        now = (time.perf_counter() - wall, time.process_time() - cpu)
        best = _best(best, now)
    assert best is not None
    return best


def first_maxmin_lp(
    problem: Problem, time_limit: float, repeat: int = 3, between: Callable[[], None] = _nothing
) -> tuple[Timing, str, int, int, float, list[str]]:
    """Solve max t s.t. fill_r >= t for every tier-1 request; return (seconds, status, cols,
    rows, t, ids of the requests in the LP). One column per eligible (offer, request) pair
    plus t."""
    import highspy

    offers = [o for o in problem.offers if o.quantity > 0]
    reach: dict[tuple[str, str], list[tuple[float, int]]] = {}
    for oi, o in enumerate(offers):
        for region in o.regions:
            reach.setdefault((o.item, region), []).append((o.unit_price, oi))
    for lst in reach.values():
        lst.sort()
    # A request no offer can reach has fill 0 whatever happens; the textbook method sets those
    # aside first, otherwise the first LP is the trivial t = 0.
    tier1 = []
    eligible = []
    for r in problem.requests:
        lst = reach.get((r.item, r.region), [])
        cap = r.max_unit_price
        n_ok = len(lst) if cap is None else bisect_right([p for p, _ in lst], cap)
        if r.tier == 1 and n_ok > 0:
            tier1.append(r)
            eligible.append([oi for _, oi in lst[:n_ok]])
    n_off, n_req = len(offers), len(tier1)
    # Rows: offers (sum y <= C), then per request  sum y - q t >= 0  and  sum y <= q.
    rows: list[int] = []
    cols: list[int] = []
    col = 0
    for ri, ok in enumerate(eligible):
        for oi in ok:
            rows.extend((oi, n_off + 2 * ri, n_off + 2 * ri + 1))
            cols.extend((col, col, col))
            col += 1
    n_pairs = col
    t_col = n_pairs
    for ri in range(n_req):
        rows.append(n_off + 2 * ri)
        cols.append(t_col)
    values = np.ones(len(rows))
    values[3 * n_pairs :] = [-r.quantity for r in tier1]
    n_rows = n_off + 2 * n_req
    order = np.lexsort((np.array(rows), np.array(cols)))
    r_idx = np.array(rows, dtype=np.int32)[order]
    c_idx = np.array(cols, dtype=np.int64)[order]
    starts = np.searchsorted(c_idx, np.arange(n_pairs + 2)).astype(np.int32)

    lp = highspy.HighsLp()
    lp.num_col_ = n_pairs + 1
    lp.num_row_ = n_rows
    cost = np.zeros(n_pairs + 1)
    cost[t_col] = -1.0  # maximise t
    lp.col_cost_ = cost
    lp.col_lower_ = np.zeros(n_pairs + 1)
    upper = np.full(n_pairs + 1, highspy.kHighsInf)
    upper[t_col] = 1.0
    lp.col_upper_ = upper
    row_lo = np.full(n_rows, -highspy.kHighsInf)
    row_hi = np.full(n_rows, highspy.kHighsInf)
    row_hi[:n_off] = [o.quantity for o in offers]
    row_lo[n_off::2] = 0.0
    row_hi[n_off + 1 :: 2] = [r.quantity for r in tier1]
    lp.row_lower_ = row_lo
    lp.row_upper_ = row_hi
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = starts
    lp.a_matrix_.index_ = r_idx
    lp.a_matrix_.value_ = values[order]

    # Best of ``repeat`` solves, each on a fresh solver (no warm start); ``between`` runs after
    # each, so that both sides are timed in the same stretches of machine load.
    elapsed: Timing | None = None
    for _ in range(repeat):
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("time_limit", float(time_limit))
        h.passModel(lp)
        wall, cpu = time.perf_counter(), time.process_time()
        h.run()
        now = (time.perf_counter() - wall, time.process_time() - cpu)
        elapsed = _best(elapsed, now)
        between()
    assert elapsed is not None
    status = h.modelStatusToString(h.getModelStatus())
    t = -h.getInfo().objective_function_value
    return elapsed, status, n_pairs + 1, n_rows, t, [r.id for r in tier1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--lp-repeat", type=int, default=3, help="HiGHS solves (best is kept)")
    parser.add_argument(
        "--our-repeat", type=int, default=10, help="our runs after each HiGHS solve (best is kept)"
    )
    args = parser.parse_args()

    problem = make_problem(args.requests, args.seed)
    plan = allocate(problem)  # also the warm-up: first-call costs are not the algorithm
    print(
        f"instance: {args.requests} requests, {len(problem.offers)} offers, "
        f"{len(CATALOGUE)} items, {len(DISTRICTS)} districts, 3 tiers, supply/demand {SCARCITY},"
        f" seed {args.seed}"
    )
    # The machine's load changes from second to second, so the two sides are interleaved:
    # after each HiGHS solve, ours runs --our-repeat times with and without the records; each
    # side keeps its best.
    ours: Timing | None = None
    ours_records: Timing | None = None

    def run_ours() -> None:
        nonlocal ours, ours_records
        ours = _best(ours, time_ours(problem, repeat=args.our_repeat))
        ours_records = _best(ours_records, time_ours(problem, repeat=args.our_repeat, records=True))

    secs, status, n_cols, n_rows, t, in_lp = first_maxmin_lp(
        problem, args.time_limit, args.lp_repeat, run_ours
    )
    assert ours is not None and ours_records is not None
    print(
        "times are wall / CPU seconds, best of "
        f"{args.lp_repeat} HiGHS solves and {args.lp_repeat * args.our_repeat} of our runs,"
        " interleaved; ratios use CPU time, which other load on the machine disturbs least"
    )
    print(f"ours, whole plan (3 tiers, rounding, routing): {ours[0]:.3f} / {ours[1]:.3f} s")
    print(
        "ours, whole plan and every request/line record built: "
        f"{ours_records[0]:.3f} / {ours_records[1]:.3f} s"
    )
    limit = " (time limit hit)" if status == "Time limit reached" else ""
    print(
        f"HiGHS, first max-min LP of tier 1 only ({n_cols} cols x {n_rows} rows): "
        f"{secs[0]:.3f} / {secs[1]:.3f} s, status {status}{limit}, t = {t:.4f}"
    )
    # Cross-check: that LP's optimum is the smallest tier-1 fill of our fair share.
    fair = {r.id: r.fair_fill for r in plan.requests}
    lowest = float(min(fair[i] for i in in_lp))
    print(f"our smallest tier-1 fair fill over the same requests: {lowest:.4f}")
    bound = " (lower bound)" if limit else ""
    print(
        f"ratio HiGHS single LP / ours whole plan: {secs[1] / ours[1]:.1f}x"
        f" (wall: {secs[0] / ours[0]:.1f}x){bound}"
    )
    print(
        "ratio HiGHS single LP / ours whole plan with records: "
        f"{secs[1] / ours_records[1]:.1f}x (wall: {secs[0] / ours_records[0]:.1f}x){bound}"
    )
    for n in (2_000, 200_000):
        p = make_problem(n, args.seed)
        allocate(p)
        wall, cpu = time_ours(p, repeat=1 if n > 50_000 else 3)
        print(f"ours at {n} requests: {wall:.3f} / {cpu:.3f} s")


if __name__ == "__main__":
    main()
