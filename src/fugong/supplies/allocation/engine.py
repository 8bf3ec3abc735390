"""The allocation engine: tiers, max-min fair shares, whole-unit rounding, cheapest routing.

Semantics (the supplies domain note, ``shared/domain/supplies.md``): an offer can serve a
request iff same item, the request's region is among the offer's regions and the offer's price
is at most the request's cap. Tiers are served lexicographically; within a tier the fractional
*fair share* is max-min fair on the fill ratio (allocated / requested); whole-unit amounts are
the floor or the ceiling of the share with each tier getting the largest total it can; the
routing minimises the price paid.

Algorithm
=========
Items never interact, so each item is solved on its own network.

1. **Compression.** Offers with the same price and region set are interchangeable: they become
   one *offer group*. A request's reach is decided by its region and by how many of the prices
   offered in that region are within its cap (its *rank*), so requests with the same (tier,
   region, rank) are interchangeable: a *class*. For each region the used ranks form a *chain*
   ``v1 -> v2 -> ...`` (uncapacitated); an offer group feeds, in every region it serves, the
   lowest chain node whose rank admits its price, and a class is an edge from the chain node of
   its rank to the sink (capacity: what the class may receive). A path group -> class exists
   iff the group may serve the class, so the network ``source -> groups -> chains -> sink`` has
   O(offers x regions + classes) edges, independent of the number of requests.

2. **Fair shares of one tier, given the earlier tiers.** For a set ``X`` of this tier's classes
   let ``g(X)`` be the most they can receive together while every earlier class keeps its fixed
   amount (sink edges of earlier classes have capacity = their amount; a class's own demand
   caps it). ``g`` is a polymatroid rank function (the contraction of the network's polymatroid
   by the earlier tiers), and the max-min fair vector on ``x_c / Q_c`` is its lexicographically
   optimal base for the weights ``Q_c`` (Fujishige 1980). Because a class's members are
   symmetric and the optimum is unique, every member of a class gets the same fill, so working
   on classes loses nothing: ``share_r = fill_c * q_r``.

   The base is found by Fujishige's *decomposition algorithm*, with one maximum flow per step:
   take a sub-network with classes ``U`` and their total ``g(U)``; set ``lam = g(U) / Q(U)``,
   cap each class at ``lam * Q_c`` and compute a maximum flow (earlier classes are saturated
   first). If every class is saturated, they all have fill ``lam`` (``U`` is tight and
   uniform). Otherwise let ``R`` be the nodes reachable from the source in the residual graph
   (the minimum cut closest to the source), a class being in ``R`` when its chain node is. The
   classes outside ``R`` minimise ``g(Y) - lam * Q(Y)`` (the cut through ``R`` is a minimum
   cut), so by the decomposition theorem their fills are at most ``lam`` and those in ``R`` at
   least ``lam``. All internal edges are uncapacitated, so no internal edge leaves ``R``, and
   the flow on edges entering ``R`` is zero: the two sides are independent networks. The poor
   side is the *restriction* of ``g`` (its offers are saturated by it: ``g(poor) =`` the flow
   it received); the rich side is the *contraction* (``g(rich) = g(U) - g(poor)``). Recurse on
   both. Each step splits a class set into two non-empty parts, so there are fewer than
   ``2 |U|`` steps, each one max flow on a shrinking network. Capacities are scaled by ``Q(U)``
   so that every flow is an exact integer; fills are exact fractions.

   Why fixing earlier tiers' *amounts* (not routes) is right, and why it does not matter which
   whole-unit amounts they got: for a base ``a`` of the earlier tiers, ``{x : (a, x) feasible}``
   is exactly the contraction polymatroid, whatever base ``a`` is (submodularity), so the next
   tier's fair share and maximum total do not depend on how the earlier tiers were rounded.

3. **Whole units.** With ``L_c`` / ``H_c`` the sums of the members' floors / ceilings, the
   fractional shares lie in the box ``L <= x <= H`` and in the polymatroid, and reach the tier's
   maximum ``g``; a polymatroid cut by an integral box is integral, so an integral point with
   total ``g`` exists. It is found on a *master* flow kept per item: raise the class sink
   capacities to ``L_c`` and augment (all saturate), then to ``H_c`` and augment (reaches ``g``).
   Augmenting never lowers a flow into the sink, so the floors, and all earlier tiers, are kept.
   Inside a class the ``a_c - L_c`` extra units go to the members with the largest fractional
   parts (ties: input order), which keeps every member at its floor or ceiling.

4. **Cheapest routing.** With every class's amount ``a_c`` fixed, the cost depends only on how
   many units each offer group supplies. Open the groups in increasing price order and augment
   a maximum flow (class sink capacities ``a_c``) after each price. An augmenting path never
   re-enters the source, so a source edge's flow never decreases: at the end every price prefix
   ``P_k`` (the groups priced at most ``p_k``) supplies ``u(P_k)`` = the most any plan meeting
   the amounts can take from it. Since ``cost = p_max * A - sum_k (p_(k+1) - p_k) * u(P_k)``
   with ``A`` the fixed total, maximising every prefix at once minimises the cost; no cost
   potentials or floating-point prices are involved. When the amounts take every unit on offer
   (a shortage round) the usage is forced and a single max flow suffices. The flow is then
   unpacked: along each region chain, units entering at a level may serve any class at that
   level or above; inside a class and inside an offer group units are handed out in input
   order. Earlier tiers' routes may change here: the tiers constrain amounts, not routes.

Everything except the per-request bookkeeping runs on the compressed networks, whose size does
not grow with the number of requests; flows are exact Python integers.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import pairwise

from fugong.supplies.allocation._flow import FlowGraph
from fugong.supplies.allocation.model import (
    Plan,
    PlanLine,
    Problem,
    RequestResult,
    TierResult,
    validate_problem,
)

__all__ = ["allocate"]

_S = 0  # source node
_T = 1  # sink node
_ZERO = Fraction(0)


@dataclass(slots=True)
class _Class:
    """Interchangeable requests of one item: same tier, region and rank (reach).

    A class has no node of its own: it is an edge from its chain node to the sink (a node
    would only repeat its chain node's reachability). Classes of rank 0 reach no offer.
    """

    id: int
    tier: int
    region: str
    rank: int
    quantity: int = 0
    members: list[int] = field(default_factory=list)
    at: int = -1  # chain node; -1 for rank 0
    sink: int = -1  # edge at -> sink in the item's graphs; -1 for rank 0


@dataclass(slots=True)
class _Group:
    """Interchangeable offers of one item: same unit price and region set."""

    price: float
    regions: tuple[str, ...]
    node: int
    quantity: int = 0
    members: list[int] = field(default_factory=list)


# A sub-problem of the decomposition: its offer groups, its classes of the current tier, the
# earlier tiers' classes in it with their fixed amounts, and g(its classes).
_Part = tuple[list[_Group], list[_Class], dict[int, int], int]


class _ItemSolver:
    """One item's compressed network and its tier-by-tier solution."""

    def __init__(
        self, problem: Problem, offer_idx: list[int], request_idx: list[int], qty: list[int]
    ) -> None:
        self.problem = problem
        offers, requests = problem.offers, problem.requests
        next_node = 2

        groups: dict[tuple[float, frozenset[str]], _Group] = {}
        for oi in offer_idx:
            o = offers[oi]
            if o.quantity == 0 or not o.regions:
                continue
            key = (o.unit_price, frozenset(o.regions))
            grp = groups.get(key)
            if grp is None:
                regions = tuple(dict.fromkeys(o.regions))
                grp = groups[key] = _Group(o.unit_price, regions, next_node)
                next_node += 1
            grp.quantity += o.quantity
            grp.members.append(oi)
        self.groups = list(groups.values())

        region_prices: dict[str, set[float]] = {}
        for grp in self.groups:
            for region in grp.regions:
                region_prices.setdefault(region, set()).add(grp.price)
        prices = {region: sorted(ps) for region, ps in region_prices.items()}

        # Most requests repeat a (tier, region, cap) already seen: look that up first and only
        # compute the rank for new combinations.
        classes: dict[tuple[int, str, int], _Class] = {}
        seen: dict[tuple[int, str, float | None], _Class] = {}
        for ri in request_idx:
            r = requests[ri]
            raw = (r.tier, r.region, r.max_unit_price)
            cls = seen.get(raw)
            if cls is None:
                ladder = prices.get(r.region, [])
                cap = r.max_unit_price
                rank = len(ladder) if cap is None else bisect_right(ladder, cap)
                ckey = (r.tier, r.region, rank)
                cls = classes.get(ckey)
                if cls is None:
                    cls = classes[ckey] = _Class(len(classes), r.tier, r.region, rank)
                seen[raw] = cls
            cls.members.append(ri)
        self.classes = list(classes.values())
        for cls in self.classes:
            cls.quantity = sum([qty[ri] for ri in cls.members])

        # Region chains over the ranks that some class uses.
        self.levels: dict[str, list[int]] = {}
        for cls in self.classes:
            if cls.rank > 0:
                self.levels.setdefault(cls.region, []).append(cls.rank)
        self.chain: dict[tuple[str, int], int] = {}
        for region, ranks in self.levels.items():
            ranks[:] = sorted(set(ranks))
            for rank in ranks:
                self.chain[region, rank] = next_node
                next_node += 1

        # One template graph; every flow of this item runs on a copy of it with its own source
        # and sink capacities. The uncapacitated edges get a capacity no scaled flow can reach.
        self.supply = sum(grp.quantity for grp in self.groups)
        inf = (self.supply + 1) * (sum(cls.quantity for cls in self.classes) + 1)
        graph = FlowGraph(next_node)
        self.source_edge = {grp.node: graph.add_edge(_S, grp.node, 0) for grp in self.groups}
        self.entry: list[tuple[_Group, int, int]] = []  # (group, chain node, edge)
        for grp in self.groups:
            for region in grp.regions:
                used = self.levels.get(region, [])
                # Enter at the lowest used rank that admits this price.
                j = bisect_left(used, bisect_left(prices[region], grp.price) + 1)
                if j < len(used):
                    node = self.chain[region, used[j]]
                    self.entry.append((grp, node, graph.add_edge(grp.node, node, inf)))
        for region, ranks in self.levels.items():
            for lo, hi in pairwise(ranks):
                graph.add_edge(self.chain[region, lo], self.chain[region, hi], inf)
        for cls in self.classes:
            if cls.rank > 0:
                cls.at = self.chain[cls.region, cls.rank]
                cls.sink = graph.add_edge(cls.at, _T, 0)
        self.template = graph

    # -- step 2: fair shares ------------------------------------------------------------------

    def _subflow(
        self, groups: list[_Group], fixed: dict[int, int], open_caps: dict[int, int], scale: int
    ) -> tuple[dict[int, int], list[bool]]:
        """Max flow on the sub-network of ``groups`` and the given classes (by sink edge).

        Sink capacities: ``fixed`` (sink edge -> amount, times ``scale``) are saturated first,
        then ``open_caps`` (sink edge -> capacity, already scaled) are added and augmented.
        Nodes outside the part keep zero source and sink capacity; a path that leaves a part
        never comes back to it (no edge enters a rich side; a poor side is never re-entered),
        so they are dead ends and the copy behaves as the induced sub-network. Returns the flow
        on each open sink edge and the residual reachability of every node.
        """
        graph = self.template.copy()
        cap, source = graph.cap, self.source_edge
        for grp in groups:
            cap[source[grp.node]] = grp.quantity * scale
        if fixed:
            for e, amount in fixed.items():
                cap[e] = amount * scale
            got = graph.max_flow(_S, _T)
            assert got == sum(fixed.values()) * scale, "earlier tiers no longer fit"
        for e, x in open_caps.items():
            cap[e] = x
        graph.max_flow(_S, _T)
        return {e: graph.flow(e) for e in open_caps}, graph.reachable(_S)

    def _fair_fills(
        self, master: FlowGraph, tier_classes: list[_Class], fixed: dict[int, int]
    ) -> tuple[dict[int, Fraction], int]:
        """Fill ratio of every class of one tier (by class id), and the tier's maximum total.

        Fujishige's decomposition algorithm; ``fixed`` (sink edge -> amount) holds the earlier
        classes' amounts, which ``master`` already delivers.
        """
        fills = {cls.id: _ZERO for cls in tier_classes if cls.rank == 0}
        served = [cls for cls in tier_classes if cls.rank > 0]
        # g(all classes of the tier): the master flow saturates the earlier tiers already.
        trial = master.copy()
        for cls in served:
            trial.set_capacity(cls.sink, cls.quantity)
        total = trial.max_flow(_S, _T)
        if not served:
            return fills, total

        at_of = {e: self.template.to[e ^ 1] for e in fixed}  # sink edge -> its chain node
        stack: list[_Part] = [(self.groups, served, fixed, total)]
        while stack:
            groups, members, fixed_here, g = stack.pop()
            q = sum(cls.quantity for cls in members)
            if g in (0, q) or len(members) == 1:
                fills.update(dict.fromkeys([cls.id for cls in members], Fraction(g, q)))
                continue
            caps = {cls.sink: g * cls.quantity for cls in members}
            flows, reach = self._subflow(groups, fixed_here, caps, q)
            if all(flows[e] == x for e, x in caps.items()):
                fills.update(dict.fromkeys([cls.id for cls in members], Fraction(g, q)))
                continue
            poor = [cls for cls in members if not reach[cls.at]]
            rich = [cls for cls in members if reach[cls.at]]
            assert poor and rich, "a level that is not tight must split"
            g_poor, rest = divmod(sum(flows[cls.sink] for cls in poor), q)
            assert rest == 0, "the poor side's total is an integer rank"
            stack.append(
                (
                    [grp for grp in groups if not reach[grp.node]],
                    poor,
                    {e: a for e, a in fixed_here.items() if not reach[at_of[e]]},
                    g_poor,
                )
            )
            stack.append(
                (
                    [grp for grp in groups if reach[grp.node]],
                    rich,
                    {e: a for e, a in fixed_here.items() if reach[at_of[e]]},
                    g - g_poor,
                )
            )
        return fills, total

    # -- the whole item -----------------------------------------------------------------------

    def solve(
        self, qty: list[int], allocated: list[int], fair: list[Fraction]
    ) -> list[tuple[int, int, int]]:
        """Fill ``allocated`` and ``fair`` (fill of the fair share) for this item's requests;
        return the routed (request, offer, units)."""
        master = self.template.copy()
        for grp in self.groups:
            master.set_capacity(self.source_edge[grp.node], grp.quantity)

        amount: dict[int, int] = {}  # sink edge of a served class -> whole units
        for tier in sorted({cls.tier for cls in self.classes}):
            tier_classes = [cls for cls in self.classes if cls.tier == tier]
            fixed = {e: a for e, a in amount.items() if a > 0}
            fills, best = self._fair_fills(master, tier_classes, fixed)

            lo: dict[int, int] = {}
            hi: dict[int, int] = {}
            remainders: dict[int, list[tuple[int, int]]] = {}  # sink -> [(remainder, request)]
            for cls in tier_classes:
                f = fills[cls.id]
                num, den = f.numerator, f.denominator
                total_floor = 0
                parts = []
                for ri in cls.members:
                    fair[ri] = f
                    whole, rem = divmod(num * qty[ri], den)
                    allocated[ri] = whole
                    total_floor += whole
                    if rem:
                        parts.append((rem, ri))
                if cls.rank > 0:
                    remainders[cls.sink] = parts
                    lo[cls.sink] = total_floor
                    hi[cls.sink] = total_floor + len(parts)

            if any(lo.values()):
                for e, x in lo.items():
                    master.set_capacity(e, x)
                master.max_flow(_S, _T)
                assert all(master.flow(e) == x for e, x in lo.items()), "floors must fit"
            if hi != lo:
                for e, x in hi.items():
                    master.set_capacity(e, x)
                master.max_flow(_S, _T)

            got = 0
            for e, floor_total in lo.items():
                a = master.flow(e)
                amount[e] = a
                got += a
                # Largest remainders first; the sort is stable, so ties keep input order.
                parts = sorted(remainders[e], key=lambda p: -p[0])
                for _, ri in parts[: a - floor_total]:
                    allocated[ri] += 1
            assert got == best, "a tier must receive its maximum total"

        return self._route(amount, allocated)

    # -- step 4: routing ----------------------------------------------------------------------

    def _route(self, amount: dict[int, int], allocated: list[int]) -> list[tuple[int, int, int]]:
        graph = self.template.copy()
        cap = graph.cap
        for e, a in amount.items():
            cap[e] = a
        # Cheapest first: open the offer groups one price at a time and augment. Flow on a
        # source edge never decreases (an augmenting path never re-enters the source), so at
        # the end every price prefix supplies as much as any plan could, and
        # cost = p_max * total - sum_k (p_(k+1) - p_k) * used(prices <= p_k) is minimal.
        need = sum(amount.values())
        if need == self.supply:
            # A shortage round takes every unit on offer: each group's usage is forced, every
            # plan costs the same, and one max flow routes it.
            batches = [self.groups]
        else:
            by_price: dict[float, list[_Group]] = {}
            for grp in self.groups:
                by_price.setdefault(grp.price, []).append(grp)
            batches = [by_price[price] for price in sorted(by_price)]
        routed = 0
        for batch in batches:
            if routed == need:
                break
            for grp in batch:
                cap[self.source_edge[grp.node]] = grp.quantity
            routed += graph.max_flow(_S, _T)
        assert routed == need, "fixed amounts must be routable"

        # Unpack chain flows: units entering a region's chain at a level serve that level or
        # any above it, so walk each chain upwards with a pool of (group, units).
        entering: dict[int, list[tuple[_Group, int]]] = {}
        for grp, node, e in self.entry:
            f = graph.flow(e)
            if f > 0:
                entering.setdefault(node, []).append((grp, f))
        served_at: dict[int, list[_Class]] = {}
        for cls in self.classes:
            if amount.get(cls.sink, 0) > 0:
                served_at.setdefault(cls.at, []).append(cls)
        pieces: dict[int, list[tuple[_Group, int]]] = {}  # class id -> [(group, units)]
        for region, ranks in self.levels.items():
            pool_group: list[_Group] = []
            pool_units: list[int] = []
            head = 0
            for rank in ranks:
                node = self.chain[region, rank]
                for grp, f in entering.get(node, []):
                    pool_group.append(grp)
                    pool_units.append(f)
                for cls in served_at.get(node, []):
                    need = amount[cls.sink]
                    got: list[tuple[_Group, int]] = []
                    while need > 0:
                        take = min(pool_units[head], need)
                        got.append((pool_group[head], take))
                        need -= take
                        pool_units[head] -= take
                        if pool_units[head] == 0:
                            head += 1
                    pieces[cls.id] = got

        # Hand units out inside classes (to requests) and inside groups (from offers).
        offers = self.problem.offers
        left = {oi: offers[oi].quantity for grp in self.groups for oi in grp.members}
        cursor = {grp.node: 0 for grp in self.groups}
        lines: list[tuple[int, int, int]] = []
        for cls in self.classes:
            queue = pieces.get(cls.id)
            if not queue:
                continue
            qi = 0
            q_left = queue[0][1]
            for ri in cls.members:
                need = allocated[ri]
                while need > 0:
                    grp = queue[qi][0]
                    take = min(need, q_left)
                    need -= take
                    q_left -= take
                    while take > 0:
                        oi = grp.members[cursor[grp.node]]
                        give = min(take, left[oi])
                        lines.append((ri, oi, give))
                        left[oi] -= give
                        take -= give
                        if left[oi] == 0:
                            cursor[grp.node] += 1
                    if q_left == 0 and qi + 1 < len(queue):
                        qi += 1
                        q_left = queue[qi][1]
        return lines


def allocate(problem: Problem) -> Plan:
    """Compute the round's plan (see the module docstring for the semantics and the method)."""
    validate_problem(problem)
    offers, requests = problem.offers, problem.requests
    qty = [r.quantity for r in requests]
    offers_by_item: dict[str, list[int]] = {}
    for oi, o in enumerate(offers):
        offers_by_item.setdefault(o.item, []).append(oi)
    requests_by_item: dict[str, list[int]] = {}
    for ri, r in enumerate(requests):
        requests_by_item.setdefault(r.item, []).append(ri)

    allocated = [0] * len(requests)
    fair = [_ZERO] * len(requests)
    raw_lines: list[tuple[int, int, int]] = []
    for item, request_idx in requests_by_item.items():
        solver = _ItemSolver(problem, offers_by_item.get(item, []), request_idx, qty)
        raw_lines.extend(solver.solve(qty, allocated, fair))

    raw_lines.sort()
    oid = [o.id for o in offers]
    rid = [r.id for r in requests]
    lines = tuple(PlanLine(rid[ri], oid[oi], q) for ri, oi, q in raw_lines)
    cost = math.fsum([q * offers[oi].unit_price for _, oi, q in raw_lines])
    fills = [a / q for a, q in zip(allocated, qty, strict=True)]
    results = tuple(map(RequestResult, rid, qty, allocated, fills, fair))
    by_tier: dict[int, list[int]] = {}
    for r, a in zip(requests, allocated, strict=True):
        acc = by_tier.get(r.tier)
        if acc is None:
            acc = by_tier[r.tier] = [0, 0]
        acc[0] += r.quantity
        acc[1] += a
    tiers = tuple(TierResult(t, by_tier[t][0], by_tier[t][1]) for t in sorted(by_tier))
    return Plan(lines=lines, requests=results, tiers=tiers, cost=cost)
