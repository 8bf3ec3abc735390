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
   with ``A`` the fixed total, maximising every prefix at once minimises the cost. The same
   argument with price *ranks* for prices shows that a min-cost flow on the ranks (small exact
   integers: no floating-point prices in the solver) maximises every prefix too, so it is a
   cheapest routing; that is how the engine routes (step 4 below), with the cheapest-first
   augmentations as the fallback. When the amounts take every unit on offer
   (a shortage round) the usage is forced, every plan costs the same, and the master flow of
   step 3, which delivers exactly the amounts, is the routing. The flow is then
   unpacked from the flows on the *entries* (group -> chain node) alone: along a region chain,
   units entering at a node may serve any class at that node or above, and a flow delivers
   up to every node no more than entered up to it, so laying the chain's entering units (by
   node) beside its classes' units (by node) on one axis matches every unit with a class
   it may serve; inside a class and inside an offer group units are handed out in input
   order. Earlier tiers' routes may change here: the tiers constrain amounts, not routes.

Everything above runs on the compressed networks, whose size does not grow with the number of
requests. They are built for all items at once, as numpy arrays in one node numbering
(:mod:`._network`): only the offers and the distinct request keys are looped over in Python.
The networks of all items are disjoint, so each flow is *one* flow on their union, run by
OR-Tools' compiled push-relabel on exact 64-bit capacities (:mod:`._union`), and the
bookkeeping of every step is a few numpy calls over nodes and classes, whatever the number of
items:

* step 2's results are unique, so it may use any exact maximum flow: each round of the
  decomposition (all open parts of all items) is one flow from zero, with the earlier tiers'
  amounts as capacities; a node carries the label of its part, a class its part through its
  chain node, and a round splits every open part by the flow's minimum cut at once (see
  :func:`_fair_union`);
* step 3 keeps one *master* flow on the union (:class:`~._union.UnionFlow`) and raises its
  sink capacities to the floors, then the ceilings, of all items' classes of the tier at once
  (:func:`_settle_union`), two augmentations per tier over the items that get more;
