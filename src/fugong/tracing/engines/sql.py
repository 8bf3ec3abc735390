"""The SQL both fast engines run: one text, two dialects (DuckDB and Spark SQL).

Keeping one text is what makes the parity promise cheap to keep: a fix lands in both engines at
once. The few dialect differences are isolated in :class:`Dialect`. Named parameters are written
``{p:name}`` and turned into ``$name`` (DuckDB) or ``:name`` (Spark); integer constants computed in
Python are inlined.

Relations (views the engine registers before running a query):

* ``records(uid, ts, cell_id)`` — ts as epoch seconds (only the fallback and the build use it);
* ``cellmap(cell_id, gkey, city)`` — from :func:`fugong.tracing.common.cell_grid_table`;
* ``stays_grid`` / ``stays_uid`` ``(uid, gkey, b, s, e, rs, re, cin, cout)`` — grid presence cut
  into buckets of ``bucket_s`` seconds (``b = floor(s / bucket_s)``), the same rows in two orders;
  ``[rs, re)`` is the run the piece was cut from, ``cin`` / ``cout`` (0/1) say whether that run
  may touch a run of the same uid and grid before / after it (see :mod:`fugong.tracing.compact`);
* ``stays_city(uid, city, s, e)`` — city presence.

Every stay row is a disjoint piece of one uid's presence; touching pieces are merged at query time,
which is what lets the build cut presence at midnight and at bucket edges without changing answers.
"""

# S608: SQL here is assembled from integers computed in Python and from file paths we quote;
# values a user types (uids) are always bound parameters.
# ruff: noqa: S608

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    param_marker: str

    def params(self, sql: str) -> str:
        return re.sub(r"\{p:(\w+)\}", lambda m: self.param_marker + m.group(1), sql)

    def sorted_set(self, expr: str) -> str:
        """Aggregate: the sorted distinct values of ``expr`` as a list."""
        if self.name == "duckdb":
            return f"list_sort(list(DISTINCT {expr}))"
        return f"array_sort(collect_set({expr}))"

    def explode_buckets(self, lo_expr: str, hi_expr: str) -> str:
        """A set-returning expression of the integers ``lo_expr..hi_expr`` (inclusive)."""
        if self.name == "duckdb":
            return f"unnest(range({lo_expr}, {hi_expr} + 1))"
        return f"explode(sequence({lo_expr}, {hi_expr}))"


DUCKDB = Dialect("duckdb", "$")
SPARK = Dialect("spark", ":")


def _bucket(expr: str, bucket_s: int) -> str:
    return f"CAST(FLOOR(({expr}) / {bucket_s}) AS BIGINT)"


def intervals_in(a: int, b: int, look_end: int, max_gap_s: int) -> str:
    """Presence interval of every record with ``a <= ts < b`` (non-empty ones only).

    Records up to ``look_end`` (``>= b``) are read so that the last record before ``b`` is closed
    by its true successor; ``look_end = b + max_gap`` suffices since a successor further away than
    ``max_gap`` cannot shorten the interval. Duplicates count once; ties order by ``cell_id``;
    unknown cells fall out at the join, before ordering.
    """
    sql = f"""
    SELECT uid, gkey, city, ts AS s,
           LEAST(ts + {max_gap_s},
                 COALESCE(LEAD(ts) OVER (PARTITION BY uid ORDER BY ts, cell_id),
                          ts + {max_gap_s})) AS e
    FROM (
        SELECT DISTINCT r.uid, r.ts, r.cell_id, m.gkey, m.city
        FROM records r JOIN cellmap m ON r.cell_id = m.cell_id
        WHERE r.ts >= {a} AND r.ts < {look_end}
    ) AS k
    """
    return f"SELECT * FROM ({sql}) AS iv WHERE s < {b} AND e > s"


def merge_touching(rel: str, keys: list[str]) -> str:
    """Maximal intervals of ``rel(keys..., s, e)``, whose rows are disjoint within ``keys``."""
    k = ", ".join(keys)
    return f"""
    SELECT {k}, MIN(s) AS s, MAX(e) AS e FROM (
        SELECT {k}, s, e,
               SUM(brk) OVER (PARTITION BY {k} ORDER BY s
                              ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS grp
        FROM (
            SELECT {k}, s, e,
                   CASE WHEN s <= LAG(e) OVER (PARTITION BY {k} ORDER BY s) THEN 0 ELSE 1 END
                       AS brk
            FROM ({rel}) AS m0
        ) AS m1
    ) AS m2
    GROUP BY {k}, grp
    """


