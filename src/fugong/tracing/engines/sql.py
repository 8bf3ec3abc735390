"""The SQL both fast engines run: one text, two dialects (DuckDB and Spark SQL).

Keeping one text is what makes the parity promise cheap to keep: a fix lands in both engines at
once. The few dialect differences are isolated in :class:`Dialect`. Named parameters are written
``{p:name}`` and turned into ``$name`` (DuckDB) or ``:name`` (Spark); integer constants computed in
Python are inlined.

Relations (views the engine registers before running a query):

* ``records(uid, ts, cell_id)`` — ts as epoch seconds (only the fallback and the build use it);
* ``cellmap(cell_id, gkey, city)`` — from :func:`fugong.tracing.common.cell_grid_table`;
* ``stays_grid`` / ``stays_uid`` ``(uid, gkey, b, s, e)`` — grid presence cut into buckets of
  ``bucket_s`` seconds (``b = floor(s / bucket_s)``), the same rows in two orders;
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

    def hash64(self, expr: str) -> str:
        """A 64-bit hash of a string expression."""
        if self.name == "duckdb":
            return f"hash({expr})"
        return f"xxhash64({expr})"

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
    """Cut grid runs at multiples of ``bucket_s`` so that every piece lies in one bucket ``b``."""
    return f"""
    SELECT uid, gkey, b,
           GREATEST(s, b * {bucket_s}) AS s, LEAST(e, (b + 1) * {bucket_s}) AS e
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


def hash_collisions(dialect: Dialect) -> str:
    """Count of 64-bit hash collisions among the uids a second-order query can meet."""
    h = dialect.hash64("uid")
    return f"""
    SELECT COUNT(*) - COUNT(DISTINCT h) FROM (
        SELECT DISTINCT {h} AS h, uid FROM (
            SELECT uid FROM stays_grid UNION SELECT uid FROM first_order
            UNION SELECT {{p:case}} AS uid
        ) AS a
    ) AS b
    """


def second_order(hi: int, min_overlap_s: int, dialect: Dialect, hashed: bool = True) -> str:
    """Second-order companions ``(uid, longest, total, first_s, vias, gkeys)``: the companions of
    each first-order companion in view ``first_order(uid, t0)`` over ``[t0, hi)``, excluding the
    case and the first order, folded over the vias as
    :func:`fugong.tracing.engines.base.second_order_rows` documents.

    Millions of pieces are merged here, and sorting them by two 64-character uids dominated the
    cost; with ``hashed`` the work runs on 64-bit hashes of the uids and the strings are joined
    back at the end. Only valid when :func:`hash_collisions` is 0 (the caller checks; otherwise
    it passes ``hashed=False``: exact, slower).
    """
    h = dialect.hash64 if hashed else (lambda x: x)
    pieces = f"""
        SELECT u.hv, {h("o.uid")} AS hu, o.gkey, GREATEST(o.s, u.s) AS s, LEAST(o.e, u.e) AS e
        FROM stays_grid o
        JOIN (
            SELECT {h("f.uid")} AS hv, x.gkey, x.b, GREATEST(x.s, f.t0) AS s,
                   LEAST(x.e, {hi}) AS e
            FROM stays_uid x JOIN first_order f ON x.uid = f.uid
            WHERE x.e > f.t0 AND x.s < {hi}
        ) AS u ON o.gkey = u.gkey AND o.b = u.b
        WHERE o.s < u.e AND o.e > u.s AND {h("o.uid")} <> {h("{p:case}")}
          AND {h("o.uid")} NOT IN (SELECT {h("uid")} AS h FROM first_order)
    """
    merged = merge_touching(pieces, ["hv", "hu", "gkey"])
    m = min_overlap_s
    # Folded here, not in Python: a case with a thousand companions has millions of intervals.
    return f"""
    WITH m AS ({merged}),
    pair AS (
        SELECT hv, hu, MAX(e - s) AS longest, SUM(e - s) AS total,
               MIN(CASE WHEN e - s >= {m} THEN s END) AS first_s
        FROM m GROUP BY hv, hu HAVING MAX(e - s) >= {m}
    ),
    vmap AS (SELECT DISTINCT {h("uid")} AS h, uid FROM first_order),
    per_uid AS (
        SELECT pair.hu, MAX(longest) AS longest, SUM(total) AS total, MIN(first_s) AS first_s,
               {dialect.sorted_set("vmap.uid")} AS vias
        FROM pair JOIN vmap ON pair.hv = vmap.h GROUP BY pair.hu
    ),
    grids AS (
        SELECT hu, {dialect.sorted_set("gkey")} AS gkeys FROM m WHERE e - s >= {m} GROUP BY hu
    ),
    umap AS (
        SELECT DISTINCT {h("uid")} AS h, uid FROM stays_grid
        WHERE {h("uid")} IN (SELECT hu FROM per_uid)
    )
    SELECT umap.uid, p.longest, p.total, p.first_s, p.vias, g.gkeys
    FROM per_uid p JOIN grids g ON p.hu = g.hu JOIN umap ON p.hu = umap.h
    """
