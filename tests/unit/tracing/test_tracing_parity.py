"""The parity suite: every query on DuckDB and Spark equals the reference oracle, row for row.

Data: a small generated city and hand-made edge cases (see ``conftest.edge_records``). Queries run
both on the built stays (default profile) and through the raw-record fallback (another grid size /
max_gap than the build). A few facts about the edge cases are also asserted absolutely, so that the
oracle itself is checked against the text of the semantics.
"""

# S608: SQL here is assembled from integers computed in Python and from file paths we quote;
# values a user types (uids) are always bound parameters.
# ruff: noqa: S608

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from fugong.tracing.common import (
    Cell,
    CompanionQuery,
    Profile,
    data_grid_cities,
    gkey,
    grid_cities,
)
from fugong.tracing.engines.duckdb import DuckDBEngine
from fugong.tracing.engines.reference import ReferenceEngine

from .conftest import (
    AT,
    CITY_START,
    border_cells,
    border_records,
    edge_cells,
    edge_records,
    write_data,
)

# Spark runs every query kind and the fallback path, on a subset of the variants: each Spark query
# costs seconds of JVM scheduling even on tiny data, and the SQL text is shared with DuckDB.
SPARK_CITY = {
    "companions-busiest",
    "companions-busiest-long-stay",
    "second-order-busiest",
    "trajectory-busiest-2days",
    "itinerary-traveller",
    "fallback-trajectory",
}
SPARK_EDGE = {"companions", "second-order", "trajectories", "itineraries", "fallback-companions"}


def _matrix(names: list[str], spark_names: set[str]) -> list[Any]:
    out: list[Any] = [pytest.param("duckdb", n, id=f"duckdb-{n}") for n in names]
    out += [
        pytest.param("spark", n, id=f"spark-{n}", marks=pytest.mark.spark)
        for n in names
        if n in spark_names
    ]
    return out


REFERENCE = ReferenceEngine()
_oracle: dict[tuple[str, str], Any] = {}

Query = Callable[[Any, Path], Any]

CITY_AT = datetime.combine(CITY_START + timedelta(days=2), datetime.min.time(), UTC) + timedelta(
    hours=15
)
OTHER = Profile(grid_m=500.0, max_gap_s=1800)


def make_engine(request: pytest.FixtureRequest, name: str) -> Any:
    if name == "spark":
        from fugong.tracing.engines.spark import SparkEngine

        return SparkEngine(spark=request.getfixturevalue("spark"))
    return DuckDBEngine(threads=2)


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def engine(request: pytest.FixtureRequest) -> Any:
    return make_engine(request, request.param)


@pytest.fixture(scope="session")
def city_cases(city_dir: Path) -> dict[str, str]:
    """Deterministic interesting uids: the busiest, a traveller, the smallest uid."""
    glob = str(city_dir / "records" / "*" / "*.parquet")
    con = duckdb.connect()
    busiest = con.execute(
        f"SELECT uid FROM read_parquet('{glob}') GROUP BY uid ORDER BY count(*) DESC, uid LIMIT 1"
    ).fetchall()[0][0]
    cells = str(city_dir / "cells.parquet")
    travellers = con.execute(
        f"""SELECT r.uid FROM read_parquet('{glob}') r JOIN read_parquet('{cells}') c
            USING (cell_id) WHERE c.city <> '广州市' GROUP BY r.uid ORDER BY r.uid LIMIT 1"""
    ).fetchall()
    smallest = con.execute(f"SELECT min(uid) FROM read_parquet('{glob}')").fetchall()[0][0]
    return {
        "busiest": busiest,
        "traveller": travellers[0][0] if travellers else busiest,
        "smallest": smallest,
    }


def _companions(role: str, days: int = 14, **kw: Any) -> Callable[[dict[str, str]], Query]:
    def make(cases: dict[str, str]) -> Query:
        q = CompanionQuery(cases[role], CITY_AT, days=days, **kw)
        return lambda e, d: e.companions(d, q)

    return make


def _second(role: str, **kw: Any) -> Callable[[dict[str, str]], Query]:
    def make(cases: dict[str, str]) -> Query:
        q = CompanionQuery(cases[role], CITY_AT, days=14, **kw)
        return lambda e, d: e.second_order(d, q)

    return make


def _trajectory(role: str, days: int, profile: Profile | None = None) -> Any:
    return lambda cases: lambda e, d: e.trajectory(d, cases[role], CITY_AT, days, profile)


def _itinerary(role: str, min_stay: int, profile: Profile | None = None) -> Any:
    return lambda cases: lambda e, d: e.itinerary(d, cases[role], CITY_AT, 14, min_stay, profile)