* step 4: in a shortage item (the amounts take every unit on offer) the master flow is the
  routing; all other items are routed by one compiled min-cost flow whose costs are the
  price *ranks* (:func:`_route_cheapest` shows why that is the cheapest-first routing), and
  only if the solver refuses by the cheapest-first augmentations on each item's own
  Python-integer :class:`~._flow.FlowGraph` (:class:`_ItemSolver`), built only then.

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
(requests by chain node and class, entry flows by chain node, offers within groups) with
``searchsorted``; the plan keeps its numeric columns as numpy arrays until a caller reads them.
Totals are bounded by ``MAX_UNITS`` (2^53 - 1), so sums in doubles and positions in 64-bit
integers are exact.
"""

from __future__ import annotations

import gc
import math
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from itertools import count
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any

from fugong.supplies.allocation._flow import FlowGraph
from fugong.supplies.allocation._network import Network, compress
from fugong.supplies.allocation._union import LIMIT, UnionFlow, UnionNetwork, cheapest_flow
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
    """A class of one item in an :class:`_ItemSolver` (local nodes and edges).

    A class has no node of its own: it is an edge from its chain node to the sink (a node
    would only repeat its chain node's reachability). Classes of rank 0 reach no offer.
    ``gid`` is its number in the round's :class:`~._network.Network`.
    """

    id: int
    tier: int
    rank: int
    quantity: int
    gid: int
    at: int = -1  # chain node; -1 for rank 0
    sink: int = -1  # edge at -> sink in the item's graphs; -1 for rank 0


@dataclass(slots=True)
class _Group:
    """An offer group of one item in an :class:`_ItemSolver`."""

    price: float
    node: int
    quantity: int


# A sub-problem of the decomposition: its offer groups, its classes of the current tier, the
# earlier tiers' classes in it with their fixed amounts, g(its classes), and for a rich side
# its parent's graph with the flow's scale (a poor side starts afresh).
_Part = tuple[list[_Group], list[_Class], dict[int, int], int, tuple[FlowGraph, int] | None]


class _ItemSolver:
    """One item's network on exact Python-integer flows: steps 2-4 for an item too large for
    the union's 64-bit capacities, and step 4 for a union item whose routing is not forced
    when the compiled min-cost flow refuses it."""

    def __init__(self, net: Network, item: int) -> None:
        import numpy as np

        local: dict[int, int] = {}  # round node -> this item's node
        self.groups: list[_Group] = []
        for g in np.flatnonzero(net.g_item == item).tolist():
            local[2 + g] = node = 2 + len(self.groups)
            self.groups.append(_Group(net.g_price[g], node, int(net.g_qty[g])))
        first_chain = 2 + net.g_item.size
        for h in np.flatnonzero(net.h_item == item).tolist():
            local[first_chain + h] = len(local) + 2
        self.n_nodes = len(local) + 2
        self.supply = sum(grp.quantity for grp in self.groups)
        cs = np.flatnonzero(net.c_item == item).tolist()
        self.classes = [
            _Class(i, int(net.c_tier[c]), int(net.c_rank[c]), int(net.c_q[c]), c)
            for i, c in enumerate(cs)
        ]
        self.by_tier: dict[int, list[_Class]] = {}
        for cls in self.classes:
            self.by_tier.setdefault(cls.tier, []).append(cls)

        # The edge list in FlowGraph numbering (edge k is id 2k); graphs are built only when a
        # flow needs them.
        inf = (self.supply + 1) * (sum(cls.quantity for cls in self.classes) + 1)
        edges: list[tuple[int, int, int]] = [(_S, grp.node, 0) for grp in self.groups]
        self.source_edge = {grp.node: 2 * k for k, grp in enumerate(self.groups)}
        # This item's entries of the round, and their edges here (same order).
        self.entry_ids = np.flatnonzero(net.node_item[net.e_node] == item)
        self.entry_edges: list[int] = []
        for g, h in zip(
            net.e_group[self.entry_ids].tolist(), net.e_node[self.entry_ids].tolist(), strict=True
        ):
            self.entry_edges.append(2 * len(edges))
            edges.append((local[2 + g], local[h], inf))
        ks = np.flatnonzero(net.node_item[net.k_tail] == item)
        for u, v in zip(net.k_tail[ks].tolist(), net.k_head[ks].tolist(), strict=True):
            edges.append((local[u], local[v], inf))
        for cls, c in zip(self.classes, cs, strict=True):
            if cls.rank > 0:
                cls.at = local[int(net.c_node[c])]
                cls.sink = 2 * len(edges)
                edges.append((cls.at, _T, 0))
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
        """The master flow of steps 2-3: full supplies, and each served class's sink
        capacity raised tier by tier."""
        if self._master is None:
            self._master = self.template.copy()
            for grp in self.groups:
                self._master.set_capacity(self.source_edge[grp.node], grp.quantity)
        return self._master

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

    def route(self) -> list[int]:
        """Route the fixed amounts (``amount``) at least cost; return the flow on each of the
        item's entries (``entry_ids`` order)."""
        amount = self.amount
        need = sum(amount.values())
        if need == self.supply and self._master is not None:
            # A shortage round takes every unit on offer: each group's usage is forced and
            # every plan costs the same. The master flow delivers exactly the amounts, so it
            # is already a cheapest routing.
            return [self._master.flow(e) for e in self.entry_edges]
        # Cheapest first: open the offer groups one price at a time and augment. Flow on a
        # source edge never decreases (an augmenting path never re-enters the source), so at
        # the end every price prefix supplies as much as any plan could, and
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
        return [graph.flow(e) for e in self.entry_edges]


class _Union:
    """The items of the round that share one compiled network (their scaled flows stay below
    ``LIMIT``): the network, its master flow, and what the tiers need of them.

    Edges, in this order: one from the source to every group, the entries (``net.e_*``
    order), the chain edges, one from every chain node to the sink. Groups of other items
    get no supply, so no flow ever enters their part of the network.
    """

    def __init__(self, net: Network, member: NDArray[np.bool_]) -> None:
        import numpy as np

        n_groups = net.g_item.size
        chain_nodes = np.arange(2 + n_groups, net.n_nodes, dtype=np.int64)
        tail = np.concatenate(
            (np.zeros(n_groups, dtype=np.int64), net.e_group + 2, net.k_tail, chain_nodes)
        )
        head = np.concatenate(
            (net.g_node, net.e_node, net.k_head, np.ones(chain_nodes.size, dtype=np.int64))
        )
        self.net = net
        supply = np.where(net.nodes_of(member), net.supply, 0)
        self.network = UnionNetwork(net.n_nodes, tail, head, supply)
        self.master = UnionFlow(self.network)
        self.entry_edges = n_groups + np.arange(net.e_group.size, dtype=np.int64)
        self.sink_edges = np.flatnonzero(self.network.is_sink)
        self.chain_nodes = chain_nodes
        self.item_supply = np.where(member, np.asarray(net.item_supply, dtype=np.int64), 0)
        self.best = np.zeros(net.n_items, dtype=np.int64)

    def delivered(self) -> NDArray[np.int64]:
        """What the master flow delivers to the sink at each node (the settled tiers)."""
        import numpy as np

        fixed = np.zeros(self.network.n, dtype=np.int64)
        fixed[self.chain_nodes] = self.master.edge_flow(self.sink_edges)
        return fixed


def _route_cheapest(
    u: _Union, items: NDArray[np.bool_], amount: NDArray[np.int64], e_flow: NDArray[np.int64]
) -> bool:
    """Step 4 for the union's ``items`` at once: the entry flows (into ``e_flow``) of a
    routing of the amounts at least cost. False if the solver refused (nothing written).

    A min-cost flow whose unit cost on a group's source edge is the *rank* of its price
    among all prices. The cheapest-first augmentation (:meth:`_ItemSolver.route`) shows that
    one routing maximises the units taken from every price prefix at once; a rank cost is
    ``r_max * A - sum_k (r_(k+1) - r_k) * u(P_k)`` with every step positive, so a routing
    is rank-cheapest exactly when it maximises every prefix, and then its price cost, the
    same sum with price steps, is least too. Ranks are small exact integers, prices need not
    be; items do not interact, so one flow serves all of them.
    """
    import numpy as np

    net, union = u.net, u.network
    served = np.flatnonzero(items[net.c_item] & (net.c_rank > 0))
    delivered = np.zeros(union.n, dtype=np.int64)
    np.add.at(delivered, net.c_node[served], amount[served])
    total = int(delivered.sum())
    cost = np.zeros(union.tail.size, dtype=np.int64)
    cost[union.src_edges] = net.g_rank[union.src_head - 2]
    caps = np.zeros(union.tail.size, dtype=np.int64)
    on = net.nodes_of(items)
    src = union.src_edges[on[union.src_head]]
    caps[src] = union.supply[union.head[src]]
    mid = union.mid_edges[on[union.mid_tail]]
    caps[mid] = total + 1  # uncapacitated: nothing larger can flow
    caps[union.snk_edges] = delivered[union.snk_tail]
    flow = cheapest_flow(union.tail32, union.head32, caps, cost, total)
    if flow is None:
        return False
    mine = items[net.node_item[net.e_node]]
    e_flow[mine] = flow[u.entry_edges[mine]]
    return True


def _sums(labels: NDArray[np.int64], values: NDArray[np.int64], size: int) -> NDArray[np.int64]:
    """Exact 64-bit sums of ``values`` per label (``bincount`` would sum in doubles)."""
    import numpy as np

    out = np.zeros(size, dtype=np.int64)
    np.add.at(out, labels, values)
    return out


def _fair_union(
    u: _Union, classes: NDArray[np.int64], num: NDArray[np.int64], den: NDArray[np.int64]
) -> None:
    """Step 2 for every union item at once: the fill ``num / den`` of the fair share of each of
    ``classes`` (one tier's classes of the union's items); sets ``u.best`` per item.

    Fujishige's decomposition, as in :meth:`_ItemSolver._fair_fills`, with every part of
    every item solved by one flow on the union per round and all bookkeeping on arrays: a
    node carries the label of its part (-1: none), a class its part through its chain node.
    Each flow starts from zero with the earlier tiers' amounts as sink capacity of their
    chain nodes (scaled like the rest). That is enough: those amounts are feasible, so a flow
    delivering them augments to a maximum one, and a maximum flow's value is their total plus
    the most the open classes can get; the minimum cut smallest by inclusion is the same for
    every maximum flow; and a poor side's rank is its groups' supply minus its earlier
    amounts (its groups are cut from the source side and can only send to its own chain
    nodes).
    """
    import numpy as np

    net, union = u.net, u.network
    num[classes] = 0
    den[classes] = 1
    u.best[:] = 0
    fixed = u.delivered()
    # Items whose earlier tiers took every unit have nothing left to share (g = 0).
    used = _sums(net.node_item[u.chain_nodes], fixed[u.chain_nodes], net.n_items)
    served = classes[net.c_rank[classes] > 0]
    served = served[(u.item_supply > used)[net.c_item[served]]]
    if not served.size:
        return
    node_item, supply = net.node_item, union.supply
    c_node, c_q = net.c_node[served], net.c_q[served]
    open_q = np.zeros(union.n, dtype=np.int64)
    open_q[c_node] = c_q
    active = np.zeros(net.n_items, dtype=np.bool_)
    active[net.c_item[served]] = True
    on = net.nodes_of(active)
    part = np.where(on, node_item, -1)

    # g(all classes of the tier) for every item: capacities unscaled, demands in full.
    into_sink, _reach = union.max_flow(
        np.where(on, supply, 0), np.where(on, fixed + open_q, 0), part, cut=False
    )
    at = np.flatnonzero(on)
    p_g = _sums(part[at], into_sink[at] - fixed[at], net.n_items)
    u.best[:] = p_g
    c_part = net.c_item[served]
    p_q = _sums(c_part, c_q, net.n_items)
    p_n = np.bincount(c_part, minlength=net.n_items)
    while True:
        # A part at one level (nothing, everything, or a single class) becomes fills.
        done = ((p_g == 0) | (p_g == p_q) | (p_n == 1))[c_part]
        num[served[done]] = p_g[c_part[done]]
        den[served[done]] = p_q[c_part[done]]
        if done.all():
            return
        keep = ~done
        served, c_part, c_node, c_q = served[keep], c_part[keep], c_node[keep], c_q[keep]
        # Number the parts still open 0 .. k-1; nodes of finished parts leave the network.
        alive = np.zeros(p_g.size, dtype=np.bool_)
        alive[c_part] = True
        label = np.cumsum(alive) - 1
        at = np.flatnonzero(part >= 0)
        part[at] = np.where(alive[part[at]], label[part[at]], -1)
        at = at[part[at] >= 0]
        c_part = label[c_part]
        p_g, p_q = p_g[alive], p_q[alive]
        k = p_g.size

        # Level g / q, scaled by q: demands g * Q_c, supplies and earlier amounts times q.
        scale = np.zeros(union.n, dtype=np.int64)
        level = np.zeros(union.n, dtype=np.int64)
        scale[at] = p_q[part[at]]
        level[at] = p_g[part[at]]
        sink_cap = fixed * scale + level * open_q
        into_sink, reach = union.max_flow(supply * scale, sink_cap, part)
        lab = part[at]
        tight = _sums(lab, into_sink[at], k) == _sums(lab, sink_cap[at], k)
        # Every class of a tight part is saturated: the part is uniform at its level.
        fin = tight[c_part]
        num[served[fin]] = p_g[c_part[fin]]
        den[served[fin]] = p_q[c_part[fin]]
        # The others split by the cut: the poor side (not reached) below the level, the rich
        # side above; part j becomes 2j (poor) and 2j + 1 (rich).
        keep = ~fin
        served, c_part, c_node, c_q = served[keep], c_part[keep], c_node[keep], c_q[keep]
        side = reach[c_node].astype(np.int64)
        rich = np.bincount(c_part, weights=side, minlength=k)
        count_p = np.bincount(c_part, minlength=k)
        assert ((rich > 0) & (rich < count_p))[~tight].all(), "a level that is not tight must split"
        poor_at = at[~reach[at]]
        g_poor = _sums(part[poor_at], supply[poor_at] - fixed[poor_at], k)
        assert ((g_poor >= 0) & (g_poor <= p_g))[~tight].all(), "the poor side's rank lies within"
        part[at] = 2 * lab + reach[at]
        c_part = 2 * c_part + side
        p_g = np.column_stack((g_poor, p_g - g_poor)).reshape(-1)
        p_q = _sums(c_part, c_q, 2 * k)
        p_n = np.bincount(c_part, minlength=2 * k)


def _settle_union(
    u: _Union,
    classes: NDArray[np.int64],
    floors: NDArray[np.int64],
    ceilings: NDArray[np.int64],
    amount: NDArray[np.int64],
) -> None:
    """Step 3 for every union item at once: the whole units (``amount``) of ``classes`` (one
    tier's classes of the union's items) given the sums of their members' floors and
    ceilings, found on the union's master flow as :meth:`_ItemSolver.settle` does on an
    item's own (raise the sink capacities to the floors and augment, then to the ceilings
    and augment). A tier has one class per chain node, so a chain node's extra flow is its
    class's amount.
    """
    import numpy as np

    net, flow = u.net, u.master
    served = classes[net.c_rank[classes] > 0]
    if not served.size:
        return
    nodes = net.c_node[served]
    lo, hi = floors[served], ceilings[served]
    edges = u.network.sink_edge[nodes]
    before = flow.edge_flow(edges)
    # Items are separate components of the union and the flow is maximum in each, so only
    # the items whose classes get more can hold an augmenting path.
    raised = np.zeros(net.n_items, dtype=np.bool_)
    raised[net.c_item[served[hi > 0]]] = True
    at = net.nodes_of(raised)
    if lo.any():
        flow.raise_sink(nodes, lo)
        flow.augment(at)
        assert (flow.edge_flow(edges) == before + lo).all(), "floors must fit"
    if (hi != lo).any():
        flow.raise_sink(nodes, hi - lo)
        flow.augment(at)
    got = flow.edge_flow(edges) - before
    amount[served] = got
    by_item = _sums(net.c_item[served], got, net.n_items)
    assert (by_item == u.best).all(), "a tier must receive its maximum total"


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
        ok = min(map(itemgetter(1), keys)) >= 1 and all(
            cap is None or 0 <= cap < math.inf for cap in set(map(itemgetter(3), keys))
        )
    except TypeError:
        ok = False
    return q if ok else None


def _floors(
    num: NDArray[np.int64], den: NDArray[np.int64], cls: NDArray[np.intp], q: NDArray[np.int64]
) -> tuple[NDArray[Any], NDArray[Any]]:
    """``floor(num_c * q / den_c)`` and the remainder ``num_c * q mod den_c`` per request."""
    import numpy as np

    # Fills are g / Q with g <= Q <= MAX_UNITS, so numerators and denominators fit 64 bits;
    # only their products with quantities may not.
    if int(num[cls].max(initial=0)) * int(q.max(initial=0)) < _I64_SAFE:
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
    # garbage, which the first collection after it frees. A collector someone else turned
    # off stays off.
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
    keys = list(index)
    checked = _checked_quantities(ids, qty, keys)
    if checked is None:
        validate_problem(problem)  # raises, naming the record and the field
        checked = np.asarray(qty, dtype=np.int64)
    q = checked.reshape(n)
    # (np.fromiter over a map is twice as slow as building the list first.)
    code = np.asarray(codes, dtype=np.intp).reshape(n)
    # Doubles hold every partial sum exactly: totals are at most MAX_UNITS.
    key_qty = np.bincount(code, weights=q, minlength=len(keys)).astype(np.int64)
    tier_values = sorted({key[1] for key in keys})
    tier_pos = {t: i for i, t in enumerate(tier_values)}
    key_tier = [tier_pos[key[1]] for key in keys]

    net = compress(offers, keys, key_tier, key_qty)
    req_cls = net.key_class[code]
    req_tier = np.asarray(key_tier, dtype=np.intp)[code]
    n_classes = net.c_q.size

    # Items whose scaled flows stay below LIMIT share one compiled network; the rest (totals
    # near MAX_UNITS) keep the exact Python-integer flows.
    member = np.zeros(net.n_items, dtype=np.bool_)
    budget = 0
    for it, (supply, demand) in enumerate(zip(net.item_supply, net.item_demand, strict=True)):
        bound = 2 * (supply + 1) * (demand + 1)
        if budget + bound < LIMIT:
            member[it] = True
            budget += bound
    union = _Union(net, member) if member.any() else None
    python = [_ItemSolver(net, it) for it in np.flatnonzero(~member).tolist()]
    in_union = member[net.c_item]
    by_tier = [np.flatnonzero(in_union & (net.c_tier == t)) for t in range(len(tier_values))]

    num = np.zeros(n_classes, dtype=np.int64)  # the fair fill of each class: num / den
    den = np.ones(n_classes, dtype=np.int64)
    allocated = np.zeros(n, dtype=np.int64)
    remainder: NDArray[Any] = np.zeros(n, dtype=np.int64)
    floors = np.zeros(n_classes, dtype=np.int64)
    counts = np.zeros(n_classes, dtype=np.int64)  # members with a remainder, per class
    amount = np.zeros(n_classes, dtype=np.int64)
    for t_i in range(len(tier_values)):
        for solver in python:
            for cls, f in solver.fair(t_i):
                num[cls.gid], den[cls.gid] = f.numerator, f.denominator
        if union is not None:
            _fair_union(union, by_tier[t_i], num, den)
        rows = np.flatnonzero(req_tier == t_i)
        rows_cls = req_cls[rows]
        whole, rest = _floors(num, den, rows_cls, q[rows])
        if rest.dtype == object and remainder.dtype != object:
            remainder = remainder.astype(object)
        allocated[rows] = whole
        remainder[rows] = rest
        floors += np.bincount(rows_cls, weights=whole, minlength=n_classes).astype(np.int64)
        counts += np.bincount(
            rows_cls, weights=(rest > 0).astype(np.float64), minlength=n_classes
        ).astype(np.int64)
        if python:
            low, high = floors.tolist(), (floors + counts).tolist()
            for solver in python:
                for cls, a in solver.settle(t_i, low, high):
                    amount[cls.gid] = a
        if union is not None:
            _settle_union(union, by_tier[t_i], floors, floors + counts, amount)

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

    # Step 4: the flow on every entry (group -> chain node) of the cheapest routing.
    e_flow = np.zeros(net.e_group.size, dtype=np.int64)
    routed = list(python)
    if union is not None:
        taken = np.bincount(net.c_item, weights=amount, minlength=net.n_items)
        forced = member & (taken == np.asarray(net.item_supply, dtype=np.float64))
        # A shortage item takes every unit on offer: its usage is forced and every plan
        # costs the same, so the master flow, which delivers exactly the amounts, is a
        # cheapest routing.
        on_forced = forced[net.node_item[net.e_node]]
        e_flow[on_forced] = union.master.edge_flow(union.entry_edges[on_forced])
        # Any other item: one compiled min-cost flow for all of them (the Python flows only
        # if the solver refuses).
        free = member & ~forced & (taken > 0)
        if free.any() and not _route_cheapest(union, free, amount, e_flow):
            for it in np.flatnonzero(free).tolist():
                solver = _ItemSolver(net, it)
                solver.amount = {c.sink: int(amount[c.gid]) for c in solver.classes if c.rank > 0}
                routed.append(solver)
    for solver in routed:
        e_flow[solver.entry_ids] = solver.route()
    line_r, line_o, line_q, cost = _hand_out(net, offers, req_cls, allocated, e_flow)

    requested_by_tier = np.bincount(req_tier, weights=q, minlength=len(tier_values))
    allocated_by_tier = np.bincount(req_tier, weights=allocated, minlength=len(tier_values))
    tier_results = tuple(
        TierResult(t, int(r), int(a))
        for t, r, a in zip(tier_values, requested_by_tier, allocated_by_tier, strict=True)
    )
    # The numeric columns stay numpy arrays: the plan turns them into lists when first read.
    columns = PlanColumns(
        ids=ids,
        requested=qty,
        allocated=allocated,
        fill=allocated / q if n else np.zeros(0),
        fair_fill=_fractions(num, den)[req_cls] if n else np.zeros(0, dtype=object),
        offer_ids=[o.id for o in offers],
        line_request=line_r,
        line_offer=line_o,
        line_quantity=line_q,
    )
    return Plan.from_columns(columns, tier_results, cost)


def _fractions(num: NDArray[np.int64], den: NDArray[np.int64]) -> NDArray[np.object_]:
    """``num / den`` as Fractions, one object per distinct value (shared by every class and
    request at it: a round has a few hundred fills, not 20,000)."""
    import numpy as np

    g = np.gcd(num, den)
    num, den = num // g, den // g
    order = np.lexsort((den, num))
    sn, sd = num[order], den[order]
    new = np.r_[True, (sn[1:] != sn[:-1]) | (sd[1:] != sd[:-1])]
    which = np.empty(num.size, dtype=np.intp)
    which[order] = np.cumsum(new) - 1
    made = np.empty(int(new.sum()), dtype=object)
    made[:] = [Fraction(a, b) for a, b in zip(sn[new].tolist(), sd[new].tolist(), strict=True)]
    return made[which]


def _hand_out(
    net: Network,
    offers: tuple[Offer, ...],
    req_cls: NDArray[np.intp],
    allocated: NDArray[np.int64],
    e_flow: NDArray[np.int64],
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.int64], float]:
    """Lines (request, offer, units), sorted, and their cost.

    Three streams of units are laid on one axis, chain by chain: requests (by chain node,
    then class, then input order, each with its allocation), entries (by chain node, then
    group, each with its flow) and, inside each group, its offers in input order; a group's
    units are used in the order its entries come. Cutting the axis at every boundary gives
    the lines. Along a chain, units entering at a node may serve that node or any above it,
    and a flow delivers, up to every node, no more than entered up to it; so the unit at
    each position of the request stream entered at or below its request's node, and every
    chain's two streams have the same length. Inside a class units go to its members in input
    order, inside a group they come from its offers in input order.
    """
    import numpy as np

    live = np.flatnonzero(e_flow > 0)
    if not live.size:
        none = np.zeros(0, dtype=np.intp)
        return none, none, none, 0.0
    p_group = net.e_group[live]
    p_len = e_flow[live]
    # Each entry starts, on its group's stretch of the offer axis, where the group's earlier
    # entries stopped.
    g_qty = net.g_qty
    base = np.cumsum(g_qty) - g_qty
    by_group = np.argsort(p_group, kind="stable")
    grp = p_group[by_group]
    before = np.cumsum(p_len[by_group]) - p_len[by_group]
    first = np.r_[True, grp[1:] != grp[:-1]]
    run_start = np.maximum.accumulate(np.where(first, before, 0))
    p_supply = np.empty_like(p_len)
    p_supply[by_group] = base[grp] + before - run_start

    # Requests by (chain node, class), then input order. A stable sort of 16-bit keys is a
    # radix sort: several times faster than on intp.
    n_classes = net.c_q.size
    place = np.empty(n_classes, dtype=np.intp)
    place[np.lexsort((np.arange(n_classes), net.c_node))] = np.arange(n_classes)
    key = place[req_cls]
    narrow = key.astype(np.int16) if n_classes < 2**15 else key
    order = np.argsort(narrow, kind="stable")
    demand: NDArray[np.intp] = order[allocated[order] > 0]
    d_end = np.cumsum(allocated[demand])
    p_end = np.cumsum(p_len)
    assert d_end[-1] == p_end[-1], "entries must cover the allocations"
    # Both ends are sorted: a stable sort of their concatenation is a linear merge (timsort
    # finds the two runs), cheaper than union1d's full sort.
    both = np.concatenate((d_end, p_end))
    both.sort(kind="stable")
    cut = both[np.r_[True, both[1:] != both[:-1]]]
    seg_start: NDArray[np.int64] = np.concatenate((np.zeros(1, dtype=np.int64), cut[:-1]))
    seg_len = cut - seg_start
    member: NDArray[np.intp] = np.searchsorted(d_end, seg_start, side="right")
    piece: NDArray[np.intp] = np.searchsorted(p_end, seg_start, side="right")
    sup_start = p_supply[piece] + (seg_start - (p_end - p_len)[piece])
    sup_end = sup_start + seg_len

    o_idx, o_qty = net.g_offers, net.g_offer_qty
    o_end = np.cumsum(o_qty)
    first_o = np.searchsorted(o_end, sup_start, side="right")
    last_o = np.searchsorted(o_end, sup_end - 1, side="right")
    n_sub = last_o - first_o + 1
    seg = np.repeat(np.arange(cut.size), n_sub)
    opos = first_o[seg] + (np.arange(int(n_sub.sum())) - np.repeat(np.cumsum(n_sub) - n_sub, n_sub))
    take = np.minimum(sup_end[seg], o_end[opos]) - np.maximum(sup_start[seg], (o_end - o_qty)[opos])
    ri = demand[member[seg]]
    oi = o_idx[opos]
    # A request takes at most one stretch of each offer, so (request, offer) is a unique key.
    srt = np.argsort(ri * len(offers) + oi)
    ri, oi, take = ri[srt], oi[srt], take[srt]  # by request, then offer
    # The cost group by group (a group's offers share its price): the units a group supplies
    # are its entries' flows, exact in doubles (at most MAX_UNITS).
    units = np.bincount(p_group, weights=p_len, minlength=len(net.g_price)).tolist()
    cost = math.fsum(u * p for u, p in zip(units, net.g_price, strict=True) if u)
    return ri, oi, take, cost
