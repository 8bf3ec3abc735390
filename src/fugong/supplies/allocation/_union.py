"""Exact maximum flows on the disjoint union of many small networks, with OR-Tools' compiled
push-relabel doing the work.

The fair-share step runs one max flow per sub-network and per decomposition step; the
sub-networks of all items (and, further down, all parts of a decomposition) are independent,
so one flow on their union settles every one of them at once: a handful of compiled calls per
tier instead of dozens of interpreted ones.

OR-Tools' ``SimpleMaxFlow`` takes 64-bit capacities, so the engine's scaled capacities (up to
2^62) go in as they are and one solve is exact (scipy's Dinic, used before, takes 32 bits and
needed two or three capacity-scaling phases, each paying its fixed cost). Every flow here is an
*augmentation*: the compiled solver runs on the residual network of the current flow (each edge
and its reverse are two arcs) and its result is added to that flow; a flow from zero runs on
the network itself. Only arcs with capacity are handed over. Residual capacities above what
can still flow are clipped to one more than that (a cut through such an arc is never smaller
than the flow itself, and its residual stays positive), which keeps every node's sums in 64
bits.

:func:`cheapest_flow` is the one flow that is not a maximum flow: OR-Tools' min-cost flow,
from zero, for the routing of rounds that leave supply over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["INF", "LIMIT", "UnionFlow", "UnionNetwork", "cheapest_flow"]

INF = 1 << 62  # capacity of an internal (uncapacitated) edge
LIMIT = 1 << 61  # the sum of all source capacities of one flow must stay below this


class UnionNetwork:
    """The disjoint union of item networks: nodes ``0 .. n - 1`` with one shared source (0)
    and sink (1), and the given edges (an edge from 0 feeds a group, an edge into 1 leaves a
    chain node, any other edge is internal and uncapacitated). ``supply`` holds each group
    node's supply (0 elsewhere). The engine numbers all items' nodes in one sequence, so the
    items are the connected pieces between the source and the sink.
    """

    def __init__(
        self, n: int, tail: NDArray[np.int64], head: NDArray[np.int64], supply: NDArray[np.int64]
    ) -> None:
        import numpy as np

        self.n = n
        self.tail, self.head = tail, head
        self.is_source = tail == 0
        self.is_sink = head == 1
        self.is_internal = ~(self.is_source | self.is_sink)
        self.supply = supply
        self.sink_edge = np.full(n, -1, dtype=np.int64)  # chain node -> its edge to the sink
        self.sink_edge[tail[self.is_sink]] = np.flatnonzero(self.is_sink)
        # The residual network: edge k is arc k and its reverse is arc m + k; ``fwd`` gives
        # each edge's forward arc, ``rev`` pairs every arc with its reverse.
        m = tail.size
        self.rows = np.concatenate((tail, head))
        self.indices = np.concatenate((head, tail))
        self.fwd = np.arange(m, dtype=np.int64)
        self.rev = np.concatenate((np.arange(m, 2 * m), np.arange(m))).astype(np.int64)
        self.nnz = 2 * m
        # Residual arcs into the source or out of the sink: no augmenting path uses one, so
        # they are handed over as zero (cuts, hence flow values, are unchanged) and no flow
        # on a source or sink edge is ever lowered, whatever the solver's push order.
        self.useless = (self.indices == 0) | (self.rows == 1)
        # What every flow reads, taken out once: the edges of each kind with their ends, and
        # the arcs' ends in the solver's 32-bit node numbers.
        self.src_edges = np.flatnonzero(self.is_source)
        self.src_head = head[self.src_edges]
        self.snk_edges = np.flatnonzero(self.is_sink)
        self.snk_tail = tail[self.snk_edges]
        self.mid_edges = np.flatnonzero(self.is_internal)
        self.mid_tail, self.mid_head = tail[self.mid_edges], head[self.mid_edges]
        self.tail32, self.head32 = tail.astype(np.int32), head.astype(np.int32)
        self.rows32, self.indices32 = self.rows.astype(np.int32), self.indices.astype(np.int32)

    def max_flow(
        self,
        source_cap: NDArray[np.int64],
        sink_cap: NDArray[np.int64],
        part: NDArray[np.int64],
        cut: bool = True,
    ) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """A maximum flow from source to sink, from zero.

        Per node: ``source_cap`` (group nodes), ``sink_cap`` (chain nodes), ``part`` (the
        sub-network a node belongs to, -1 for none); an internal edge is uncapacitated
        between nodes of one part and absent otherwise. Returns the flow into the sink per
        node and which nodes the residual graph reaches from the source (the source side of
        the minimum cut that is smallest by inclusion; with ``cut`` False, which is not
        asked of the solver, none).
        """
        import numpy as np

        cap = np.zeros(self.tail.size, dtype=np.int64)
        from_source = source_cap[self.src_head]
        cap[self.src_edges] = from_source
        cap[self.snk_edges] = sink_cap[self.snk_tail]
        pt = part[self.mid_tail]
        cap[self.mid_edges] = np.where((pt == part[self.mid_head]) & (pt >= 0), INF, 0)
        total = int(from_source.sum())
        assert total < LIMIT, "source capacities beyond the union's range"
        # From zero the residual network is the network itself: the edges go in as they are.
        flow, reached = _solve(self.tail32, self.head32, np.minimum(cap, total + 1), cut)
        reach = np.zeros(self.n, dtype=np.bool_)
        reach[reached] = True
        into_sink = np.zeros(self.n, dtype=np.int64)
        into_sink[self.snk_tail] = flow[self.snk_edges]
        return into_sink, reach

    def _augment(
        self, res: NDArray[np.int64], total: int, nodes: NDArray[np.bool_] | None = None
    ) -> None:
        """Augment the flow whose residual capacities (arc order) are ``res`` to a maximum
        one, in place; ``total`` bounds what can still flow. No flow on a source or sink edge
        is lowered (see ``useless``). ``nodes``: if given, only arcs at these nodes take part
        (the caller knows no augmenting path leads through the others)."""
        import numpy as np

        if not total:
            return
        cap = np.minimum(res, total + 1)
        cap[self.useless] = 0
        if nodes is not None:
            # Every arc touches a node other than the source and the sink (no edge joins
            # them directly); it takes part when that node does.
            cap[~nodes[np.where(self.rows >= 2, self.rows, self.indices)]] = 0
        sent, _reach = _solve(self.rows32, self.indices32, cap, cut=False)
        res -= sent - sent[self.rev]


def _solve(
    tails: NDArray[np.int32], heads: NDArray[np.int32], caps: NDArray[np.int64], cut: bool = True
) -> tuple[NDArray[np.int64], list[int]]:
    """One compiled maximum flow from node 0 to node 1 over the given arcs: the flow on each
    arc, and (if ``cut``) the nodes the final residual network reaches from node 0.

    Only arcs with capacity go to the solver (in the decomposition's later rounds most
    internal edges are cut off, and the solver's cost grows with its arcs); a zero arc from
    0 to 1 makes both nodes exist however few arcs are left.
    """
    import numpy as np
    from ortools.graph.python.max_flow import SimpleMaxFlow

    live = np.flatnonzero(caps > 0)
    solver = SimpleMaxFlow()
    solver.add_arcs_with_capacity(
        np.append(tails[live], np.int32(0)),
        np.append(heads[live], np.int32(1)),
        np.append(caps[live], 0),
    )
    status = solver.solve(0, 1)
    assert status == solver.OPTIMAL, f"max flow failed: {status}"
    sent = np.zeros(caps.size, dtype=np.int64)
    if solver.optimal_flow():
        sent[live] = solver.flows(np.arange(live.size, dtype=np.int32))
    return sent, solver.get_source_side_min_cut() if cut else []


class UnionFlow:
    """A flow on a :class:`UnionNetwork` kept across calls (the engine's master flow).

    Every group has its full supply and every internal edge is uncapacitated; sink
    capacities start at zero and only rise (:meth:`raise_sink`). :meth:`augment` makes the
    flow maximum again without lowering any flow into the sink, so amounts delivered once
    (lower bounds, earlier tiers) stay delivered.
    """

    def __init__(self, net: UnionNetwork) -> None:
        import numpy as np

        self.net = net
        cap = np.where(net.is_internal, INF, 0).astype(np.int64)
        cap[net.is_source] = net.supply[net.head[net.is_source]]
        assert int(cap[net.is_source].sum()) < LIMIT, "supplies beyond the union's range"
        self.cap = cap
        self.res = np.zeros(net.nnz, dtype=np.int64)
        self.res[net.fwd] = cap

    def raise_sink(self, nodes: NDArray[np.int64], by: NDArray[np.int64]) -> None:
        """Raise the sink capacity of chain ``nodes`` by ``by`` (non-negative)."""
        edges = self.net.sink_edge[nodes]
        self.cap[edges] += by
        self.res[self.net.fwd[edges]] += by

    def augment(self, nodes: NDArray[np.bool_] | None = None) -> None:
        """Augment to a maximum flow (see the class docstring). ``nodes``: the components
        (items) whose sink capacities were raised since the flow was last maximum, as a mask
        over the nodes; the others hold no augmenting path and are left out of the solve."""
        net = self.net
        left = int(self.res[net.fwd[net.src_edges]].sum())
        net._augment(self.res, left, nodes)

    def edge_flow(self, edges: NDArray[np.int64]) -> NDArray[np.int64]:
        """The flow on the given edges (indices into the union's edge arrays)."""
        return self.cap[edges] - self.res[self.net.fwd[edges]]


def cheapest_flow(
    tails: NDArray[np.int32],
    heads: NDArray[np.int32],
    caps: NDArray[np.int64],
    costs: NDArray[np.int64],
    total: int,
) -> NDArray[np.int64] | None:
    """A flow of ``total`` units from node 0 to node 1 of least cost over the given arcs
    (OR-Tools' compiled cost-scaling min-cost flow, exact integers), or None when the solver
    refuses the ranges or finds none. Arcs without capacity are left out."""
    import numpy as np
    from ortools.graph.python.min_cost_flow import SimpleMinCostFlow

    live = np.flatnonzero(caps > 0)
    solver = SimpleMinCostFlow()
    solver.add_arcs_with_capacity_and_unit_cost(tails[live], heads[live], caps[live], costs[live])
    if solver.num_nodes() < 2:
        return None
    solver.set_nodes_supplies(np.asarray([0, 1], dtype=np.int32), np.asarray([total, -total]))
    if solver.solve() != solver.OPTIMAL:
        return None
    flow = np.zeros(caps.size, dtype=np.int64)
    flow[live] = solver.flows(np.arange(live.size, dtype=np.int32))
    return flow
