"""Tracing bench: generation and build throughput, query latency, against plain SQL on raw records.

    python bench/tracing.py --records 10_000_000            # quick
    python bench/tracing.py                                  # 50 M records, the sizing target
    python bench/tracing.py --records 5_000_000 --spark      # Spark local-mode times beside

Prints records/s for generation and build; median and p95 over ``--cases`` cases for companions,
second order and itinerary on DuckDB over the built stays; the same companion question written as
the natural first SQL (per-record presence intervals from the raw records, self-joined on grid and
time overlap) in the same DuckDB on the same machine, and the ratio. Goals: companions < 1 s median
and >= 20x faster than the plain SQL, build >= 1 M records/s on 2 cores, second order in seconds.
The load average is printed at the start and the end: on a shared machine wall-clock figures are
only comparable between runs under similar load.
"""

# S608: SQL here is assembled from integers computed in Python and from file paths we quote;
# values a user types (uids) are always bound parameters.
# ruff: noqa: S608

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fugong.tracing.build import build
from fugong.tracing.common import CompanionQuery, Profile, Window
from fugong.tracing.engines.duckdb import DuckDBEngine, connect, register_cellmap
from fugong.tracing.generate import generate

RECORDS_PER_SUB_DAY = 105  # what the generator produces on average (measured)


def _stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_s": statistics.median(ordered), "p95_s": p95, "n": len(ordered)}


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


