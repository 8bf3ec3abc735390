"""Exact integer maximum flow (Dinic) for the engine's compressed networks.

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
        while True:
            level = self._levels(s, t)
            lt = level[t]
            if lt < 0:
                return total
            it = [0] * self.n
            stack: list[int] = []
            u = s
            while True:
                if u == t:
                    f = min([cap[e] for e in stack])
                    total += f
                    # Retreat to the tail of the first saturated edge: everything before it can
                    # still carry flow, so the search resumes there.
                    cut = -1
                    for i, e in enumerate(stack):
                        cap[e] -= f
                        cap[e ^ 1] += f
                        if cut < 0 and not cap[e]:
                            cut = i
                    del stack[cut:]
                    u = to[stack[-1]] if stack else s
                    continue
                edges = adj[u]
                i = it[u]
                n_e = len(edges)
                lu = level[u] + 1
                if lu == lt:
                    # Only t lies on the next level of a shortest path.
                    while i < n_e:
                        e = edges[i]
                        if cap[e] and to[e] == t:
                            break
                        i += 1
                else:
                    while i < n_e:
                        e = edges[i]
                        if cap[e] and level[to[e]] == lu:
                            break
                        i += 1
                it[u] = i
                if i < n_e:
                    e = edges[i]
                    stack.append(e)
                    u = to[e]
                    continue
                if u == s:
                    break
                level[u] = -1  # dead end for the rest of this phase
                e = stack.pop()
                u = to[e ^ 1]
                it[u] += 1

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
