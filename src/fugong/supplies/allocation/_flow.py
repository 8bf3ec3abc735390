"""Exact integer maximum flow (Dinic, blocking flows by a depth-first push that sends as much
as it can through each node before leaving it) for the engine's compressed networks.

Capacities are Python ints, so every comparison is exact (the fair-share step scales capacities
by a common denominator instead of using floats). The graphs the engine builds are small (offer
groups and region chains, never single requests), so plain lists beat any vectorised
formulation here.

Properties the engine relies on:

* ``max_flow`` augments the flow already in the graph. An augmenting path starts at the source
  and ends at the sink and visits neither again, so it never lowers the flow on an edge out of
  the source or into the sink. Raising some capacities and calling ``max_flow`` again therefore
  keeps every amount already delivered (lower bounds, earlier tiers) and every amount already
  taken from a source edge (the cheapest-first routing).
* After ``max_flow``, ``reachable(s)`` is the source side of the minimum cut that is smallest
  by inclusion.
"""

from __future__ import annotations

__all__ = ["FlowGraph"]


class FlowGraph:
    """A directed graph with residual capacities; edge ``e`` and ``e ^ 1`` are a pair."""

    __slots__ = ("adj", "cap", "n", "to")

    def __init__(self, n: int) -> None:
        self.n = n
        self.adj: list[list[int]] = [[] for _ in range(n)]
        self.to: list[int] = []
        self.cap: list[int] = []

    def add_edge(self, u: int, v: int, cap: int) -> int:
        e = len(self.to)
        self.to.extend((v, u))
        self.cap.extend((cap, 0))
        self.adj[u].append(e)
        self.adj[v].append(e + 1)
        return e

    def copy(self) -> FlowGraph:
        """A graph with the same edges and its own capacities (the edge lists are shared, so
        edges must not be added to either afterwards)."""
        clone = FlowGraph.__new__(FlowGraph)
        clone.n, clone.adj, clone.to, clone.cap = self.n, self.adj, self.to, self.cap.copy()
        return clone

    def flow(self, e: int) -> int:
        """Flow on forward edge ``e`` (the residual capacity of its reverse)."""
        return self.cap[e ^ 1]

    def set_capacity(self, e: int, cap: int) -> None:
        """Give forward edge ``e`` capacity ``cap`` (not below its current flow)."""
        f = self.cap[e ^ 1]
        assert cap >= f, "capacity below current flow"
        self.cap[e] = cap - f

    def _levels(self, s: int, t: int) -> list[int]:
        to, cap, adj = self.to, self.cap, self.adj
        level = [-1] * self.n
        level[s] = 0
        queue = [s]
        for u in queue:  # the list grows while we walk it: a FIFO without deque overhead
            nxt = level[u] + 1
            for e in adj[u]:
                v = to[e]
                if level[v] < 0 and cap[e] > 0:
                    level[v] = nxt
                    if v == t:
                        return level
                    queue.append(v)
        return level

    def max_flow(self, s: int, t: int) -> int:
        """Augment to a maximum flow from ``s`` to ``t``; return the amount added."""
        to, cap, adj = self.to, self.cap, self.adj
        total = 0
        # What leaves the source now bounds every phase's flow.
        budget = sum([cap[e] for e in adj[s]])
        while True:
            level = self._levels(s, t)
            lt = level[t]
            if lt < 0:
                return total
            it = [0] * self.n

            # Defaults bind this phase's levels and arc pointers as fast locals.
            def push(
                u: int, f: int, level: list[int] = level, it: list[int] = it, lt: int = lt
            ) -> int:
                # Send up to f from u to t along the level graph; return what was sent.
                edges = adj[u]
                n_e = len(edges)
                lu = level[u] + 1
                i = it[u]
                sent = 0
                if lu == lt:
                    while i < n_e:
                        e = edges[i]
                        c = cap[e]
                        if c and to[e] == t:
                            d = c if c < f - sent else f - sent
                            cap[e] = c - d
                            cap[e ^ 1] += d
                            sent += d
                            if sent == f:
                                it[u] = i
                                return sent
                        i += 1
                else:
                    while i < n_e:
                        e = edges[i]
                        c = cap[e]
                        if c and level[to[e]] == lu:
                            d = push(to[e], c if c < f - sent else f - sent)
                            if d:
                                cap[e] -= d
                                cap[e ^ 1] += d
                                sent += d
                                if sent == f:
                                    it[u] = i
                                    return sent
                        i += 1
                it[u] = i
                level[u] = -1  # saturated or dead: no more flow through u this phase
                return sent

            total += push(s, budget)

    def reachable(self, s: int) -> list[bool]:
        """Nodes reachable from ``s`` in the residual graph."""
        to, cap, adj = self.to, self.cap, self.adj
        seen = [False] * self.n
        seen[s] = True
        queue = [s]
        for u in queue:
            for e in adj[u]:
                v = to[e]
                if not seen[v] and cap[e] > 0:
                    seen[v] = True
                    queue.append(v)
        return seen