PLAIN_SQL = """
WITH r AS (
    SELECT uid, CAST(epoch(ts) AS BIGINT) AS t, cell_id FROM read_parquet('{glob}')
    WHERE ts >= to_timestamp({lo_read}) AND ts < to_timestamp({hi})
),
iv AS (
    SELECT r.uid, m.gkey, r.t AS s,
           LEAST(r.t + {gap}, COALESCE(LEAD(r.t) OVER (PARTITION BY r.uid ORDER BY r.t),
                                        r.t + {gap})) AS e
    FROM r JOIN cellmap m ON r.cell_id = m.cell_id
),
c AS (SELECT gkey, GREATEST(s, {lo}) AS s, LEAST(e, {hi}) AS e FROM iv WHERE uid = $case)
SELECT o.uid, max(LEAST(o.e, c.e) - GREATEST(o.s, c.s)) AS longest,
       sum(LEAST(o.e, c.e) - GREATEST(o.s, c.s)) AS total
FROM iv o JOIN c ON o.gkey = c.gkey AND o.s < c.e AND o.e > c.s
WHERE o.uid <> $case
GROUP BY o.uid
HAVING max(LEAST(o.e, c.e) - GREATEST(o.s, c.s)) >= {min_overlap}
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--records", type=int, default=50_000_000, help="target record count")
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--dir", type=Path, default=Path(tempfile.gettempdir()) / "fugong-bench-tracing"
    )
    ap.add_argument("--reuse", action="store_true", help="reuse generated data in --dir")
    ap.add_argument("--cases", type=int, default=20)
    ap.add_argument("--sql-cases", type=int, default=5, help="cases for the slow plain SQL")
    ap.add_argument("--so-cases", type=int, default=20, help="cases for second order")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--spark", action="store_true", help="also time the Spark engine")
    ap.add_argument("--spark-cases", type=int, default=5)
    ap.add_argument(
        "--spark-so-cases",
        type=int,
        default=None,
        help="cases for Spark's second order (default: --spark-cases; 0 skips it: on one"
        " machine it is the slowest query by far)",
    )
    args = ap.parse_args()

    out: dict[str, Any] = {"target_records": args.records, "days": args.days}
    out["load_average_start"] = os.getloadavg()
    print(f"load average at start: {out['load_average_start'][0]:.1f}", flush=True)
    data = args.dir
    start = date(2022, 11, 1)
    subscribers = max(100, args.records // (args.days * RECORDS_PER_SUB_DAY))
    if not (args.reuse and (data / "cells.parquet").exists()):
        secs, rep = _timed(
            lambda: generate(data, subscribers, args.days, seed=args.seed, start=start)
        )
        out["generate"] = rep.to_json()
        print(
            f"generate: {rep.records:,} records, {subscribers:,} subscribers in {secs:.1f} s "
            f"= {rep.records / secs:,.0f} records/s",
            flush=True,
        )
    # Always a full build: an incremental no-op would say nothing about throughput.
    shutil.rmtree(data / "stays", ignore_errors=True)
    secs, brep = _timed(lambda: build(data, threads=args.threads))
    out["build"] = brep.to_json()
    print(
        f"build:    {brep.records:,} records -> {brep.stays:,} stay pieces in {secs:.1f} s "
        f"= {brep.records / secs:,.0f} records/s ({len(brep.built)} days)",
        flush=True,
    )

    at = datetime.combine(start + timedelta(days=args.days), datetime.min.time(), UTC)
    con = connect(args.threads)
    glob = str(data / "records" / "*" / "*.parquet")
    stays_glob = str(data / "stays" / "uid" / "*" / "*.parquet")
    uids = [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT uid FROM read_parquet('{stays_glob}') ORDER BY uid"
        ).fetchall()
    ]
    rng = random.Random(args.seed)
    cases = rng.sample(uids, min(args.cases, len(uids)))
    engine = DuckDBEngine(threads=args.threads)

    def bench(name: str, fn: Callable[[str], Any], which: list[str]) -> dict[str, Any]:
        times, sizes = [], []
        for uid in which:
            t, res = _timed(lambda uid=uid: fn(uid))
            times.append(t)
            sizes.append(len(res))
        st = _stats(times) | {"median_rows": statistics.median(sizes)}
        print(
            f"{name:<28} median {st['median_s'] * 1000:8.1f} ms   p95 {st['p95_s'] * 1000:8.1f} ms"
            f"   rows (median) {st['median_rows']:.0f}",
            flush=True,
        )
        return st

    q = lambda uid: CompanionQuery(uid, at, days=14)  # noqa: E731
    out["duckdb"] = {
        "companions": bench("companions (duckdb)", lambda u: engine.companions(data, q(u)), cases),
        "second_order": bench(
            "second order (duckdb)",
            lambda u: engine.second_order(data, q(u)),
            cases[: args.so_cases],
        ),
        "itinerary": bench("itinerary (duckdb)", lambda u: engine.itinerary(data, u, at), cases),
        "trajectory": bench("trajectory (duckdb)", lambda u: engine.trajectory(data, u, at), cases),
    }

    profile = Profile()
    register_cellmap(con, data, profile)
    w = Window.ending(at, 14)
    plain = PLAIN_SQL.format(
        glob=glob,
        lo=w.lo,
        hi=w.hi,
        lo_read=w.lo - profile.max_gap_s,
        gap=profile.max_gap_s,
        min_overlap=600,
    )
    sql_st = bench(
        "companions (plain SQL, raw)",
        lambda u: con.execute(plain, {"case": u}).fetchall(),
        cases[: args.sql_cases],
    )
    out["plain_sql_companions"] = sql_st
    ratio = sql_st["median_s"] / out["duckdb"]["companions"]["median_s"]
    out["ratio_plain_sql_over_duckdb"] = ratio
    print(f"ratio plain SQL / stays engine (companions median): {ratio:.1f}x", flush=True)

    if args.spark:
        from fugong.tracing.engines.spark import SparkEngine, spark_session

        t, spark = _timed(lambda: spark_session("local[2]", shuffle_partitions=4))
        print(f"spark start-up: {t:.1f} s", flush=True)
        se = SparkEngine(spark=spark)
        sc = cases[: args.spark_cases]
        se.companions(data, q(sc[0]))  # JIT / first-job warm-up, not counted
        out["spark"] = {
            "companions": bench("companions (spark)", lambda u: se.companions(data, q(u)), sc),
            "itinerary": bench("itinerary (spark)", lambda u: se.itinerary(data, u, at), sc),
        }
        n_so = args.spark_cases if args.spark_so_cases is None else args.spark_so_cases
        if n_so:
            out["spark"]["second_order"] = bench(
                "second order (spark)", lambda u: se.second_order(data, q(u)), cases[:n_so]
            )
        spark.stop()
    out["load_average_end"] = os.getloadavg()
    print(f"load average at end (1/5/15 min): {out['load_average_end']}", flush=True)
    print(json.dumps(out, indent=1, default=str), file=sys.stderr)


if __name__ == "__main__":
    main()