CITY_QUERIES: dict[str, Callable[[dict[str, str]], Query]] = {
    "companions-busiest": _companions("busiest"),
    "companions-smallest-1day": _companions("smallest", days=1),
    "companions-traveller-5min": _companions("traveller", min_overlap_s=300),
    "companions-busiest-long-stay": _companions("busiest", min_total_stay_s=12 * 3600),
    "second-order-long-stay": _second("smallest", min_total_stay_s=12 * 3600),
    "second-order-busiest": _second("busiest"),
    "trajectory-busiest-2days": _trajectory("busiest", 2),
    "itinerary-traveller": _itinerary("traveller", 4 * 3600),
    "itinerary-busiest-1h": _itinerary("busiest", 3600),
    "fallback-companions": _companions("busiest", profile=OTHER),
    "fallback-second-order": _second("smallest", profile=OTHER, min_overlap_s=300),
    "fallback-trajectory": _trajectory("traveller", 3, OTHER),
    "fallback-itinerary": _itinerary("traveller", 3600, OTHER),
}


def _oracle_answer(key: tuple[str, str], query: Query, data_dir: Path) -> Any:
    if key not in _oracle:
        _oracle[key] = query(REFERENCE, data_dir)
    return _oracle[key]


@pytest.mark.parametrize(("engine_name", "name"), _matrix(list(CITY_QUERIES), SPARK_CITY))
def test_city_parity(
    request: pytest.FixtureRequest,
    city_dir: Path,
    city_cases: dict[str, str],
    engine_name: str,
    name: str,
) -> None:
    engine = make_engine(request, engine_name)
    query = CITY_QUERIES[name](city_cases)
    expected = _oracle_answer(("city", name), query, city_dir)
    assert query(engine, city_dir) == expected


def test_city_queries_are_not_trivial(city_dir: Path, city_cases: dict[str, str]) -> None:
    """The generated city must exercise the code: companions, second order and trips exist."""
    busiest = CITY_QUERIES["companions-busiest"](city_cases)(REFERENCE, city_dir)
    assert busiest
    second = _oracle_answer(
        ("city", "second-order-busiest"),
        CITY_QUERIES["second-order-busiest"](city_cases),
        city_dir,
    )
    assert second and all(c.via for c in second)
    trip = CITY_QUERIES["itinerary-traveller"](city_cases)(REFERENCE, city_dir)
    assert any(c.city != "广州市" for c in trip)


EDGE_UIDS = sorted({r[0] for r in edge_records()} | {"nobody"})
# helen's trajectory crosses from 上海市 into 广州市: each stay names its grid's city.
TRAJECTORY_UIDS = ("case", "carol", "helen", "ivan", "nobody")


EDGE_QUERIES: dict[str, Query] = {
    "companions": lambda e, d: e.companions(d, CompanionQuery("case", AT, days=3)),
    "companions-2days": lambda e, d: e.companions(d, CompanionQuery("case", AT, days=2)),
    "companions-long-stay": lambda e, d: e.companions(
        d, CompanionQuery("case", AT, days=3, min_total_stay_s=3 * 3600)
    ),
    "companions-5min": lambda e, d: e.companions(
        d, CompanionQuery("case", AT, days=3, min_overlap_s=300)
    ),
    "second-order": lambda e, d: e.second_order(d, CompanionQuery("case", AT, days=3)),
    "second-order-alice": lambda e, d: e.second_order(d, CompanionQuery("alice", AT, days=3)),
    "trajectories": lambda e, d: [e.trajectory(d, u, AT, 3) for u in TRAJECTORY_UIDS],
    "itineraries": lambda e, d: [e.itinerary(d, u, AT, 3, 3600) for u in ("case", "helen")],
    "all-trajectories": lambda e, d: [e.trajectory(d, u, AT, 3) for u in EDGE_UIDS],
    "all-itineraries": lambda e, d: [e.itinerary(d, u, AT, 3, 3600) for u in EDGE_UIDS],
    "itinerary-helen-4h": lambda e, d: e.itinerary(d, "helen", AT, 3, 4 * 3600),
    "fallback-companions": lambda e, d: e.companions(
        d, CompanionQuery("case", AT, days=3, profile=Profile(max_gap_s=1200))
    ),
    "fallback-trajectories": lambda e, d: [
        e.trajectory(d, u, AT, 3, Profile(grid_m=1600.0)) for u in ("case", "bob", "carol")
    ],
}


