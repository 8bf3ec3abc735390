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
   so that every flow is an exact integer; fills are exact fractions. A poor side starts from
   an empty flow; a rich side goes on from its parent's flow (its classes' levels only rise,
   so raising their capacities and augmenting suffices), rescaled to its own ``Q``.

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
   (a shortage round) the usage is forced, every plan costs the same, and the master flow of
   step 3, which delivers exactly the amounts, is the routing. The flow is then
   unpacked: along each region chain, units entering at a level may serve any class at that
   level or above; inside a class and inside an offer group units are handed out in input
   order. Earlier tiers' routes may change here: the tiers constrain amounts, not routes.

Everything above runs on the compressed networks, whose size does not grow with the number of
requests. The networks of all items are disjoint, so each flow is *one* flow on their union,
run by OR-Tools' compiled push-relabel on exact 64-bit capacities (:mod:`._union`):

* step 2's results are unique, so it may use any exact maximum flow: each round of the
  decomposition (all open parts of all items) is one flow from zero, with the earlier tiers'
  amounts as capacities (see :func:`_fair_union`);
* step 3 keeps one *master* flow on the union (:class:`~._union.UnionFlow`) and raises its
  sink capacities to the floors, then the ceilings, of all items' classes of the tier at once
  (:func:`_settle_union`), two augmentations per tier;
* step 4: in a shortage item (the amounts take every unit on offer) the master flow is the
  routing; otherwise the item is routed by the cheapest-first augmentations on its own
  Python-integer :class:`~._flow.FlowGraph`, built only then.

Items whose scaled capacities would not fit the union's 2^61 budget run steps 2-4 on their
own Python-integer flows. The whole-unit amounts and the routes are not unique (the spec allows
any floor-or-ceiling plan with the tier maximum and the least cost), and which one is picked
depends on the flows' path order: the union and the Python flows may pick different plans,
both meeting the spec; each is deterministic.

