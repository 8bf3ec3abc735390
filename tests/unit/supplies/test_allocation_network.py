"""The compressed network of a round (``_network.compress``) against a brute-force reference.

The reference below is written from the definitions alone (engine docstring, step 1, and the
supplies domain note), in plain Python: offer groups by (item, price, region set), one price
ladder per (item, region), a key's rank as the number of ladder prices within its cap, classes
by (item, tier, region, rank), one chain node per (item, region, rank > 0) that a class uses,
and a group's entry into a region's chain at the lowest node whose rank admits its price. It
never looks at how ``compress`` computes anything. Where the numbering is not fixed by the
definitions (which chain comes first), chain nodes are compared by what they mean, (item,
region, rank); where it is (groups, classes, entries' order), the numbers are compared as they
are.
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fugong.supplies.allocation import MAX_PRICE, Offer, Problem, ProblemError, Request, allocate
from fugong.supplies.allocation._network import Network, compress

Key = tuple[str, int, str, Any]  # (item, tier, region, cap), as the engine keys requests
Chain = tuple[str, str, int]  # a chain node by its meaning: (item, region, rank)

# Every field of Network: the check below must compare each of them (a new field fails here
# until the reference covers it).
FIELDS = {
    "n_nodes",
    "n_items",
    "item_supply",
    "item_demand",
    "g_item",
    "g_price",
    "g_qty",
    "g_rank",
    "g_offers",
    "g_offer_qty",
    "g_node",
    "c_item",
    "c_tier",
    "c_rank",
    "c_q",
    "c_node",
    "h_item",
    "e_group",
    "e_node",
    "k_tail",
    "k_head",
    "node_item",
    "supply",
    "key_class",
}


def test_fields_are_all_checked() -> None:
    assert {f.name for f in dataclasses.fields(Network)} == FIELDS


# -- how the engine turns requests into keys -----------------------------------------------


def keys_of(requests: tuple[Request, ...]) -> tuple[list[Key], list[int], np.ndarray]:
    """``keys``, ``key_tier`` and ``key_qty`` exactly as ``engine._allocate`` builds them:
    distinct (item, tier, region, cap) in order of first request, the tier's position among
    the sorted distinct tiers, and the summed quantities."""
    qty: dict[Key, int] = {}
    for r in requests:
        key = (r.item, r.tier, r.region, r.max_unit_price)
        qty[key] = qty.get(key, 0) + r.quantity
    keys = list(qty)
    tiers = sorted({key[1] for key in keys})
    key_tier = [tiers.index(key[1]) for key in keys]
    return keys, key_tier, np.asarray([qty[key] for key in keys], dtype=np.int64)


def compress_requests(offers: tuple[Offer, ...], requests: tuple[Request, ...]) -> Network:
    keys, key_tier, key_qty = keys_of(requests)
    return compress(offers, keys, key_tier, key_qty)


# -- the brute-force reference -----------------------------------------------------------


@dataclass
class Expected:
    item_code: dict[str, int]
    groups: list[list[int]]  # each group's offers (input positions), in group order
    g_item: list[str]
    g_price: list[float]
    g_regions: list[frozenset[str]]
    g_qty: list[int]
    classes: list[tuple[str, int, str, int]]  # (item, tier index, region, rank)
    c_q: list[int]
    key_class: list[int]
    chains: set[Chain]
    edges: set[tuple[Chain, Chain]]
    entries: set[tuple[int, Chain]]
    item_supply: list[int]
    item_demand: list[int]


def reference(
    offers: tuple[Offer, ...], keys: list[Key], key_tier: list[int], key_qty: np.ndarray
) -> Expected:
    item_code: dict[str, int] = {}
    for item, _tier, _region, _cap in keys:
        if item not in item_code:
            item_code[item] = len(item_code)
    named_regions = {region for _item, _tier, region, _cap in keys}

    # Offer groups: same item, same unit price, same set of regions; live offers only.
    # (A dict keeps its keys in order of first insertion; 2 == 2.0 is one price.)
    members_of: dict[tuple[str, float, frozenset[str]], list[int]] = {}
    for i, o in enumerate(offers):
        if o.quantity == 0 or not o.regions or o.item not in item_code:
            continue
        members_of.setdefault((o.item, o.unit_price, frozenset(o.regions)), []).append(i)
    groups = list(members_of.values())
    g_item = [offers[members[0]].item for members in groups]
    g_price = [offers[members[0]].unit_price for members in groups]
    g_regions = [frozenset(offers[members[0]].regions) for members in groups]
    g_qty = [sum(offers[i].quantity for i in members) for members in groups]

    # Price ladders: the sorted distinct prices of an item's groups serving a region.
    ladder_sets: dict[tuple[str, str], list[float]] = defaultdict(list)
    for item, price, regions in zip(g_item, g_price, g_regions, strict=True):
        for region in regions:
            if price not in ladder_sets[item, region]:
                ladder_sets[item, region].append(price)
    ladders = {ir: sorted(prices) for ir, prices in ladder_sets.items()}

    # Classes: keys with the same (item, tier, region, rank), numbered by first appearance.
    class_of: dict[tuple[str, int, str, int], int] = {}
    c_q: list[int] = []
    key_class: list[int] = []
    for (item, _tier, region, cap), tier, q in zip(keys, key_tier, key_qty.tolist(), strict=True):
        ladder = ladders.get((item, region), [])
        rank = sum(1 for p in ladder if cap is None or p <= cap)
        cls = (item, tier, region, rank)
        if cls not in class_of:
            class_of[cls] = len(class_of)
            c_q.append(0)
        key_class.append(class_of[cls])
        c_q[key_class[-1]] += q
    classes = list(class_of)

    # Chains: the (item, region, rank > 0) of the classes; edges join consecutive ranks.
    chains = {(item, region, rank) for item, _tier, region, rank in classes if rank > 0}
    ranks: dict[tuple[str, str], list[int]] = defaultdict(list)
    for item, region, rank in chains:
        ranks[item, region].append(rank)
    edges = set()
    for (item, region), used in ranks.items():
        used.sort()
        for low, high in pairwise(used):
            edges.add(((item, region, low), (item, region, high)))

    # Entries: into every named region's chain at the lowest node admitting the price.
    entries = set()
    for g, (item, price, regions) in enumerate(zip(g_item, g_price, g_regions, strict=True)):
        for region in regions:
            if region not in named_regions:
                continue
            need = ladders[item, region].index(price) + 1
            above = [rank for rank in ranks.get((item, region), []) if rank >= need]
            if above:
                entries.add((g, (item, region, min(above))))

    item_supply = [0] * len(item_code)
    for item, q in zip(g_item, g_qty, strict=True):
        item_supply[item_code[item]] += q
    item_demand = [0] * len(item_code)
    for (item, _tier, _region, _rank), q in zip(classes, c_q, strict=True):
        item_demand[item_code[item]] += q
    return Expected(
        item_code,
        groups,
        g_item,
        g_price,
        g_regions,
        g_qty,
        classes,
        c_q,
        key_class,
        chains,
        edges,
        entries,
        item_supply,
        item_demand,
    )


def ints(array: object) -> list[int]:
    """A documented ``I64`` field as a list (checking that it is one)."""
    assert isinstance(array, np.ndarray), type(array)
    assert array.dtype == np.int64, array.dtype
    assert array.ndim == 1, array.shape
    values: list[int] = array.tolist()
    return values


def check(
    offers: tuple[Offer, ...], keys: list[Key], key_tier: list[int], key_qty: np.ndarray
) -> Network:
    """``compress`` on these inputs agrees with the reference in every field."""
    net = compress(offers, keys, key_tier, key_qty)
    exp = reference(offers, keys, key_tier, key_qty)
    code = exp.item_code
    n_groups, n_chains = len(exp.groups), len(exp.chains)
    first = 2 + n_groups

    # Items.
    assert net.n_items == len(code)
    assert net.item_supply == exp.item_supply
    assert net.item_demand == exp.item_demand
    assert all(type(x) is int for x in net.item_supply + net.item_demand)

    # Groups, numbered by their first offer; their offers in input order.
    assert ints(net.g_item) == [code[item] for item in exp.g_item]
    assert list(net.g_price) == exp.g_price
    assert ints(net.g_qty) == exp.g_qty
    ladder = sorted(set(exp.g_price))
    assert ints(net.g_rank) == [ladder.index(p) for p in exp.g_price]
    assert ints(net.g_offers) == [i for members in exp.groups for i in members]
    assert ints(net.g_offer_qty) == [offers[i].quantity for m in exp.groups for i in m]
    assert ints(net.g_node) == list(range(2, first))

    # Classes, numbered by their first key.
    assert ints(net.key_class) == exp.key_class
    assert ints(net.c_item) == [code[item] for item, _t, _r, _k in exp.classes]
    assert ints(net.c_tier) == [tier for _i, tier, _r, _k in exp.classes]
    assert ints(net.c_rank) == [rank for _i, _t, _r, rank in exp.classes]
    assert ints(net.c_q) == exp.c_q

    # Chain nodes: what each number means, read off the classes that sit on it.
    assert net.n_nodes == first + n_chains
    meaning: dict[int, Chain] = {}
    for (item, _tier, region, rank), node in zip(exp.classes, ints(net.c_node), strict=True):
        if rank == 0:
            assert node == -1
            continue
        assert first <= node < first + n_chains, node
        assert meaning.setdefault(node, (item, region, rank)) == (item, region, rank)
    assert set(meaning) == set(range(first, first + n_chains))
    assert set(meaning.values()) == exp.chains  # (a bijection: both have n_chains members)
    node_of = {m: node for node, m in meaning.items()}
    chains: dict[tuple[str, str], list[int]] = defaultdict(list)
    for item, region, rank in sorted(exp.chains):
        chains[item, region].append(node_of[item, region, rank])
    for nodes in chains.values():  # consecutive, increasing in rank
        assert nodes == list(range(nodes[0], nodes[0] + len(nodes))), nodes
    h_item = ints(net.h_item)
    assert h_item == [code[meaning[node][0]] for node in range(first, first + n_chains)]

    # Chain edges, exactly those between consecutive ranks of a chain.
    tails, heads = ints(net.k_tail), ints(net.k_head)
    assert len(tails) == len(heads) == len(exp.edges)
    assert {(meaning[t], meaning[h]) for t, h in zip(tails, heads, strict=True)} == exp.edges

    # Entries: strictly sorted by (node, group), so no pair twice.
    e_group, e_node = ints(net.e_group), ints(net.e_node)
    pairs = list(zip(e_node, e_group, strict=True))
    assert all(a < b for a, b in pairwise(pairs)), pairs
    assert all(0 <= g < n_groups for g in e_group)
    assert {(g, meaning[node]) for node, g in pairs} == exp.entries
    assert len(pairs) == len(exp.entries)

    # Per node.
    assert ints(net.node_item) == [-1, -1, *ints(net.g_item), *h_item]
    assert ints(net.supply) == [0, 0, *exp.g_qty] + [0] * n_chains
    return net


def check_requests(offers: tuple[Offer, ...], requests: tuple[Request, ...]) -> Network:
    return check(offers, *keys_of(requests))


# -- random small rounds -------------------------------------------------------------------

ITEMS = ("kn95", "gloves", "酒精")
REGIONS = ("越秀区", "海珠区", "黄埔区", "天河区")
NOBODYS_ITEM = "护目镜"  # offered, never requested
NOBODYS_REGION = "南沙区"  # served, never requested
# Few prices, so that groups share them; integers among them (2 and 2.0 are one price).
PRICES: tuple[float, ...] = (0.0, 1, 1.0, 1.5, 2, 2.0, 3.25)
# Caps below, between and equal to prices (as ints and floats), above all, and none.
CAPS: tuple[float | None, ...] = (None, None, 0.0, 0.5, 1, 1.25, 1.5, 2, 2.0, 2.5, 3.25, 9, 10**400)


@st.composite
def rounds(draw: st.DrawFn) -> tuple[tuple[Offer, ...], tuple[Request, ...]]:
    items = ITEMS[: draw(st.integers(1, 3))]
    regions = REGIONS[: draw(st.integers(1, 4))]
    offer_items = st.sampled_from((*items, *items, NOBODYS_ITEM))
    # Lists, not sets: a region may be listed twice, and the same set in another order.
    # (Hypothesis favours boundaries: keep the dead offers, empty or zero, a minority.)
    offer_regions = st.lists(
        st.sampled_from((*regions, *regions, NOBODYS_REGION)), min_size=1, max_size=4
    )
    quantities = st.sampled_from((2, 5, 1, 0, 3, 9))  # (the simplest draw is the first)
    offers: list[Offer] = []
    for i in range(draw(st.integers(0, 10))):
        if offers and draw(st.sampled_from((False, False, True))):
            # An earlier offer's terms, its regions shuffled, maybe one repeated: one group.
            like = draw(st.sampled_from(offers))
            item, price = like.item, like.unit_price
            again = like.regions[: draw(st.integers(0, 1))]
            offer_in = tuple(draw(st.permutations(like.regions + again)))
        else:
            item, price = draw(offer_items), draw(st.sampled_from(PRICES))
            offer_in = () if draw(st.sampled_from(range(8))) == 7 else tuple(draw(offer_regions))
        quantity = draw(quantities)
        offers.append(Offer(f"O{i}", f"S{i % 3}", item, quantity, price, offer_in))
    requests: list[Request] = []
    for i in range(draw(st.integers(1, 12))):
        if requests and draw(st.sampled_from((False, True))):
            # An earlier request's item and region (another cap or tier): longer chains.
            like_r = draw(st.sampled_from(requests))
            item, region = like_r.item, like_r.region
        else:
            item, region = draw(st.sampled_from(items)), draw(st.sampled_from(regions))
        tier = draw(st.sampled_from((1, 2, 5)))
        cap = draw(st.sampled_from(CAPS))
        quantity = draw(st.integers(1, 9))
        requests.append(Request(f"R{i}", f"E{i}", item, quantity, tier, region, cap))
    return tuple(offers), tuple(requests)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rounds())
def test_matches_reference(case: tuple[tuple[Offer, ...], tuple[Request, ...]]) -> None:
    check_requests(*case)


def random_round(rng: random.Random) -> tuple[tuple[Offer, ...], tuple[Request, ...]]:
    """A denser round than Hypothesis tends to draw: more offers and requests on the same
    few items and regions, so chains have several ranks and groups several offers."""
    items = ITEMS[: rng.randint(1, 3)]
    regions = REGIONS[: rng.randint(1, 4)]
    offers = []
    for i in range(rng.randint(0, 14)):
        item = rng.choice((*items, *items, *items, NOBODYS_ITEM))
        listed = rng.choices((*regions, NOBODYS_REGION), k=rng.choice((0, 1, 1, 2, 2, 3, 4)))
        quantity = rng.choice((0, 1, 2, 4, 7))
        offers.append(Offer(f"O{i}", f"S{i}", item, quantity, rng.choice(PRICES), tuple(listed)))
    requests = tuple(
        Request(
            f"R{i}",
            f"E{i}",
            rng.choice(items),
            rng.randint(1, 9),
            rng.choice((1, 2, 5)),
            rng.choice(regions),
            rng.choice(CAPS),
        )
        for i in range(rng.randint(1, 16))
    )
    return tuple(offers), requests


def test_matches_reference_seeded() -> None:
    for seed in range(300):
        offers, requests = random_round(random.Random(seed))
        check_requests(offers, requests)


# -- hand-made edge cases ------------------------------------------------------------------


def offer(oid: str, qty: int, price: float, *regions: str, item: str = "kn95") -> Offer:
    return Offer(oid, f"S-{oid}", item, qty, price, regions)


def request(
    rid: str, qty: int, region: str, tier: int = 1, cap: float | None = None, item: str = "kn95"
) -> Request:
    return Request(rid, f"E-{rid}", item, qty, tier, region, cap)


def test_no_offers() -> None:
    requests = (
        request("R1", 3, "A"),
        request("R2", 4, "A", cap=2.0),
        request("R3", 5, "B", tier=2, item="gloves"),
        request("R4", 6, "A"),
    )
    net = check_requests((), requests)
    assert net.n_nodes == 2
    assert net.item_supply == [0, 0]
    assert net.item_demand == [13, 5]
    assert ints(net.c_rank) == [0, 0]  # R1 and R4 are one key, R2 has its own cap ...
    assert ints(net.key_class) == [0, 0, 1]  # ... but without prices every rank is 0
    assert ints(net.c_node) == [-1, -1]
    assert net.g_price == []


def test_only_dead_offers() -> None:
    offers = (
        offer("O1", 0, 1.0, "A"),  # nothing in stock
        offer("O2", 5, 1.0),  # no region
        offer("O3", 5, 1.0, "A", item="gloves"),  # nobody asks for the item
        offer("O4", 5, 1.0, "Z"),  # a region nobody names: a group, but no entry
    )
    net = check_requests(offers, (request("R1", 3, "A"),))
    assert ints(net.g_offers) == [3]
    assert ints(net.c_rank) == [0]
    assert net.e_group.size == 0


def test_empty_round() -> None:
    """``_allocate`` calls ``compress`` with no keys when there are no requests: every offer
    is then of an item nobody asks for."""
    offers = (offer("O1", 5, 1.0, "A"), offer("O2", 0, 2.0, "B"))
    net = check(offers, [], [], np.zeros(0, dtype=np.int64))
    assert net.n_nodes == 2
    assert net.n_items == 0
    assert net.key_class.size == 0
    net = check((), [], [], np.zeros(0, dtype=np.int64))
    assert net.n_nodes == 2

    for round_offers in (offers, ()):
        plan = allocate(Problem(round_offers, ()))
        assert plan.lines == ()
        assert plan.requests == ()
        assert plan.tiers == ()
        assert plan.cost == 0.0


def test_huge_integer_cap_counts_every_price() -> None:
    """A cap beyond every float (a Python int) admits every price, the largest finite
    double included: it ranks like no cap at all."""
    big = 10**400
    largest = float(np.finfo(np.float64).max)
    offers = (
        offer("O1", 2, 1.0, "A"),
        offer("O2", 2, 1e300, "A"),
        offer("O3", 2, largest, "A"),
    )
    requests = (
        request("R1", 1, "A", cap=big),
        request("R2", 1, "A"),
        request("R3", 1, "A", cap=1e300),
        request("R4", 1, "A", cap=largest),
    )
    net = check_requests(offers, requests)
    assert ints(net.c_rank) == [3, 2]
    assert ints(net.key_class) == [0, 0, 1, 0]

    # Through the engine, whose offers are priced at most MAX_PRICE (every unit at it still
    # costs a finite double in total).
    dear = offer("O2", 2, MAX_PRICE, "A")
    plan = allocate(Problem((offers[0], dear), (request("R1", 4, "A", cap=big),)))
    assert plan.requests[0].allocated == 4
    assert plan.cost == 2 * 1.0 + 2 * MAX_PRICE
    with pytest.raises(ProblemError, match=r"offers\[1\] \(id O2\): field 'unit_price'"):
        allocate(Problem(offers[:2], (request("R1", 4, "A", cap=big),)))


def test_integer_prices_beyond_doubles_compare_exactly() -> None:
    """Integer prices are compared as integers: 2^53 + 1 is above a cap of 2^53 (as a double
    it would round down to it), and 2^53 and 2^53 + 1 are two rungs of the ladder."""
    offers = (offer("O1", 5, 2**53 + 1, "A"), offer("O2", 5, 2**53, "A"))
    requests = (request("R1", 3, "A", cap=2**53), request("R2", 3, "A"))
    net = check_requests(offers, requests)
    assert ints(net.c_rank) == [1, 2]
    plan = allocate(Problem(offers[:1], requests[:1]))
    assert plan.requests[0].allocated == 0 and plan.lines == ()


def test_many_items_regions_and_tiers() -> None:
    """3,000 keys over 1,000 items, 1,000 regions and 50 tiers, with a thousand distinct
    prices: the numeric codes ``compress`` builds for (item, region, tier, rank) span
    1,000 x 1,000 x 50 x 1,001 values here, and the classes, chains and entries must still be
    those of the reference. Each (item, region) has three keys (other tiers and caps), so
    chains have several nodes."""
    rng = random.Random(7)
    n = 1000
    items = [f"item{i}" for i in range(n)]
    regions = [f"region{i}" for i in range(n)]
    prices = [round(0.01 * k, 2) for k in range(1, 1001)]
    caps: list[float | None] = [None, 0.5, 1.0, 2.5, 5.0, 7.77, 10**400, *prices[::97]]
    requests = tuple(
        request(
            f"R{k}",
            rng.randint(1, 9),
            regions[(7 * k) % n],  # every region and item, not in step
            tier=1 + (13 * k + k // n) % 50,  # k, k + n and k + 2n: three tiers
            cap=rng.choice(caps),
            item=items[k % n],
        )
        for k in range(3 * n)
    )
    keys, key_tier, key_qty = keys_of(requests)
    assert len(keys) == 3 * n
    assert len(set(key_tier)) == 50
    offers = tuple(
        offer(
            f"O{k}",
            rng.randint(0, 9),
            rng.choice(prices),
            *rng.sample(regions, rng.randint(1, 3)),
            item=items[rng.randrange(n)],
        )
        for k in range(4 * n)
    )
    # Some offers into the regions of their item's keys, so that chains have several ranks.
    offers += tuple(
        offer(f"P{k}", 5, rng.choice(prices), regions[(7 * k) % n], item=items[k % n])
        for k in range(3 * n)
    )
    net = check(offers, keys, key_tier, key_qty)
    assert net.n_items == n
    assert int(net.c_rank.max()) >= 2
    assert net.k_tail.size > 0
    assert net.e_group.size > 0


# -- end to end ----------------------------------------------------------------------------


def test_region_listed_twice_is_served_like_once() -> None:
    requests = (
        request("R1", 4, "A"),
        request("R2", 3, "A", cap=1.0),
        request("R3", 5, "B", tier=2),
    )
    once = (offer("O1", 5, 1.0, "A"), offer("O2", 4, 2.0, "A", "B"))
    twice = (offer("O1", 5, 1.0, "A", "A"), offer("O2", 4, 2.0, "B", "A", "B", "A"))
    plan = allocate(Problem(once, requests))
    assert allocate(Problem(twice, requests)) == plan
    assert sum(r.allocated for r in plan.requests) == 9
    # The networks agree too (entries without repeats).
    a, b = compress_requests(once, requests), compress_requests(twice, requests)
    assert ints(a.e_group) == ints(b.e_group)
    assert ints(a.e_node) == ints(b.e_node)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rounds(), st.randoms(use_true_random=False))
def test_repeating_regions_changes_no_plan(
    case: tuple[tuple[Offer, ...], tuple[Request, ...]], rng: random.Random
) -> None:
    offers, requests = case
    repeated = tuple(
        dataclasses.replace(o, regions=o.regions + tuple(rng.choice(o.regions) for _ in "ab"))
        if o.regions
        else o
        for o in offers
    )
    assert allocate(Problem(repeated, requests)) == allocate(Problem(offers, requests))
