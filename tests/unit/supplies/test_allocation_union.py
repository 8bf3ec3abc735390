"""The compiled union flow (step 2 of the engine) against the exact Python-integer flow.

``UnionNetwork.max_flow`` hands 64-bit capacities up to 2^62 to OR-Tools (residual arcs
clipped to what can still flow); these tests compare it with ``FlowGraph`` (plain Python
integers) on random unions, its incremental master flow (``UnionFlow``) likewise, and
the engine's union path with its all-Python path.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any, NamedTuple

import numpy as np
import pytest

from fugong.supplies.allocation import Offer, Plan, Problem, Request, allocate, engine
from fugong.supplies.allocation._flow import FlowGraph
from fugong.supplies.allocation._union import INF, UnionFlow, UnionNetwork


class ItemNet(NamedTuple):
    """One item's network in local node numbers (0 source, 1 sink, then 2 .. n_nodes - 1):
    (node, supply) of each group, the uncapacitated internal edges, the chain nodes (each
    with one edge to the sink)."""

    n_nodes: int
    groups: list[tuple[int, int]]
    internal: list[tuple[int, int]]
    chain: list[int]


def union_of(nets: list[ItemNet]) -> tuple[UnionNetwork, list[int]]:
    """The union of item networks in one numbering, as the engine builds it, and each item's
    offset (its local node x >= 2 is node offset + x)."""
    tails: list[int] = []
    heads: list[int] = []
    offsets: list[int] = []
    supply: dict[int, int] = {}
    n = 2
    for net in nets:
        off = n - 2
        offsets.append(off)
        for node, qty in net.groups:
            tails.append(0)
            heads.append(off + node)
            supply[off + node] = qty
        for u, v in net.internal:
            tails.append(off + u)
            heads.append(off + v)
        for node in net.chain:
            tails.append(off + node)
            heads.append(1)
        n += net.n_nodes - 2
    node_supply = np.zeros(n, dtype=np.int64)
    for node, qty in supply.items():
        node_supply[node] = qty
    union = UnionNetwork(
        n, np.asarray(tails, dtype=np.int64), np.asarray(heads, dtype=np.int64), node_supply
    )
    return union, offsets


def random_item(rng: random.Random) -> ItemNet:
    n_groups, n_chain = rng.randint(1, 8), rng.randint(1, 8)
    groups = [(2 + i, 0) for i in range(n_groups)]
    chain = list(range(2 + n_groups, 2 + n_groups + n_chain))
    internal = {(g, rng.choice(chain)) for g, _ in groups}
    internal |= {(rng.choice(chain), rng.choice(chain)) for _ in range(rng.randint(0, 6))}
    # Edges in both directions between two nodes are allowed: each edge has its own arcs.
    internal = {(u, v) for u, v in internal if u != v}
    return ItemNet(2 + n_groups + n_chain, groups, sorted(internal), chain)


def reference(
    nets: list[ItemNet],
    union: UnionNetwork,
    offsets: list[int],
    source_cap: np.ndarray,
    sink_cap: np.ndarray,
    part: np.ndarray,
) -> tuple[list[int], list[bool]]:
    """Per-item flow value and the residual reach, by the Python-integer Dinic."""
    graph = FlowGraph(union.n)
    sink_edges: list[list[int]] = []
    for net, off in zip(nets, offsets, strict=True):
        for node, _ in net.groups:
            graph.add_edge(0, off + node, int(source_cap[off + node]))
        for u, v in net.internal:
            same = part[off + u] == part[off + v] and part[off + u] >= 0
            graph.add_edge(off + u, off + v, INF if same else 0)
        sink_edges.append([graph.add_edge(off + c, 1, int(sink_cap[off + c])) for c in net.chain])
    graph.max_flow(0, 1)
    return [sum(graph.flow(e) for e in edges) for edges in sink_edges], graph.reachable(0)


@pytest.mark.parametrize("seed", range(40))
def test_union_flow_is_exact_on_large_capacities(seed: int) -> None:
    rng = random.Random(seed)
    nets = [random_item(rng) for _ in range(rng.randint(1, 5))]
    union, offsets = union_of(nets)
    # Up to 40 source edges, each below 2^55: the total stays below LIMIT (2^61).
    top = rng.choice((10, 2**31 + 5, 2**45, 2**55))
    source_cap = np.array([rng.randint(0, top) for _ in range(union.n)], dtype=np.int64)
    sink_cap = np.array([rng.randint(0, top) for _ in range(union.n)], dtype=np.int64)
    part = np.full(union.n, -1, dtype=np.int64)
    for i, (net, off) in enumerate(zip(nets, offsets, strict=True)):
        for x in range(2, net.n_nodes):
            # Some nodes out of every part (their internal edges are absent), the rest split
            # into two parts per item.
            part[off + x] = rng.choice((-1, 2 * i, 2 * i + 1))

    into_sink, reach = union.max_flow(source_cap, sink_cap, part)

    values, seen = reference(nets, union, offsets, source_cap, sink_cap, part)
    for net, off, value in zip(nets, offsets, values, strict=True):
        got = sum(int(into_sink[off + c]) for c in net.chain)
        assert got == value
        assert all(0 <= int(into_sink[off + c]) <= int(sink_cap[off + c]) for c in net.chain)
    assert reach.tolist() == seen


@pytest.mark.parametrize("seed", range(40))
def test_master_flow_augments_without_lowering_delivered_amounts(seed: int) -> None:
    rng = random.Random(seed)
    top = rng.choice((10, 2**31 + 5, 2**45))
    nets = [
        ItemNet(n, [(g, rng.randint(0, top)) for g, _ in groups], internal, chain)
        for n, groups, internal, chain in (random_item(rng) for _ in range(rng.randint(1, 4)))
    ]
    union, offsets = union_of(nets)
    master = UnionFlow(union)
    chain = np.asarray(
        [off + c for net, off in zip(nets, offsets, strict=True) for c in net.chain],
        dtype=np.int64,
    )
    edges = union.sink_edge[chain]
    sink_cap = np.zeros(union.n, dtype=np.int64)
    part = np.full(union.n, -1, dtype=np.int64)
    for i, (net, off) in enumerate(zip(nets, offsets, strict=True)):
        part[off + 2 : off + net.n_nodes] = i
    before = master.edge_flow(edges)
    for _ in range(4):
        by = np.asarray([rng.randint(0, top) for _ in chain], dtype=np.int64)
        master.raise_sink(chain, by)
        sink_cap[chain] += by
        master.augment()
        now = master.edge_flow(edges)
        assert (now >= before).all(), "a delivered amount was lowered"
        assert (now <= sink_cap[chain]).all()
        values, _seen = reference(nets, union, offsets, union.supply, sink_cap, part)
        for net, off, value in zip(nets, offsets, values, strict=True):
            assert (
                sum(int(master.edge_flow(union.sink_edge[[off + c]])[0]) for c in net.chain)
                == value
            )
        before = now


def district_problem(seed: int, n_requests: int, scale: int) -> Problem:
    """A small district round; ``scale`` multiplies quantities (large ones stress scaling)."""
    rng = random.Random(seed)
    regions = ("A", "B", "C", "D", "E")
    items = ("mask", "gown", "gel")
    offers = tuple(
        Offer(
            f"O{i}",
            f"S{i % 5}",
            rng.choice(items),
            rng.randint(0, 40) * scale,
            rng.choice((1.0, 1.5, 2.0, 2.5)),
            tuple(rng.sample(regions, rng.randint(1, 3))),
        )
        for i in range(rng.randint(1, 25))
    )
    requests = tuple(
        Request(
            f"R{i}",
            f"E{i}",
            rng.choice(items),
            rng.randint(1, 30) * scale + rng.randint(0, scale - 1),
            rng.choice((1, 1, 2, 3)),
            rng.choice(regions),
            rng.choice((None, 1.5, 2.0)),
        )
        for i in range(n_requests)
    )
    return Problem(offers, requests)


def check_plan(problem: Problem, plan: Plan) -> None:
    """Lines are eligible, within stock, add up to the allocations; allocations are the floor
    or the ceiling of the fair share."""
    offers = {o.id: o for o in problem.offers}
    requests = {r.id: r for r in problem.requests}
    used: dict[str, int] = {}
    got: dict[str, int] = {}
    for line in plan.lines:
        o, r = offers[line.offer], requests[line.request]
        assert line.quantity > 0 and o.item == r.item and r.region in o.regions
        assert r.max_unit_price is None or o.unit_price <= r.max_unit_price
        used[o.id] = used.get(o.id, 0) + line.quantity
        got[r.id] = got.get(r.id, 0) + line.quantity
    assert all(u <= offers[oid].quantity for oid, u in used.items())
    for res in plan.requests:
        assert got.get(res.id, 0) == res.allocated
        assert math.floor(res.share) <= res.allocated <= math.ceil(res.share)


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("scale", [1, 997, 10**9])
def test_union_path_meets_the_spec_like_the_python_path(
    seed: int, scale: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The whole-unit amounts and routes are not unique (the spec fixes the shares, the
    # floor-or-ceiling rule, the tier totals and the least cost), so the two paths may pick
    # different plans; everything the spec fixes must agree.
    problem = district_problem(seed, 60, scale)
    fast = allocate(problem)
    assert allocate(problem) == fast  # deterministic
    monkeypatch.setattr(engine, "LIMIT", 0)  # no item fits: every item takes the Python flows
    slow = allocate(problem)
    assert [r.fair_fill for r in fast.requests] == [r.fair_fill for r in slow.requests]
    assert fast.tiers == slow.tiers
    assert fast.cost == pytest.approx(slow.cost, rel=1e-12)
    check_plan(problem, fast)
    check_plan(problem, slow)


def test_items_beyond_the_union_limit_use_python_integers() -> None:
    # Totals near MAX_UNITS: scaled capacities exceed 2^62, so the item stays on the exact
    # Python flows, and the shares are still exact.
    big = 2**52
    offers = (Offer("O1", "S", "mask", big, 1.0, ("A",)), Offer("O2", "S", "gel", 9, 1.0, ("A",)))
    requests = (
        Request("R1", "E1", "mask", big, 1, "A"),
        Request("R2", "E2", "mask", big // 2 - 1, 1, "A"),
        Request("R3", "E3", "gel", 4, 1, "A"),
        Request("R4", "E4", "gel", 10, 1, "A"),
    )
    plan = allocate(Problem(offers, requests))
    fills = {r.id: r.fair_fill for r in plan.requests}
    assert fills["R1"] == fills["R2"]
    assert sum(r.allocated for r in plan.requests if r.id in ("R1", "R2")) == big
    assert fills["R3"] == fills["R4"] and fills["R3"] * 14 == 9


def test_allocate_restores_the_garbage_collector() -> None:
    import gc

    problem = district_problem(1, 20, 1)
    assert gc.isenabled()
    allocate(problem)
    assert gc.isenabled()
    gc.disable()
    try:
        allocate(problem)
        assert not gc.isenabled()  # a collector someone else turned off stays off
    finally:
        gc.enable()
    bad = Problem(problem.offers, (Request("R", "E", "mask", 0, 1, "A"),))
    with pytest.raises(ValueError, match="quantity"):
        allocate(bad)
    assert gc.isenabled()


@pytest.mark.parametrize("seed", range(12))
def test_cheapest_routing_by_min_cost_flow_matches_the_python_flows(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With supply to spare the routing is not forced: the union routes every such item by
    # one min-cost flow on price ranks. If the solver refuses, the items fall back to the
    # Python cheapest-first flows; both must cost the least (the same) and deliver the same
    # amounts, which do not depend on the routing.
    base = district_problem(seed, 60, 1)
    plenty = tuple(dataclasses.replace(o, quantity=o.quantity * 10) for o in base.offers)
    problem = Problem(plenty, base.requests)
    calls = []
    real = engine.cheapest_flow

    def counted(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(engine, "cheapest_flow", counted)
    fast = allocate(problem)
    assert calls, "the min-cost routing must have run"
    monkeypatch.setattr(engine, "cheapest_flow", lambda *args: None)
    slow = allocate(problem)
    assert [r.allocated for r in fast.requests] == [r.allocated for r in slow.requests]
    assert fast.cost == pytest.approx(slow.cost, rel=1e-12)
    check_plan(problem, fast)
    check_plan(problem, slow)


def test_items_nobody_offers_stay_in_the_compiled_union(monkeypatch: pytest.MonkeyPatch) -> None:
    # An item with requests but no offers gets fill 0 in the union like any exhausted item;
    # it must not fall to the per-item Python flows (hundreds of such items made a round
    # seven times slower).
    def no_python_flows(*args: Any) -> Any:
        raise AssertionError("per-item Python flows built")

    monkeypatch.setattr(engine, "_ItemSolver", no_python_flows)
    offers = (Offer("O1", "S", "mask", 10, 1.0, ("A",)),)
    requests = tuple(Request(f"R{i}", "E", f"item{i % 50}", 3, 1, "A") for i in range(100))
    plan = allocate(Problem(offers, (Request("M", "E", "mask", 4, 1, "A"), *requests)))
    got = {r.id: r.allocated for r in plan.requests}
    assert got.pop("M") == 4 and set(got.values()) == {0}
    assert [(ln.request, ln.offer, ln.quantity) for ln in plan.lines] == [("M", "O1", 4)]