Per-request bookkeeping
=======================
What does grow with the requests is done in bulk with numpy, never in a Python loop per
request: requests are keyed by (item, tier, region, cap) in one dictionary pass, each key's
quantity summed with ``bincount``; the items are solved tier by tier (items never interact, so
the order across items is free), and after each tier every request's floor ``share // 1`` and
remainder are computed for the whole tier at once from its class's exact fill ``num / den``
(64-bit integers where ``num * quantity`` fits, Python integers otherwise). The extra units of
a class go to the largest remainders through one ``lexsort`` over the requests of the classes
that get some but not all of them. Routing hands units out as a merge of three interval streams
(requests within classes, pieces from offer groups, offers within groups) with
``searchsorted``. Totals are bounded by ``MAX_UNITS`` (2^53 - 1), so sums in doubles and
positions in 64-bit integers are exact.
"""

from __future__ import annotations

import gc
import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from itertools import count, pairwise
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from fugong.supplies.allocation._flow import FlowGraph
from fugong.supplies.allocation._union import LIMIT, ItemNet, UnionFlow, UnionNetwork
from fugong.supplies.allocation.model import (
    MAX_UNITS,
    Offer,
    Plan,
    PlanColumns,
    Problem,
    TierResult,
    validate_offers,
    validate_problem,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["allocate"]

_S = 0  # source node
_T = 1  # sink node
_ZERO = Fraction(0)
_I64_SAFE = 2**62  # products below this fit in int64 with room for a sum of two


@dataclass(slots=True)
class _Class:
    """Interchangeable requests of one item: same tier, region and rank (reach).

    A class has no node of its own: it is an edge from its chain node to the sink (a node
    would only repeat its chain node's reachability). Classes of rank 0 reach no offer.
    ``gid`` numbers the classes of all items, in the order the per-request arrays use.
    """

    id: int
    tier: int
    region: str
    rank: int
    quantity: int = 0
    at: int = -1  # chain node; -1 for rank 0
    sink: int = -1  # edge at -> sink in the item's graphs; -1 for rank 0
    gid: int = -1


@dataclass(slots=True)
class _Group:
    """Interchangeable offers of one item: same unit price and region set."""

    price: float
    regions: tuple[str, ...]
    node: int
    quantity: int = 0
    members: list[int] | None = None
    gid: int = -1


# A sub-problem of the decomposition: its offer groups, its classes of the current tier, the
# earlier tiers' classes in it with their fixed amounts, g(its classes), and for a rich side
# its parent's graph with the flow's scale (a poor side starts afresh).
_Part = tuple[list[_Group], list[_Class], dict[int, int], int, tuple[FlowGraph, int] | None]
# One key of requests: (key id, tier, region, cap, total quantity).
_Key = tuple[int, int, str, Any, int]


class _ItemSolver:
    """One item's compressed network and its tier-by-tier solution."""

    def __init__(self, offers: tuple[Offer, ...], offer_idx: list[int], keys: list[_Key]) -> None:
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
                grp = groups[key] = _Group(o.unit_price, regions, next_node, members=[])
                next_node += 1
            grp.quantity += o.quantity
            assert grp.members is not None
            grp.members.append(oi)
        self.groups = list(groups.values())

        region_prices: dict[str, set[float]] = {}
        for grp in self.groups:
            for region in grp.regions:
                region_prices.setdefault(region, set()).add(grp.price)
        prices = {region: sorted(ps) for region, ps in region_prices.items()}

        # Keys arrive in order of first appearance, so classes are created in the order of
        # their first request, as the routing's hand-out order requires.
        classes: dict[tuple[int, str, int], _Class] = {}
        self.key_class: list[tuple[int, _Class]] = []
        for kid, tier, region, cap, quantity in keys:
            ladder = prices.get(region, [])
            rank = len(ladder) if cap is None else bisect_right(ladder, cap)
            ckey = (tier, region, rank)
            cls = classes.get(ckey)
            if cls is None:
                cls = classes[ckey] = _Class(len(classes), tier, region, rank)
            cls.quantity += quantity
            self.key_class.append((kid, cls))
        self.classes = list(classes.values())
        self.by_tier: dict[int, list[_Class]] = {}
        for cls in self.classes:
            self.by_tier.setdefault(cls.tier, []).append(cls)

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

        # The edge list of the item's graph, in FlowGraph numbering (edge k is id 2k). The
        # Python graphs themselves are built only when a flow needs them (items too large for
        # the union, or a routing that is not forced): most rounds never do.
        self.supply = sum(grp.quantity for grp in self.groups)
        inf = (self.supply + 1) * (sum(cls.quantity for cls in self.classes) + 1)
        edges: list[tuple[int, int, int]] = [(_S, grp.node, 0) for grp in self.groups]
        self.source_edge = {grp.node: 2 * k for k, grp in enumerate(self.groups)}
        self.entry: list[tuple[_Group, int, int]] = []  # (group, chain node, edge)
        for grp in self.groups:
            for region in grp.regions:
                used = self.levels.get(region, [])
                # Enter at the lowest used rank that admits this price.
                j = bisect_left(used, bisect_left(prices[region], grp.price) + 1)
                if j < len(used):
                    node = self.chain[region, used[j]]
                    self.entry.append((grp, node, 2 * len(edges)))
                    edges.append((grp.node, node, inf))
        for region, ranks in self.levels.items():
            edges.extend(
                (self.chain[region, lo], self.chain[region, hi], inf) for lo, hi in pairwise(ranks)
            )
        for cls in self.classes:
            if cls.rank > 0:
                cls.at = self.chain[cls.region, cls.rank]
                cls.sink = 2 * len(edges)
                edges.append((cls.at, _T, 0))
        self.n_nodes = next_node
        self._edges = edges
        self._template: FlowGraph | None = None
        self._master: FlowGraph | None = None
        self.amount: dict[int, int] = {}  # sink edge of a served class -> whole units
        self.best = 0

    @property
    def template(self) -> FlowGraph:
        """The item's graph with zero source and sink capacities; flows run on copies."""
        if self._template is None:
            graph = FlowGraph(self.n_nodes)
            for u, v, cap in self._edges:
                graph.add_edge(u, v, cap)
            self._template = graph
        return self._template

    @property
    def master(self) -> FlowGraph:
        """The Python master flow of steps 2-3 (items outside the union): full supplies, and
        each served class's sink capacity raised tier by tier."""
        if self._master is None:
            self._master = self.template.copy()
            for grp in self.groups:
                self._master.set_capacity(self.source_edge[grp.node], grp.quantity)
        return self._master

    def net(self) -> ItemNet:
        """This item's network for :class:`UnionNetwork` (same node numbers as the graphs)."""
        internal = [(grp.node, node) for grp, node, _e in self.entry]
        for region, ranks in self.levels.items():
            internal.extend(
                (self.chain[region, lo], self.chain[region, hi]) for lo, hi in pairwise(ranks)
            )
        return ItemNet(
            self.n_nodes,
            [(grp.node, grp.quantity) for grp in self.groups],
            internal,
            list(self.chain.values()),
        )

    # -- step 2: fair shares ------------------------------------------------------------------

    def _subflow(
        self, groups: list[_Group], fixed: dict[int, int], open_caps: dict[int, int], scale: int
    ) -> FlowGraph:
        """Max flow on the sub-network of ``groups`` and the given classes (by sink edge).

        Sink capacities: ``fixed`` (sink edge -> amount, times ``scale``) are saturated first,
        then ``open_caps`` (sink edge -> capacity, already scaled) are added and augmented.
        Nodes outside the part keep zero source and sink capacity; a path that leaves a part
        never comes back to it (no edge enters a rich side; a poor side is never re-entered),
        so they are dead ends and the copy behaves as the induced sub-network. Returns the
        graph with its maximum flow.
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
        return graph

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
        stack: list[_Part] = [(self.groups, served, fixed, total, None)]
        while stack:
            groups, members, fixed_here, g, live = stack.pop()
            q = sum(cls.quantity for cls in members)
            if g in (0, q) or len(members) == 1:
                fills.update(dict.fromkeys([cls.id for cls in members], Fraction(g, q)))
                continue
            if live is None:
                scale = q
                caps = {cls.sink: g * cls.quantity for cls in members}
                graph = self._subflow(groups, fixed_here, caps, q)
            else:
                # A rich side goes on from its parent's flow: its classes only ever get more
                # (their fills are at least the parent's level), so raising their capacities
                # and augmenting is a maximum flow of the rich sub-network (no residual edge
                # leads from it to the poor side). Rescale so the new level is integral.
                graph, scale = live
                grow = q // math.gcd(q, scale)
                if grow > 1:
                    graph.cap[:] = [c * grow for c in graph.cap]
                    scale *= grow
                per = scale // q
                caps = {cls.sink: g * cls.quantity * per for cls in members}
                for e, x in caps.items():
                    graph.set_capacity(e, x)
                graph.max_flow(_S, _T)
            flows = {e: graph.flow(e) for e in caps}
            if flows == caps:
                fills.update(dict.fromkeys([cls.id for cls in members], Fraction(g, q)))
                continue
            reach = graph.reachable(_S)
            poor = [cls for cls in members if not reach[cls.at]]
            rich = [cls for cls in members if reach[cls.at]]
            assert poor and rich, "a level that is not tight must split"
            g_poor, rest = divmod(sum(flows[cls.sink] for cls in poor), scale)
            assert rest == 0, "the poor side's total is an integer rank"
            stack.append(
                (
                    [grp for grp in groups if not reach[grp.node]],
                    poor,
                    {e: a for e, a in fixed_here.items() if not reach[at_of[e]]},
                    g_poor,
                    None,
                )
            )
            stack.append(
                (
                    [grp for grp in groups if reach[grp.node]],
                    rich,
                    {e: a for e, a in fixed_here.items() if reach[at_of[e]]},
                    g - g_poor,
                    (graph, scale),
                )
            )
        return fills, total

    # -- the whole item, one tier at a time ---------------------------------------------------

    def fair(self, tier: int) -> list[tuple[_Class, Fraction]]:
        """The fill of the fair share of every class of ``tier`` (given the earlier tiers)."""
        tier_classes = self.by_tier.get(tier)
        if not tier_classes:
            return []
        fixed = {e: a for e, a in self.amount.items() if a > 0}
        fills, self.best = self._fair_fills(self.master, tier_classes, fixed)
        return [(cls, fills[cls.id]) for cls in tier_classes]

    def settle(self, tier: int, floors: list[int], ceilings: list[int]) -> list[tuple[_Class, int]]:
        """Whole units of every class of ``tier``, given the sums of its members' floors and
        ceilings (indexed by ``gid``); the master flow then delivers them."""
        tier_classes = [cls for cls in self.by_tier.get(tier, ()) if cls.rank > 0]
        if not tier_classes:
            return []
        master = self.master
        lo = {cls.sink: floors[cls.gid] for cls in tier_classes}
        hi = {cls.sink: ceilings[cls.gid] for cls in tier_classes}
        if any(lo.values()):
            for e, x in lo.items():
                master.set_capacity(e, x)
            master.max_flow(_S, _T)
            assert all(master.flow(e) == x for e, x in lo.items()), "floors must fit"
        if hi != lo:
            for e, x in hi.items():
                master.set_capacity(e, x)
            master.max_flow(_S, _T)
        out = []
        got = 0
        for cls in tier_classes:
            a = master.flow(cls.sink)
            self.amount[cls.sink] = a
            out.append((cls, a))
            got += a
        assert got == self.best, "a tier must receive its maximum total"
        return out

    # -- step 4: routing ----------------------------------------------------------------------

    def route(
        self, master_entry: list[int] | None
    ) -> list[tuple[_Class, list[tuple[_Group, int]]]]:
        """Route the fixed amounts at least cost; return, per class, the (group, units) it
        takes in hand-out order. ``master_entry``: the flows on ``self.entry`` of the union's
        master flow when the item is in the union (None: the item's Python master flow)."""
        amount = self.amount
        need = sum(amount.values())
        if need == self.supply:
            # A shortage round takes every unit on offer: each group's usage is forced and
            # every plan costs the same. The master flow delivers exactly the amounts, so it
            # is already a cheapest routing.
            if master_entry is not None:
                flows = master_entry
            else:
                flows = [self.master.flow(e) for _g, _n, e in self.entry]
        else:
            # Cheapest first: open the offer groups one price at a time and augment. Flow on
            # a source edge never decreases (an augmenting path never re-enters the source),
            # so at the end every price prefix supplies as much as any plan could, and
            # cost = p_max * total - sum_k (p_(k+1) - p_k) * used(prices <= p_k) is minimal.
            graph = self.template.copy()
            cap = graph.cap
            for e, a in amount.items():
                cap[e] = a
            by_price: dict[float, list[_Group]] = {}
            for grp in self.groups:
                by_price.setdefault(grp.price, []).append(grp)
            routed = 0
            for price in sorted(by_price):
                if routed == need:
                    break
                for grp in by_price[price]:
                    cap[self.source_edge[grp.node]] = grp.quantity
                routed += graph.max_flow(_S, _T)
            assert routed == need, "fixed amounts must be routable"
            flows = [graph.flow(e) for _g, _n, e in self.entry]

        # Unpack chain flows: units entering a region's chain at a level serve that level or
        # any above it, so walk each chain upwards with a pool of (group, units).
        entering: dict[int, list[tuple[_Group, int]]] = {}
        for (grp, node, _e), f in zip(self.entry, flows, strict=True):
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
                    left = amount[cls.sink]
                    got: list[tuple[_Group, int]] = []
                    while left > 0:
                        take = min(pool_units[head], left)
                        got.append((pool_group[head], take))
                        left -= take
                        pool_units[head] -= take
                        if pool_units[head] == 0:
                            head += 1
                    pieces[cls.id] = got
        return [(cls, pieces[cls.id]) for cls in self.classes if cls.id in pieces]


# An open part of a union decomposition: its item, that item's node offset in the union, the
# part's nodes (global), its classes of the tier, g(its classes) and Q(its classes).
_UPart = tuple["_ItemSolver", int, "NDArray[np.int64]", list[_Class], int, int]


def _fair_union(
    union: UnionNetwork, members: list[_ItemSolver], tier: int, master: UnionFlow
) -> list[tuple[_Class, Fraction]]:
    """Step 2 for every item of ``union`` at once (``members[i]`` is its item ``i``): the fill
    of the fair share of every class of ``tier``; sets each item's ``best``. ``master``: the
    union's master flow, holding the earlier tiers' amounts.

    The decomposition of :meth:`_ItemSolver._fair_fills`, with every part still open solved
    by one flow on the union per round. Each flow starts from zero with the earlier tiers'
    amounts as sink capacity of their chain nodes (scaled like the rest). That is enough:
    those amounts are feasible, so a flow delivering them augments to a maximum one, and a
    maximum flow's value is their total plus the most the open classes can get; the
    minimum cut smallest by inclusion is the same for every maximum flow; and a poor side's
    rank is its groups' supply minus its earlier amounts (its groups are cut from the source
    side and can only send to its own chain nodes).
    """
    import numpy as np

    n = union.n
    supply = union.supply
    # The earlier tiers' amounts per chain node: what the master flow delivers to the sink
    # there (it holds exactly the settled tiers).
    fixed = np.zeros(n, dtype=np.int64)
    sink_edges = np.flatnonzero(union.is_sink)
    fixed[union.tail[sink_edges]] = master.edge_flow(sink_edges)
    open_q = np.zeros(n, dtype=np.int64)
    out: list[tuple[_Class, Fraction]] = []
    starts: list[tuple[_ItemSolver, int, NDArray[np.int64], list[_Class]]] = []
    for i, solver in enumerate(members):
        off = union.offset[i]
        solver.best = 0
        tier_classes = solver.by_tier.get(tier, [])
        out.extend((cls, _ZERO) for cls in tier_classes if cls.rank == 0)
        served = [cls for cls in tier_classes if cls.rank > 0]
        if not served:
            continue
        if solver.supply == sum(solver.amount.values()):
            # The earlier tiers took every unit: nothing is left to share (g = 0).
            out.extend((cls, _ZERO) for cls in served)
            continue
        for cls in served:
            open_q[off + cls.at] = cls.quantity
        starts.append((solver, off, np.arange(off + 2, off + solver.n_nodes), served))
    if not starts:
        return out

    # g(all classes of the tier) for every item: capacities unscaled, demands in full.
    part = np.full(n, -1, dtype=np.int64)
    for j, (_s, _o, nodes, _c) in enumerate(starts):
        part[nodes] = j
    on = part >= 0
    into_sink, _reach = union.max_flow(
        np.where(on, supply, 0), np.where(on, fixed + open_q, 0), part
    )
    active: list[_UPart] = []

    def place(p: _UPart) -> None:
        # A part at one level becomes fills; any other waits for the next round.
        _solver, _off, _nodes, members_p, g, q = p
        if g in (0, q) or len(members_p) == 1:
            f = Fraction(g, q)
            out.extend((cls, f) for cls in members_p)
        else:
            active.append(p)

    for solver, off, nodes, served in starts:
        g = int(into_sink[nodes].sum()) - int(fixed[nodes].sum())
        solver.best = g
        place((solver, off, nodes, served, g, sum(cls.quantity for cls in served)))

    while active:
        parts, active = active, []
        part.fill(-1)
        scale = np.zeros(n, dtype=np.int64)
        level = np.zeros(n, dtype=np.int64)
        for j, (_s, _o, nodes, _m, g, q) in enumerate(parts):
            part[nodes] = j
            scale[nodes] = q
            level[nodes] = g
        # Level g / q, scaled by q: demands g * Q_c, supplies and earlier amounts times q.
        sink_cap = fixed * scale + level * open_q
        into_sink, reach = union.max_flow(supply * scale, sink_cap, part)
        for solver, off, nodes, members_p, g, q in parts:
            if int(into_sink[nodes].sum()) == int(sink_cap[nodes].sum()):
                f = Fraction(g, q)  # every class saturated: tight and uniform
                out.extend((cls, f) for cls in members_p)
                continue
            inside = reach[nodes]
            poor_nodes, rich_nodes = nodes[~inside], nodes[inside]
            poor = [cls for cls in members_p if not reach[off + cls.at]]
            rich = [cls for cls in members_p if reach[off + cls.at]]
            assert poor and rich, "a level that is not tight must split"
            g_poor = int(supply[poor_nodes].sum()) - int(fixed[poor_nodes].sum())
            assert 0 <= g_poor <= g, "the poor side's rank lies within the part's"
            place((solver, off, poor_nodes, poor, g_poor, sum(c.quantity for c in poor)))
            place((solver, off, rich_nodes, rich, g - g_poor, sum(c.quantity for c in rich)))
    return out


def _settle_union(
    flow: UnionFlow, members: list[_ItemSolver], tier: int, floors: list[int], ceilings: list[int]
) -> list[tuple[_Class, int]]:
    """Step 3 for every item of the union at once: the whole units of every class of
    ``tier`` given the sums of its members' floors and ceilings (indexed by ``gid``), found
    on the union's master ``flow`` as :meth:`_ItemSolver.settle` does on an item's own
    (raise the sink capacities to the floors and augment, then to the ceilings and augment).
    A tier has one class per chain node, so a chain node's extra flow is its class's amount.
    """
    import numpy as np

    union = flow.net
    served: list[tuple[_ItemSolver, _Class]] = []
    at: list[int] = []
    for i, solver in enumerate(members):
        off = union.offset[i]
        for cls in solver.by_tier.get(tier, ()):
            if cls.rank > 0:
                served.append((solver, cls))
                at.append(off + cls.at)
    if not served:
        return []
    nodes = np.asarray(at, dtype=np.int64)
    lo = np.asarray([floors[cls.gid] for _s, cls in served], dtype=np.int64)
    hi = np.asarray([ceilings[cls.gid] for _s, cls in served], dtype=np.int64)
    edges = union.sink_edge[nodes]
    before = flow.edge_flow(edges)
    if lo.any():
        flow.raise_sink(nodes, lo)
        flow.augment()
        assert (flow.edge_flow(edges) == before + lo).all(), "floors must fit"
    if (hi != lo).any():
        flow.raise_sink(nodes, hi - lo)
        flow.augment()
    got: dict[int, int] = {}
    out = []
    for (solver, cls), a in zip(served, (flow.edge_flow(edges) - before).tolist(), strict=True):
        solver.amount[cls.sink] = a
        out.append((cls, a))
        got[id(solver)] = got.get(id(solver), 0) + a
    assert all(got[id(s)] == s.best for s, _c in served), "a tier must receive its maximum total"
    return out


def _checked_quantities(
    ids: list[str], qty: list[int], keys: list[tuple[str, int, str, Any]]
) -> NDArray[np.int64] | None:
    """The request rules of ``validate_problem``, checked in bulk: quantities and ids per
    request, tiers and caps once per distinct (item, tier, region, cap) key. Returns the
    quantities as int64 when every rule holds; None means "not sure": the caller then runs
    ``validate_problem``, which raises only on a real fault and names the record."""
    import numpy as np

    try:
        q = np.asarray(qty, dtype=np.int64)
    except (OverflowError, TypeError, ValueError):  # e.g. an integer beyond 64 bits
        return None
    if not ids:
        return q
    top = int(q.max())
    if int(q.min()) <= 0 or top > MAX_UNITS:
        return None
    # The int64 sum is exact while it cannot wrap; beyond that Python's integers decide.
    total = int(q.sum()) if top < (1 << 62) // len(qty) else sum(qty)
    if total > MAX_UNITS:
        return None
    if not all(ids) or len(set(ids)) != len(ids):
        return None
    try:
        ok = all(tier >= 1 and (cap is None or 0 <= cap < math.inf) for _i, tier, _r, cap in keys)
    except TypeError:
        ok = False
    return q if ok else None


def _floors(
    fill: list[Fraction], cls: NDArray[np.intp], q: NDArray[np.int64]
) -> tuple[NDArray[Any], NDArray[Any]]:
    """``floor(fill_c * q)`` and the remainder ``fill_c.num * q mod fill_c.den`` per request."""
    import numpy as np

    # Only the classes present (one tier's): fills are g / Q with g <= Q <= MAX_UNITS, so
    # numerators and denominators fit 64 bits; only their products with quantities may not.
    present = np.flatnonzero(np.bincount(cls, minlength=len(fill)))
    num = np.zeros(len(fill), dtype=np.int64)
    den = np.ones(len(fill), dtype=np.int64)
    num[present] = [fill[c].numerator for c in present.tolist()]
    den[present] = [fill[c].denominator for c in present.tolist()]
    if int(num.max(initial=0)) * int(q.max(initial=0)) < _I64_SAFE:
        prod = num[cls] * q
        d64 = den[cls]
        whole = prod // d64
        return whole, prod - whole * d64
    # Exact Python integers for the rare fill whose numerator times a quantity overflows.
    prod_o = num.astype(object)[cls] * q.astype(object)
    den_o = den.astype(object)[cls]
    whole_o = prod_o // den_o
    return whole_o.astype(np.int64), prod_o - whole_o * den_o


def allocate(problem: Problem) -> Plan:
    """Compute the round's plan (see the module docstring for the semantics and the method)."""
    # The cyclic garbage collector is paused while the plan is built: a round allocates
    # lists as long as the requests, and every young-generation collection walks them again
    # (a quarter of the time of a 20,000-request round). The engine makes next to no cyclic
    # garbage (one closure per flow phase), which the first collection after it frees.
    # A collector someone else turned off stays off.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _allocate(problem)
    finally:
        if enabled:
            gc.enable()


def _allocate(problem: Problem) -> Plan:
    import numpy as np

    offers, requests = problem.offers, problem.requests
    validate_offers(offers)
    # attrgetter and map keep the per-request loops in C: at 20,000 requests the Python
    # comprehensions they replace cost as much as all the flows together.
    ids = list(map(attrgetter("id"), requests))
    qty = list(map(attrgetter("quantity"), requests))
    n = len(requests)
    # Requests with the same (item, tier, region, cap) are one key; keys keep the order of
    # their first request (dicts keep insertion order). A key's number is drawn from a counter
    # the first time it is looked up: one hash per request, all in C. Tiers and caps are
    # then checked once per key, not once per request.
    index: defaultdict[tuple[str, int, str, Any], int] = defaultdict(count().__next__)
    keyed = map(attrgetter("item", "tier", "region", "max_unit_price"), requests)
    codes = list(map(index.__getitem__, keyed))
    checked = _checked_quantities(ids, qty, list(index))
    if checked is None:
        validate_problem(problem)  # raises, naming the record and the field
        checked = np.asarray(qty, dtype=np.int64)
    q = checked.reshape(n)
    # (np.fromiter over a map is twice as slow as building the list first.)
    code = np.asarray(codes, dtype=np.intp).reshape(n)
    # Doubles hold every partial sum exactly: totals are at most MAX_UNITS.
    key_qty = np.bincount(code, weights=q, minlength=len(index)).astype(np.int64).tolist()

    offers_by_item: dict[str, list[int]] = {}
    for oi, o in enumerate(offers):
        offers_by_item.setdefault(o.item, []).append(oi)
    keys_by_item: dict[str, list[_Key]] = {}
    for kid, (item, tier, region, cap) in enumerate(index):
        keys_by_item.setdefault(item, []).append((kid, tier, region, cap, key_qty[kid]))

    solvers: list[_ItemSolver] = []
    key_class = np.zeros(len(index), dtype=np.intp)
    n_classes = 0
    for item, keys in keys_by_item.items():
        solver = _ItemSolver(offers, offers_by_item.get(item, []), keys)
        for cls in solver.classes:
            cls.gid = n_classes
            n_classes += 1
        for kid, cls in solver.key_class:
            key_class[kid] = cls.gid
        solvers.append(solver)
    req_cls = key_class[code]

    # Items whose scaled flows stay below LIMIT share one compiled union network for step 2;
    # the rest (totals near MAX_UNITS) keep the exact Python-integer flows.
    members: list[_ItemSolver] = []
    budget = 0
    for solver in solvers:
        bound = 2 * (solver.supply + 1) * (sum(cls.quantity for cls in solver.classes) + 1)
        if solver.groups and budget + bound < LIMIT:
            members.append(solver)
            budget += bound
    union = UnionNetwork([s.net() for s in members]) if members else None
    master = UnionFlow(union) if union is not None else None
    in_union = {id(s) for s in members}
    by_python = [s for s in solvers if id(s) not in in_union]

    key_tier = [key[1] for key in index]
    tier_values = sorted(set(key_tier))
    tier_pos = {t: i for i, t in enumerate(tier_values)}
    req_tier = np.asarray(list(map(tier_pos.__getitem__, key_tier)), dtype=np.intp)[code]

    fill: list[Fraction] = [_ZERO] * n_classes
    allocated = np.zeros(n, dtype=np.int64)
    remainder: NDArray[Any] = np.zeros(n, dtype=np.int64)
    floors = np.zeros(n_classes, dtype=np.int64)
    counts = np.zeros(n_classes, dtype=np.int64)  # members with a remainder, per class
    amount = np.zeros(n_classes, dtype=np.int64)
    for t_i, tier in enumerate(tier_values):
        for solver in by_python:
            for cls, f in solver.fair(tier):
                fill[cls.gid] = f
        if union is not None:
            assert master is not None
            for cls, f in _fair_union(union, members, tier, master):
                fill[cls.gid] = f
        rows = np.flatnonzero(req_tier == t_i)
        rows_cls = req_cls[rows]
        whole, rest = _floors(fill, rows_cls, q[rows])
        if rest.dtype == object and remainder.dtype != object:
            remainder = remainder.astype(object)
        allocated[rows] = whole
        remainder[rows] = rest
        floors += np.bincount(rows_cls, weights=whole, minlength=n_classes).astype(np.int64)
        counts += np.bincount(
            rows_cls, weights=(rest > 0).astype(np.float64), minlength=n_classes
        ).astype(np.int64)
        low, high = floors.tolist(), (floors + counts).tolist()
        for solver in by_python:
            for cls, a in solver.settle(tier, low, high):
                amount[cls.gid] = a
        if master is not None:
            for cls, a in _settle_union(master, members, tier, low, high):
                amount[cls.gid] = a

    # Step 3, inside classes: the a_c - L_c extra units go to the largest remainders (ties:
    # input order); a class whose extra units equal its members with a remainder gives each
    # of them one.
    extra = amount - floors
    has_rem = remainder > 0
    every = (extra > 0) & (extra == counts)
    allocated += (has_rem & every[req_cls]).astype(np.int64)
    some = (extra > 0) & (extra < counts)
    pick = np.flatnonzero(has_rem & some[req_cls])
    if pick.size:
        pick_cls = req_cls[pick]
        if remainder.dtype == object:
            order = np.asarray(
                sorted(range(pick.size), key=lambda i: (pick_cls[i], -remainder[pick[i]], i)),
                dtype=np.intp,
            )
        else:
            order = np.lexsort((pick, -remainder[pick], pick_cls))
        ranked = pick[order]
        ranked_cls = pick_cls[order]
        starts = np.flatnonzero(np.r_[True, ranked_cls[1:] != ranked_cls[:-1]])
        run = np.diff(np.r_[starts, ranked.size])
        rank = np.arange(ranked.size) - np.repeat(starts, run)
        allocated[ranked[rank < extra[ranked_cls]]] += 1

    # The union's master flow on each member's entry edges (its edges in ``entry`` order).
    master_entry: dict[int, list[int]] = {}
    if master is not None:
        for i, solver in enumerate(members):
            start = master.net.internal_start[i]
            span = np.arange(start, start + len(solver.entry), dtype=np.int64)
            master_entry[id(solver)] = master.edge_flow(span).tolist()
    line_r, line_o, line_q, cost = _hand_out(solvers, offers, req_cls, allocated, master_entry)

    requested_by_tier = np.bincount(req_tier, weights=q, minlength=len(tier_values))
    allocated_by_tier = np.bincount(req_tier, weights=allocated, minlength=len(tier_values))
    tier_results = tuple(
        TierResult(t, int(r), int(a))
        for t, r, a in zip(tier_values, requested_by_tier, allocated_by_tier, strict=True)
    )
    columns = PlanColumns(
        ids=ids,
        requested=qty,
        allocated=allocated.tolist(),
        fill=(allocated / q).tolist() if n else [],
        fair_fill=np.asarray(fill, dtype=object)[req_cls].tolist() if n else [],
        offer_ids=[o.id for o in offers],
        line_request=line_r,
        line_offer=line_o,
        line_quantity=line_q,
    )
    return Plan.from_columns(columns, tier_results, cost)


def _hand_out(
    solvers: list[_ItemSolver],
    offers: tuple[Offer, ...],
    req_cls: NDArray[np.intp],
    allocated: NDArray[np.int64],
    master_entry: dict[int, list[int]],
) -> tuple[list[int], list[int], list[int], float]:
    """Lines (request, offer, units), sorted, and their cost.

    Three streams of units are laid on one axis: requests (by class, then input order, each
    with its allocation), pieces (per class, the (group, units) the routing gave it, in
    order) and, inside each group, its offers in input order; a group's units are used in
    the order its pieces come. Cutting the axis at every boundary gives the lines: units
    inside a class go to its members in input order, units inside a group come from its
    offers in input order.
    """
    import numpy as np

    p_group: list[int] = []
    p_units: list[int] = []
    o_idx: list[int] = []
    o_qty: list[int] = []
    base: list[int] = []  # where each group starts on the offer axis
    at = 0
    for solver in solvers:
        for grp in solver.groups:
            grp.gid = len(base)
            base.append(at)
            assert grp.members is not None
            for oi in grp.members:
                o_idx.append(oi)
                o_qty.append(offers[oi].quantity)
            at += grp.quantity
        for _cls, got in solver.route(master_entry.get(id(solver))):
            for grp, units in got:
                p_group.append(grp.gid)
                p_units.append(units)
    if not p_units:
        return [], [], [], 0.0
    # Each piece starts where its group's earlier pieces stopped.
    p_supply = []
    cursor = base[:]
    for g, units in zip(p_group, p_units, strict=True):
        p_supply.append(cursor[g])
        cursor[g] += units

    # A stable sort of 16-bit keys is a radix sort: several times faster than on intp.
    narrow = req_cls.astype(np.int16) if int(req_cls.max(initial=0)) < 2**15 else req_cls
    order = np.argsort(narrow, kind="stable")
    demand: NDArray[np.intp] = order[allocated[order] > 0]
    d_end = np.cumsum(allocated[demand])
    p_len = np.asarray(p_units, dtype=np.int64)
    p_end = np.cumsum(p_len)
    assert d_end[-1] == p_end[-1], "pieces must cover the allocations"
    # Both ends are sorted: a stable sort of their concatenation is a linear merge (timsort
    # finds the two runs), cheaper than union1d's full sort.
    both = np.concatenate((d_end, p_end))
    both.sort(kind="stable")
    cut = both[np.r_[True, both[1:] != both[:-1]]]
    seg_start: NDArray[np.int64] = np.concatenate((np.zeros(1, dtype=np.int64), cut[:-1]))
    seg_len = cut - seg_start
    member: NDArray[np.intp] = np.searchsorted(d_end, seg_start, side="right")
    piece: NDArray[np.intp] = np.searchsorted(p_end, seg_start, side="right")
    sup_start = np.asarray(p_supply, dtype=np.int64)[piece] + (seg_start - (p_end - p_len)[piece])
    sup_end = sup_start + seg_len

    o_end = np.cumsum(np.asarray(o_qty, dtype=np.int64))
    first = np.searchsorted(o_end, sup_start, side="right")
    last = np.searchsorted(o_end, sup_end - 1, side="right")
    n_sub = last - first + 1
    seg = np.repeat(np.arange(cut.size), n_sub)
    opos = first[seg] + (np.arange(int(n_sub.sum())) - np.repeat(np.cumsum(n_sub) - n_sub, n_sub))
    take = np.minimum(sup_end[seg], o_end[opos]) - np.maximum(
        sup_start[seg], (o_end - np.asarray(o_qty, dtype=np.int64))[opos]
    )
    ri = demand[member[seg]]
    oi = np.asarray(o_idx, dtype=np.intp)[opos]
    srt = np.lexsort((oi, ri))
    ri, oi, take = ri[srt], oi[srt], take[srt]  # by request, then offer
    price = np.asarray([o.unit_price for o in offers], dtype=np.float64)
    cost = math.fsum((take * price[oi]).tolist())
    return ri.tolist(), oi.tolist(), take.tolist(), cost
