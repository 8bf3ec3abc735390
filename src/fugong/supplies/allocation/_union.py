"""Exact maximum flows on the disjoint union of many small networks, with scipy's compiled
Dinic doing the work.

The fair-share step runs one max flow per sub-network and per decomposition step; the
sub-networks of all items (and, further down, all parts of a decomposition) are independent,
so one flow on their union settles every one of them at once: a handful of compiled calls per
tier instead of dozens of interpreted ones.

scipy's ``maximum_flow`` takes 32-bit capacities, while the engine's scaled capacities reach
2^62. :meth:`UnionNetwork.max_flow` is therefore exact by *capacity scaling* in few phases: a
phase with unit ``2^k`` solves the network whose capacities are the residual capacities
rounded down to multiples of ``2^k`` (a max flow there is feasible in the real network); after
it, every edge of that network's minimum cut has less than ``2^k`` residual left, so what the
real network can still carry is below ``m * 2^k`` (``m`` edges). The next phase's unit is small
enough that this bound, counted in its units, fits 32 bits; the last phase has unit 1 and is
the exact residual network. Capacities above what can still flow are clipped (a cut through
such an edge is never smaller than the flow itself), which keeps the infinite internal edges
in range. With totals below 2^62 this is two or three phases.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["INF", "LIMIT", "ItemNet", "UnionFlow", "UnionNetwork"]

INF = 1 << 62  # capacity of an internal (uncapacitated) edge
LIMIT = 1 << 61  # the sum of all source capacities of one flow must stay below this
_CLIP = 1 << 30  # largest capacity handed to scipy (int32 with room for sums of two)


class ItemNet(NamedTuple):
    """One item's network in local node numbers (0 source, 1 sink, then 2 .. n_nodes - 1).

    ``groups``: (node, supply) of each offer group, fed by the source; ``internal``: the
    uncapacitated edges (group to chain entry, chain to next rank); ``chain``: the chain
    nodes, each with one edge to the sink. No two edges join the same two nodes, in either
    direction (each edge and its reverse are one pair of entries of the union's matrix).
    """

    n_nodes: int
    groups: list[tuple[int, int]]
    internal: list[tuple[int, int]]
    chain: list[int]


class UnionNetwork:
    """The disjoint union of item networks, one shared source (0) and sink (1).

    ``offset[i]`` maps item ``i``'s local node ``x >= 2`` to the global node
    ``offset[i] + x``. ``supply`` holds each group node's supply (0 elsewhere).
    """

    def __init__(self, items: list[ItemNet]) -> None:
        import numpy as np

        self.offset: list[int] = []
        self.internal_start: list[int] = []  # edge index of each item's first internal edge
        tails: list[int] = []
        heads: list[int] = []
        supply: list[tuple[int, int]] = []
        n = 2
        for net in items:
            off = n - 2
            self.offset.append(off)
            for node, qty in net.groups:
                tails.append(0)
                heads.append(off + node)
                supply.append((off + node, qty))
            self.internal_start.append(len(tails))
            for u, v in net.internal:
                tails.append(off + u)
                heads.append(off + v)
            for node in net.chain:
                tails.append(off + node)
                heads.append(1)
            n += net.n_nodes - 2
        self.n = n
        tail = np.asarray(tails, dtype=np.int64)
        head = np.asarray(heads, dtype=np.int64)
        self.tail, self.head = tail, head
        self.is_source = tail == 0
        self.is_sink = head == 1
        self.is_internal = ~(self.is_source | self.is_sink)
        self.supply = np.zeros(n, dtype=np.int64)
        for node, qty in supply:
            self.supply[node] = qty
        self.sink_edge = np.full(n, -1, dtype=np.int64)  # chain node -> its edge to the sink
        self.sink_edge[tail[self.is_sink]] = np.flatnonzero(self.is_sink)
        # Every edge and its reverse are entries of one CSR structure (scipy keeps it as is
        # when every reverse is present), so a flow's values line up with our positions.
        m = tail.size
        rows = np.concatenate((tail, head))
        cols = np.concatenate((head, tail))
        order = np.lexsort((cols, rows))
        where = np.empty(2 * m, dtype=np.int64)
        where[order] = np.arange(2 * m)
        self.fwd = where[:m]
        self.rows = rows[order]
        self.indices = cols[order].astype(np.int32)
        same = (self.rows[1:] == self.rows[:-1]) & (self.indices[1:] == self.indices[:-1])
        assert not same.any(), "two edges join the same pair of nodes"
        self.indptr = np.searchsorted(self.rows, np.arange(n + 1)).astype(np.int32)
        self.nnz = 2 * m
        # Residual edges into the source or out of the sink: no augmenting path uses one, so
        # they are handed to scipy as zero (cuts, hence flow values, are unchanged) and no
        # flow on a source or sink edge is ever lowered, whatever scipy's path order.
        self.useless = (self.indices == 0) | (self.rows == 1)
        # Phase step: m * 2^step must stay below _CLIP / 2 (see the module docstring).
        self.step = max(1, 29 - self.nnz.bit_length())

    def max_flow(
        self, source_cap: NDArray[np.int64], sink_cap: NDArray[np.int64], part: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """A maximum flow from source to sink, from zero.

        Per node: ``source_cap`` (group nodes), ``sink_cap`` (chain nodes), ``part`` (the
        sub-network a node belongs to, -1 for none); an internal edge is uncapacitated
        between nodes of one part and absent otherwise. Returns the flow into the sink per
        node and which nodes the residual graph reaches from the source (the source side of
        the minimum cut that is smallest by inclusion).
        """
        import numpy as np
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import breadth_first_order

        cap = np.zeros(self.tail.size, dtype=np.int64)
        src, snk, mid = self.is_source, self.is_sink, self.is_internal
        cap[src] = source_cap[self.head[src]]
        cap[snk] = sink_cap[self.tail[snk]]
        pt, ph = part[self.tail[mid]], part[self.head[mid]]
        cap[mid] = np.where((pt == ph) & (pt >= 0), INF, 0)
        res = np.zeros(self.nnz, dtype=np.int64)
        res[self.fwd] = cap
        total = int(cap[src].sum())
        assert total < LIMIT, "source capacities beyond the union's range"
        self._augment(res, total)
        shape = (self.n, self.n)
        live = res > 0
        counts = np.bincount(self.rows[live], minlength=self.n)
        indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
        residual = csr_matrix(
            (np.ones(int(counts.sum()), dtype=np.int8), self.indices[live], indptr), shape=shape
        )
        reached = breadth_first_order(residual, 0, directed=True, return_predecessors=False)
        reach = np.zeros(self.n, dtype=np.bool_)
        reach[reached] = True
        flow = cap - res[self.fwd]
        into_sink = np.zeros(self.n, dtype=np.int64)
        into_sink[self.tail[snk]] = flow[snk]
        return into_sink, reach

    def _augment(self, res: NDArray[np.int64], total: int) -> None:
        """Augment the flow whose residual capacities (CSR order) are ``res`` to a maximum
        one, in place; ``total`` bounds what can still flow. No flow on a source or sink edge is
        lowered (see ``useless``)."""
        import numpy as np
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import maximum_flow

        k = max(0, total.bit_length() - 30)
        shape = (self.n, self.n)
        while total:
            rounded = np.minimum(res >> k, _CLIP).astype(np.int32)
            rounded[self.useless] = 0
            graph = csr_matrix((rounded, self.indices, self.indptr), shape=shape)
            result = maximum_flow(graph, 0, 1, method="dinic")
            assert result.flow.nnz == self.nnz, "the flow must keep our CSR structure"
            if result.flow_value:
                res -= result.flow.data.astype(np.int64) << k
            if k == 0:
                break
            k = max(0, k - self.step)


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

    def augment(self) -> None:
        """Augment to a maximum flow (see the class docstring)."""
        net = self.net
        left = int(self.res[net.fwd[net.is_source]].sum())
        net._augment(self.res, left)

    def edge_flow(self, edges: NDArray[np.int64]) -> NDArray[np.int64]:
        """The flow on the given edges (indices into the union's edge arrays)."""
        return self.cap[edges] - self.res[self.net.fwd[edges]]