def runs(intervals_rel: str, key: str) -> str:
    """Merge one uid's consecutive touching record intervals in the same ``key`` (grid or city).

    Within a uid the non-empty record intervals are disjoint and ordered, so two of them in the
    same grid touch exactly when they are neighbours in time.
    """
    return merge_touching(f"SELECT uid, {key}, s, e FROM ({intervals_rel}) AS r0", ["uid", key])


def split_buckets(runs_rel: str, bucket_s: int, dialect: Dialect) -> str:
    """Cut grid runs at multiples of ``bucket_s`` so that every piece lies in one bucket ``b``;
    each piece keeps its run's bounds as ``rs, re``. The runs are maximal (not cut at midnight),
    so none can touch another of the same uid and grid: ``cin = cout = 0``."""
    return f"""
    SELECT uid, gkey, b,
           GREATEST(s, b * {bucket_s}) AS s, LEAST(e, (b + 1) * {bucket_s}) AS e, s AS rs, e AS re,
           0 AS cin, 0 AS cout
    FROM (
        SELECT uid, gkey, s, e,
               {dialect.explode_buckets(_bucket("s", bucket_s), _bucket("e - 1", bucket_s))} AS b
        FROM ({runs_rel}) AS r1
    ) AS r2
    """


# --- queries over the stays -----------------------------------------------------------------


def trajectory(lo: int, hi: int) -> str:
    return merge_touching(
        f"""SELECT gkey, GREATEST(s, {lo}) AS s, LEAST(e, {hi}) AS e
            FROM stays_uid WHERE uid = {{p:uid}} AND s < {hi} AND e > {lo}""",
        ["gkey"],
    )


def itinerary(lo: int, hi: int) -> str:
    return f"""SELECT city, GREATEST(s, {lo}) AS s, LEAST(e, {hi}) AS e
               FROM stays_city WHERE uid = {{p:uid}} AND s < {hi} AND e > {lo}"""


def case_pieces(lo: int, hi: int) -> str:
    """The case's stay pieces clipped to the window: ``(gkey, b, s, e)``."""
    return f"""SELECT gkey, b, GREATEST(s, {lo}) AS s, LEAST(e, {hi}) AS e
               FROM stays_uid WHERE uid = {{p:case}} AND s < {hi} AND e > {lo}"""


def companions(gkeys: list[int], min_overlap_s: int) -> str:
    """Maximal intersections ``(uid, gkey, s, e)`` with the case pieces in view ``case_stays``, for
    uids with at least one intersection of ``min_overlap_s``. ``gkeys`` (the case's grids) only
    helps the scan skip row groups; the join alone is exact."""
    in_list = ", ".join(str(k) for k in sorted(set(gkeys))) or "NULL"
    pieces = f"""
        SELECT o.uid, o.gkey, GREATEST(o.s, c.s) AS s, LEAST(o.e, c.e) AS e
        FROM stays_grid o JOIN case_stays c ON o.gkey = c.gkey AND o.b = c.b
        WHERE o.gkey IN ({in_list}) AND o.uid <> {{p:case}} AND o.s < c.e AND o.e > c.s
    """
    merged = merge_touching(pieces, ["uid", "gkey"])
    return f"""
    WITH m AS ({merged})
    SELECT uid, gkey, s, e FROM m
    WHERE uid IN (SELECT uid FROM m WHERE e - s >= {min_overlap_s})
    """


def presence_totals(lo: int, hi: int) -> str:
    """Total presence ``(uid, gkey, total)`` in the window of the uids in view ``wanted(uid)``."""
    return f"""
    SELECT uid, gkey, SUM(LEAST(e, {hi}) - GREATEST(s, {lo})) AS total FROM stays_uid
    WHERE uid IN (SELECT uid FROM wanted) AND s < {hi} AND e > {lo}
    GROUP BY uid, gkey
    """