@pytest.mark.parametrize(("engine_name", "name"), _matrix(list(EDGE_QUERIES), SPARK_EDGE))
def test_edge_parity(
    request: pytest.FixtureRequest, edge_dir: Path, engine_name: str, name: str
) -> None:
    engine = make_engine(request, engine_name)
    query = EDGE_QUERIES[name]
    assert query(engine, edge_dir) == _oracle_answer(("edge", name), query, edge_dir)


# Border grids (conftest.border_cells): on the built stays, and through the fallback with 1600 m
# grids, where 70:70 and 71:70 fall into one grid 35:35 of three 广州市 and two 佛山市 cells.
BORDER_QUERIES: dict[str, Query] = {
    "trajectories": lambda e, d: [e.trajectory(d, u, AT, 3) for u in ("walker", "runner")],
    "fallback-trajectories": lambda e, d: [
        e.trajectory(d, u, AT, 3, Profile(grid_m=1600.0)) for u in ("walker", "runner")
    ],
}


@pytest.mark.parametrize(
    ("engine_name", "name"), _matrix(list(BORDER_QUERIES), set(BORDER_QUERIES))
)
def test_border_parity(
    request: pytest.FixtureRequest, border_dir: Path, engine_name: str, name: str
) -> None:
    engine = make_engine(request, engine_name)
    query = BORDER_QUERIES[name]
    expected = _oracle_answer(("border", name), query, border_dir)
    assert all(expected)  # both uids have stays: the comparison is not between empty lists
    assert query(engine, border_dir) == expected


@pytest.fixture(scope="module")
def int_ts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fugong.tracing.build import build

    d = write_data(tmp_path_factory.mktemp("intts"), edge_cells(), edge_records(), ts_as_int=True)
    build(d)
    return d


def test_integer_timestamps_give_the_same_answers(
    engine: Any, int_ts_dir: Path, edge_dir: Path
) -> None:
    q = CompanionQuery("case", AT, days=3)
    assert engine.second_order(int_ts_dir, q) == _oracle_answer(
        ("edge", "second-order"), EDGE_QUERIES["second-order"], edge_dir
    )
    assert engine.trajectory(int_ts_dir, "case", AT, 3) == REFERENCE.trajectory(
        int_ts_dir, "case", AT, 3
    )


# --- the oracle against the text ------------------------------------------------------------


def test_edge_companions_follow_the_semantics(edge_dir: Path) -> None:
    got = {c.uid: c for c in REFERENCE.companions(edge_dir, CompanionQuery("case", AT, days=3))}
    # alice: 08:20-09:10 in grid 50:50, the case there 08:00-11:00 across two cells of one grid.
    assert got["alice"].longest_overlap_s == 50 * 60
    assert got["alice"].grids == ("50:50",)
    # carol: 5 min before and 8 min after midnight, one continuous interval.
    assert got["carol"].longest_overlap_s == 13 * 60
    # dave: exactly min_overlap, inclusive; erin: one second short.
    assert got["dave"].longest_overlap_s == 600
    assert "erin" not in got
    # bob: only 5-minute pieces while the case ping-pongs between grids.
    assert "bob" not in got
    # ivan: the case's same-second records order by cell id, so the case is in 60:60 at 18:00.
    assert got["ivan"].longest_overlap_s == 3600
    assert got["ivan"].grids == ("60:60",)
    assert set(got) == {"alice", "carol", "dave", "ivan"}


def test_long_stay_filter_is_optional_and_narrows(edge_dir: Path) -> None:
    everyone = REFERENCE.companions(edge_dir, CompanionQuery("case", AT, days=3))
    # Over the window the case spent 6 h 30 min in grid 50:50 and 2 h in 60:60, where ivan
    # (its companion there) spent 80 min: above 2 h 30 min only the 50:50 contacts remain.
    kept = REFERENCE.companions(edge_dir, CompanionQuery("case", AT, days=3, min_total_stay_s=9000))
    assert {c.uid for c in everyone} == {"alice", "carol", "dave", "ivan"}
    assert {c.uid for c in kept} == {"alice", "carol", "dave"}
    assert (
        REFERENCE.companions(edge_dir, CompanionQuery("case", AT, days=3, min_total_stay_s=10**6))
        == []
    )


def test_edge_second_order_starts_at_first_contact(edge_dir: Path) -> None:
    got = {c.uid: c for c in REFERENCE.second_order(edge_dir, CompanionQuery("case", AT, days=3))}
    assert got["frank"].via == ("alice",)
    assert got["frank"].longest_overlap_s == 30 * 60
    assert "gina" not in got  # met alice only before alice met the case
    assert "case" not in got and "alice" not in got


