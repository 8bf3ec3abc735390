"""The compressed networks of all items of a round, built in bulk as numpy arrays.

See the engine's docstring (step 1) for what the compression is and why it is exact: offers
with the same item, price and region set are one *offer group*; requests with the same item,
tier, region and *rank* (how many of the prices offered in the region are within the cap) are
one *class*; each (item, region) has a *chain* of nodes, one per rank some class uses; a group
enters, in every region it serves, the lowest chain node whose rank admits its price.

All items share one node numbering: 0 is the source, 1 the sink, then the groups, then the
chain nodes, sorted by (item, region, rank) so that each chain is a run of consecutive nodes
and the chain edges join neighbours. Items are numbered in the order of their first request,
classes in the order of their first request key; groups keep the order of their first offer,
their offers the input order. Only the offers (a few hundred) and the request keys (one per
distinct (item, tier, region, cap), about a thousand) are looped over in Python; everything
per class, chain node and entry is a handful of numpy calls for all items together.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from itertools import chain, count, repeat
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from fugong.supplies.allocation.model import Offer

__all__ = ["Network", "compress"]


@dataclass(slots=True)
class Network:
    """Arrays of the compressed network (``I64`` = int64 numpy array).

    Items: ``n_items``; ``item_supply`` (units offered, Python ints) and ``item_demand``.
    Groups (node ``2 + g``): ``g_item``, ``g_price`` (the prices as given, int or float: they
    are compared exactly), ``g_rank`` (the price's rank among all groups' prices), ``g_qty``,
    ``g_node``;
    ``g_offers``: the offers of every group, group after group, each group's in input order,
    with their quantities ``g_offer_qty``.
    Classes: ``c_item``, ``c_tier`` (index into the sorted tiers), ``c_rank``, ``c_q`` (total
    quantity), ``c_node`` (its chain node, -1 for rank 0: no offer reaches it).
    Chain nodes: ``h_item``. Entries, sorted by (chain node, group): ``e_group``, ``e_node``.
    Chain edges: ``k_tail`` -> ``k_head``. Per node: ``node_item``, ``supply``.
    ``key_class``: the class of each request key.
    """

    n_nodes: int
    n_items: int
    item_supply: list[int]
    item_demand: list[int]
    g_item: NDArray[np.int64]
    g_price: list[float]
    g_qty: NDArray[np.int64]
    g_rank: NDArray[np.int64]
    g_offers: NDArray[np.int64]
    g_offer_qty: NDArray[np.int64]
    g_node: NDArray[np.int64]
    c_item: NDArray[np.int64]
    c_tier: NDArray[np.int64]
    c_rank: NDArray[np.int64]
    c_q: NDArray[np.int64]
    c_node: NDArray[np.int64]
    h_item: NDArray[np.int64]
    e_group: NDArray[np.int64]
    e_node: NDArray[np.int64]
    k_tail: NDArray[np.int64]
    k_head: NDArray[np.int64]
    node_item: NDArray[np.int64]
    supply: NDArray[np.int64]
    key_class: NDArray[np.int64]

    def nodes_of(self, items: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """Which nodes belong to the ``items`` (a mask over the items); the source and the
        sink belong to none."""
        # node_item is -1 at the source and the sink: the index is valid, the result masked.
        return (self.node_item >= 0) & items[self.node_item]


def compress(
    offers: tuple[Offer, ...],
    keys: list[tuple[str, int, str, Any]],
    key_tier: list[int],
    key_qty: NDArray[np.int64],
) -> Network:
    """The network of a round. ``keys``: the distinct (item, tier, region, cap) of the
    requests, in order of first appearance; ``key_tier``: each key's tier index;
    ``key_qty``: each key's total quantity."""
    import numpy as np

    k_items = list(map(itemgetter(0), keys))
    k_regions = list(map(itemgetter(2), keys))
    k_caps = list(map(itemgetter(3), keys))
    item_code = {item: i for i, item in enumerate(dict.fromkeys(k_items))}
    region_code = {region: i for i, region in enumerate(dict.fromkeys(k_regions))}
    n_items, n_regions = len(item_code), len(region_code)

    # Offer groups. Offers of an item nobody asks for, with nothing in stock or serving no
    # region lead nowhere. A group's number is drawn the first time its key is looked up.
    columns = (
        list(map(attrgetter("item"), offers)),
        list(map(attrgetter("quantity"), offers)),
        list(map(attrgetter("unit_price"), offers)),
        list(map(attrgetter("regions"), offers)),
    )
    if all(columns[1]) and all(columns[3]) and all(map(item_code.__contains__, columns[0])):
        live: list[int] | range = range(len(offers))
        o_item, o_qty_list, o_price, o_regions = columns
    else:
        live = [
            oi
            for oi, (item, qty, regions) in enumerate(
                zip(columns[0], columns[1], columns[3], strict=True)
            )
            if qty and regions and item in item_code
        ]
        o_item, o_qty_list, o_price, o_regions = ([col[oi] for oi in live] for col in columns)
    group_of: defaultdict[tuple[str, float, frozenset[str]], int] = defaultdict(count().__next__)
    o_group = np.asarray(
        list(
            map(group_of.__getitem__, zip(o_item, o_price, map(frozenset, o_regions), strict=True))
        ),
        dtype=np.int64,
    )
    n_groups = len(group_of)
    # Each group's first offer: groups are numbered in order of first appearance, so a first
    # offer is one whose group number exceeds every number before it.
    seen = np.maximum.accumulate(o_group)
    head = np.flatnonzero(np.r_[True, seen[1:] > seen[:-1]]) if o_group.size else o_group
    o_qty = np.asarray(o_qty_list, dtype=np.int64)
    # Doubles hold the sums exactly: totals are at most MAX_UNITS.
    g_qty = np.bincount(o_group, weights=o_qty, minlength=n_groups).astype(np.int64)
    by_group = np.argsort(o_group, kind="stable")
    g_offers = np.asarray(live, dtype=np.int64)[by_group]
    g_offer_qty = o_qty[by_group]
    heads = head.tolist()
    gi = np.asarray([item_code[o_item[i]] for i in heads], dtype=np.int64)
    g_price = [o_price[i] for i in heads]
    # (group, region) for every region a group serves that some request names (twice if an
    # offer names a region twice: the entries drop the repeat).
    g_regions = list(map(o_regions.__getitem__, heads))
    n_pairs = np.fromiter(map(len, g_regions), dtype=np.int64, count=n_groups)
    flat = list(chain.from_iterable(g_regions))
    pr = np.asarray(list(map(region_code.get, flat, repeat(-1, len(flat)))), dtype=np.int64)
    pg = np.repeat(np.arange(n_groups, dtype=np.int64), n_pairs)[pr >= 0]
    pr = pr[pr >= 0]
    item_supply = np.bincount(gi, weights=g_qty, minlength=n_items).astype(np.int64).tolist()

    # Every price as a code, in price order; a cap as the number of prices within it (one
    # bisection per distinct cap). Python's comparisons are exact for integer prices beyond
    # 2^53 too, which doubles are not.
    prices = sorted(set(g_price))
    n_prices = len(prices)
    p_code = {p: i for i, p in enumerate(prices)}
    gp = np.asarray(list(map(p_code.__getitem__, g_price)), dtype=np.int64)
    # (item, region) as one number, and the price ladder of each as sorted (ir, price) codes.
    p_ir = gi[pg] * n_regions + pr
    ladder = _distinct(p_ir * n_prices + gp[pg])

    k_item = np.asarray(list(map(item_code.__getitem__, k_items)), dtype=np.int64)
    k_region = np.asarray(list(map(region_code.__getitem__, k_regions)), dtype=np.int64)
    within_cap = {
        cap: n_prices if cap is None else bisect_right(prices, cap) for cap in set(k_caps)
    }
    within = list(map(within_cap.__getitem__, k_caps))
    k_ir = k_item * n_regions + k_region
    base = k_ir * n_prices
    k_rank = np.searchsorted(ladder, base + np.asarray(within, dtype=np.int64)) - np.searchsorted(
        ladder, base
    )

    # Classes: keys with the same (item, tier, region, rank), numbered by first appearance.
    n_tiers = max(key_tier, default=0) + 1
    k_tier = np.asarray(key_tier, dtype=np.int64)
    # (Two steps keep the numbers within 64 bits however many items, regions and prices.)
    _v, item_tier_region = np.unique(k_ir * n_tiers + k_tier, return_inverse=True)
    ckey = item_tier_region.reshape(-1) * (n_prices + 1) + k_rank
    _u, first, inverse = np.unique(ckey, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    position = np.empty_like(order)
    position[order] = np.arange(order.size)
    key_class = position[inverse.reshape(-1)]
    rep = first[order]  # a key of each class
    c_item, c_rank = k_item[rep], k_rank[rep]
    # Sums in doubles are exact: totals are at most MAX_UNITS.
    c_q = np.bincount(key_class, weights=key_qty, minlength=order.size).astype(np.int64)

    # Chain nodes: the (item, region, rank) that served classes use, sorted.
    served = c_rank > 0
    c_ir = k_ir[rep]
    chain_key, c_chain = np.unique(
        c_ir[served] * (n_prices + 1) + c_rank[served], return_inverse=True
    )
    h_ir = chain_key // (n_prices + 1)
    first_chain = 2 + n_groups
    c_node = np.full(order.size, -1, dtype=np.int64)
    c_node[served] = first_chain + c_chain.reshape(-1)
    same = np.flatnonzero(h_ir[1:] == h_ir[:-1])
    k_tail = first_chain + same
    k_head = k_tail + 1

    # Entries: a group enters each chain of its regions at the lowest rank admitting its price
    # (its price's position in the region's ladder, plus one); none if no class ranks so high.
    pos = np.searchsorted(ladder, p_ir * n_prices + gp[pg]) - np.searchsorted(
        ladder, p_ir * n_prices
    )
    j = np.searchsorted(chain_key, p_ir * (n_prices + 1) + pos + 1)
    ok = j < chain_key.size
    ok[ok] = h_ir[j[ok]] == p_ir[ok]
    e_group, e_node = pg[ok], first_chain + j[ok]
    by_node = np.lexsort((e_group, e_node))
    e_group, e_node = e_group[by_node], e_node[by_node]
    repeat_ = (e_group[1:] == e_group[:-1]) & (e_node[1:] == e_node[:-1])
    if repeat_.any():
        once = np.r_[True, ~repeat_]
        e_group, e_node = e_group[once], e_node[once]

    n_nodes = first_chain + chain_key.size
    h_item = h_ir // max(n_regions, 1)
    node_item = np.concatenate((np.full(2, -1, dtype=np.int64), gi, h_item))
    supply = np.zeros(n_nodes, dtype=np.int64)
    supply[2 : 2 + n_groups] = g_qty
    item_demand = np.bincount(c_item, weights=c_q, minlength=n_items).astype(np.int64).tolist()
    return Network(
        n_nodes=n_nodes,
        n_items=n_items,
        item_supply=item_supply,
        item_demand=item_demand,
        g_item=gi,
        g_price=g_price,
        g_qty=g_qty,
        g_rank=gp,
        g_offers=g_offers,
        g_offer_qty=g_offer_qty,
        g_node=np.arange(2, 2 + n_groups, dtype=np.int64),
        c_item=c_item,
        c_tier=k_tier[rep],
        c_rank=c_rank,
        c_q=c_q,
        c_node=c_node,
        h_item=h_item,
        e_group=e_group,
        e_node=e_node,
        k_tail=k_tail,
        k_head=k_head,
        node_item=node_item,
        supply=supply,
        key_class=key_class,
    )


def _distinct(values: NDArray[np.int64]) -> NDArray[np.int64]:
    """The distinct values, sorted (a sort and a mask: several times faster than
    ``np.unique`` on a thousand values, which hashes first)."""
    import numpy as np

    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if ordered.size else ordered