def second_order_intervals(
    hi: int, uid_rel: str = "stays_uid", grid_rel: str = "stays_grid"
) -> str:
    """Maximal intersections ``(v, u, gkey, s, e, edge)`` of each first-order companion ``v`` in
    view ``first_order(uid, t0)``, over ``[t0, hi)``, with every other uid ``u`` (not the case, not
    a first-order companion), up to the touching at partition edges that
    :func:`second_order_fold` merges: ``edge`` marks the intersections that start at a run marked
    ``cin`` or end at one marked ``cout`` (a run clipped at ``t0`` / ``hi`` touches nothing there).

    ``uid_rel`` holds (at least) the first-order companions' pieces, ``grid_rel`` (at least) every
    piece in the (grid, hour) slices they visit after first contact; the first-order pieces are
    the small side of the join (a broadcast hint for Spark; DuckDB ignores the comment).

    Every piece carries its run ``[rs, re)`` (a maximal presence interval in one grid within a
    day's partition), so the intersection of two runs is known from any pair of their pieces; it
    is emitted once, from the bucket where it starts (there the pieces' intersection starts where
    the runs' does). This replaces merging millions of touching piece intersections back
    together, and sorting them.
    """
    return f"""
    SELECT /*+ BROADCAST(p) */ p.v, o.uid AS u, o.gkey,
           GREATEST(o.rs, p.rs) AS s, LEAST(o.re, p.re) AS e,
           (o.cin = 1 AND o.rs >= p.rs) OR (p.cin = 1 AND p.rs >= o.rs)
           OR (o.cout = 1 AND o.re <= p.re) OR (p.cout = 1 AND p.re <= o.re) AS edge
    FROM {grid_rel} o
    JOIN (
        SELECT f.uid AS v, x.gkey, x.b, GREATEST(x.s, f.t0) AS s, LEAST(x.e, {hi}) AS e,
               GREATEST(x.rs, f.t0) AS rs, LEAST(x.re, {hi}) AS re,
               CASE WHEN x.rs >= f.t0 THEN x.cin ELSE 0 END AS cin,
               CASE WHEN x.re <= {hi} THEN x.cout ELSE 0 END AS cout
        FROM {uid_rel} x JOIN first_order f ON x.uid = f.uid
        WHERE x.e > f.t0 AND x.s < {hi}
    ) AS p ON o.gkey = p.gkey AND o.b = p.b
    WHERE o.s < p.e AND o.e > p.s AND GREATEST(o.s, p.s) = GREATEST(o.rs, p.rs)
      AND o.uid <> {{p:case}}
      AND NOT EXISTS (SELECT 1 FROM first_order x WHERE x.uid = o.uid)
    """


def second_order_fold(min_overlap_s: int, dialect: Dialect) -> str:
    """Second-order companions ``(uid, longest, total, first_s, vias, gkeys)`` from the
    intersections in view ``so_iv(v, u, gkey, s, e, edge)`` (:func:`second_order_intervals`),
    folded as :func:`fugong.tracing.engines.base.second_order_rows` documents.

    Two intersections of the same ``(v, u, gkey)`` touch only where a run of ``v`` or ``u`` ends
    and the next one in the same grid starts, which happens only across a partition edge: if
    ``I1`` ends where ``I2`` starts, one side's run ends there (``cout``) and one side's next run
    starts there (``cin``), so both are marked ``edge``. Only those are merged (a window over a
    few rows instead of millions); the rest are maximal already.
    """
    m = min_overlap_s
    merged = merge_touching("SELECT v, u, gkey, s, e FROM so_iv WHERE edge", ["v", "u", "gkey"])
    # Folded here, not in Python: a case with a thousand companions has tens of millions of
    # intervals. Longest, first contact, vias and grids come from the long intervals alone (a pair
    # qualifies by one of them, and its longest is one of them); only the total needs every
    # interval, of the qualifying pairs — a join with those pairs, far cheaper than grouping
    # all the pairs that ever met.
    return f"""
    WITH m AS (
        SELECT v, u, gkey, s, e FROM so_iv WHERE NOT edge
        UNION ALL
        SELECT v, u, gkey, s, e FROM ({merged}) AS mm
    ),
    long_iv AS (SELECT v, u, gkey, s, e FROM m WHERE e - s >= {m}),
    pairs AS (SELECT DISTINCT v, u FROM long_iv),
    totals AS (
        SELECT m.u, SUM(m.e - m.s) AS total
        FROM m JOIN pairs q ON m.v = q.v AND m.u = q.u GROUP BY m.u
    ),
    per_uid AS (
        SELECT u, MAX(e - s) AS longest, MIN(s) AS first_s,
               {dialect.sorted_set("v")} AS vias, {dialect.sorted_set("gkey")} AS gkeys
        FROM long_iv GROUP BY u
    )
    SELECT p.u, p.longest, t.total, p.first_s, p.vias, p.gkeys
    FROM per_uid p JOIN totals t ON p.u = t.u
    """