def test_edge_window_and_itinerary(edge_dir: Path) -> None:
    # The record exactly at `at` is outside [at - days, at); the one at at - days is inside.
    traj = REFERENCE.trajectory(edge_dir, "case", AT, 2)
    assert traj[0].start == AT - timedelta(days=2)
    assert traj[-1].end <= AT
    helen = REFERENCE.itinerary(edge_dir, "helen", AT, 3, 4 * 3600)
    assert [(c.city, c.total_s) for c in helen] == [("上海市", 5 * 3600)]
    assert REFERENCE.companions(edge_dir, CompanionQuery("nobody", AT)) == []


def test_unknown_uid_is_an_empty_answer(edge_dir: Path) -> None:
    e = DuckDBEngine()
    assert e.companions(edge_dir, CompanionQuery("nobody", AT)) == []
    assert e.second_order(edge_dir, CompanionQuery("nobody", AT)) == []
    assert e.trajectory(edge_dir, "nobody", AT) == []
    assert e.itinerary(edge_dir, "nobody", AT) == []


def test_trajectory_cities_cross_cities_and_border_grids(edge_dir: Path, border_dir: Path) -> None:
    helen = REFERENCE.trajectory(edge_dir, "helen", AT, 3)
    assert [(t.city, t.duration_s) for t in helen] == [("上海市", 5 * 3600), ("广州市", 3 * 3600)]
    assert helen[1].grid == "60:60"
    assert helen[0].to_json()["city"] == "上海市"
    # walker uses the 佛山市 cell of 70:70 and the 广州市 cell of 71:70: the stay's city is the
    # grid's (majority in 70:70, the smaller name on the 71:70 tie), not the cell's.
    walker = REFERENCE.trajectory(border_dir, "walker", AT, 3)
    assert [(t.grid, t.city, t.duration_s) for t in walker] == [
        ("70:70", "广州市", 3600),
        ("71:70", "佛山市", 3600),
        ("72:70", "广州市", 3600),
    ]
    coarse = REFERENCE.trajectory(border_dir, "walker", AT, 3, Profile(grid_m=1600.0))
    assert [(t.grid, t.city, t.duration_s) for t in coarse] == [
        ("35:35", "广州市", 7200),
        ("36:35", "广州市", 3600),
    ]
    runner = REFERENCE.trajectory(border_dir, "runner", AT, 3)
    assert {(t.grid, t.city) for t in runner} == {
        ("70:70", "广州市"),
        ("71:70", "佛山市"),
        ("72:70", "广州市"),
    }


def test_grid_cities_rule() -> None:
    cells = [Cell(*c) for c in border_cells()]
    want = {gkey(70, 70): "广州市", gkey(71, 70): "佛山市", gkey(72, 70): "广州市"}
    assert grid_cities(cells, Profile()) == want
    assert grid_cities(list(reversed(cells)), Profile()) == want  # not decided by file order
    assert grid_cities(cells, Profile(grid_m=1600.0)) == {
        gkey(35, 35): "广州市",
        gkey(36, 35): "广州市",
    }
    # Three cities in one grid, two tied at the top: the smaller of those two names, not 东莞市
    # (the smallest name overall), which has fewer cells.
    g = cells[0]
    three = [
        Cell(1, g.lon, g.lat, "广州市"),
        Cell(2, g.lon, g.lat, "深圳市"),
        Cell(3, g.lon, g.lat, "深圳市"),
        Cell(4, g.lon, g.lat, "广州市"),
        Cell(5, g.lon, g.lat, "东莞市"),
    ]
    assert grid_cities(three, Profile()) == {gkey(70, 70): "广州市"}
    # A cell id listed twice counts once, its last row winning (as the reference's lookup).
    assert grid_cities([*three, Cell(4, g.lon, g.lat, "深圳市")], Profile()) == {
        gkey(70, 70): "深圳市"
    }


def test_grid_cities_follow_a_rewritten_cells_file(tmp_path: Path) -> None:
    d = write_data(tmp_path / "d", border_cells(), border_records())
    assert data_grid_cities(d, Profile())[gkey(71, 70)] == "佛山市"
    moved = [(c[0], c[1], c[2], "中山市" if c[0] == 25 else c[3]) for c in border_cells()]
    write_data(d, moved, border_records())
    st = (d / "cells.parquet").stat()  # same size possible: make sure the mtime differs too
    os.utime(d / "cells.parquet", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert data_grid_cities(d, Profile())[gkey(71, 70)] == "中山市"
    assert DuckDBEngine(threads=2).trajectory(d, "walker", AT, 3)[1].city == "中山市"
