"""Hand-made rounds, each pinning one rule of the allocation contract."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest

from fugong.supplies.allocation import (
    MAX_UNITS,
    Offer,
    Plan,
    Problem,
    ProblemError,
    Request,
    allocate,
    parse_problem,
    plan_to_dict,
)


def offer(oid: str, qty: int, price: float, *regions: str, item: str = "kn95") -> Offer:
    return Offer(oid, f"S-{oid}", item, qty, price, regions)


def request(
    rid: str,
    qty: int,
    region: str,
    tier: int = 1,
    cap: float | None = None,
    item: str = "kn95",
) -> Request:
    return Request(rid, f"E-{rid}", item, qty, tier, region, cap)


def amounts(plan: Plan) -> dict[str, int]:
    return {r.id: r.allocated for r in plan.requests}


def routes(plan: Plan) -> dict[tuple[str, str], int]:
    return {(ln.request, ln.offer): ln.quantity for ln in plan.lines}


def test_contract_example_round_trips_exactly() -> None:
    problem = parse_problem(
        {
            "offers": [
                {"id": "O1", "supplier": "S1", "item": "kn95", "quantity": 1000,
                 "unit_price": 3.5, "regions": ["黄埔区", "天河区"]}
            ],
            "requests": [
                {"id": "R1", "enterprise": "E1", "item": "kn95", "quantity": 200,
                 "tier": 1, "region": "黄埔区", "max_unit_price": 5.0}
            ],
        }
    )  # fmt: skip
    assert plan_to_dict(allocate(problem)) == {
        "lines": [{"request": "R1", "offer": "O1", "quantity": 200}],
        "requests": [{"id": "R1", "allocated": 200, "fill": 1.0}],
        "tiers": [{"tier": 1, "requested": 200, "allocated": 200}],
        "cost": 700.0,
    }


def test_earlier_tier_gets_what_it_can_first() -> None:
    plan = allocate(
        Problem(
            (offer("O1", 100, 1.0, "A"),),
            (request("late", 80, "A", tier=2), request("early", 70, "A", tier=1)),
        )
    )
    assert amounts(plan) == {"late": 30, "early": 70}
    assert [(t.tier, t.requested, t.allocated) for t in plan.tiers] == [(1, 70, 70), (2, 80, 30)]


def test_tiers_fix_amounts_not_routes() -> None:
    # If tier 1 kept the route O1 -> early, tier 2 (only reachable from O1) would get nothing.
    plan = allocate(
        Problem(
            (offer("O1", 10, 1.0, "A", "B"), offer("O2", 10, 1.0, "A")),
            (request("early", 10, "A", tier=1), request("late", 10, "B", tier=2)),
        )
    )
    assert amounts(plan) == {"early": 10, "late": 10}
    assert routes(plan) == {("early", "O2"): 10, ("late", "O1"): 10}


def test_price_cap_excludes_dearer_offers() -> None:
    plan = allocate(
        Problem(
            (offer("cheap", 5, 2.0, "A"), offer("dear", 100, 4.0, "A")),
            (request("capped", 20, "A", cap=3.0), request("free", 20, "A", tier=2)),
        )
    )
    assert routes(plan) == {("capped", "cheap"): 5, ("free", "dear"): 20}
    assert plan.cost == 5 * 2.0 + 20 * 4.0


def test_cap_equal_to_price_is_allowed() -> None:
    plan = allocate(Problem((offer("O", 5, 3.0, "A"),), (request("R", 5, "A", cap=3.0),)))
    assert amounts(plan) == {"R": 5}


def test_offers_reach_only_their_regions() -> None:
    plan = allocate(
        Problem(
            (offer("O1", 50, 1.0, "A"),),
            (request("inA", 10, "A"), request("inB", 10, "B")),
        )
    )
    assert amounts(plan) == {"inA": 10, "inB": 0}
    assert [r.fill for r in plan.requests] == [1.0, 0.0]


def test_items_do_not_mix() -> None:
    plan = allocate(
        Problem(
            (offer("masks", 50, 1.0, "A", item="mask"),),
            (request("wants-gloves", 10, "A", item="gloves"),),
        )
    )
    assert amounts(plan) == {"wants-gloves": 0}
    assert plan.lines == ()


def test_equal_fill_ratio_within_a_tier() -> None:
    plan = allocate(
        Problem(
            (offer("O1", 200, 1.0, "A"),),
            (request("small", 100, "A"), request("big", 300, "A")),
        )
    )
    assert amounts(plan) == {"small": 50, "big": 150}
    assert {r.id: r.share for r in plan.requests} == {"small": 50, "big": 150}


def test_max_min_raises_the_poorest_then_the_next() -> None:
    # "few" can only use O1 (10 units): its fill stops at 0.1; "many" goes on to O2's 50 too.
    plan = allocate(
        Problem(
            (offer("O1", 10, 1.0, "X", "Y"), offer("O2", 50, 1.0, "Y")),
            (request("few", 100, "X"), request("many", 100, "Y")),
        )
    )
    assert amounts(plan) == {"few": 10, "many": 50}


def test_max_min_shares_a_common_offer() -> None:
    # 110 units for two requests of 100: both reach 0.55; "y" takes O2's 50 and 5 of O1.
    plan = allocate(
        Problem(
            (offer("O1", 60, 1.0, "X", "Y"), offer("O2", 50, 1.0, "Y")),
            (request("x", 100, "X"), request("y", 100, "Y")),
        )
    )
    assert amounts(plan) == {"x": 55, "y": 55}
    assert routes(plan) == {("x", "O1"): 55, ("y", "O1"): 5, ("y", "O2"): 50}


def test_whole_units_floor_or_ceil_and_tier_total_is_max() -> None:
    plan = allocate(
        Problem(
            (offer("O1", 2, 1.0, "A"),),
            tuple(request(f"R{i}", 1, "A") for i in range(3)),
        )
    )
    assert [r.share for r in plan.requests] == [Fraction(2, 3)] * 3
    # Equal remainders: ties go to input order.
    assert amounts(plan) == {"R0": 1, "R1": 1, "R2": 0}
    assert plan.tiers[0].allocated == 2


def test_largest_remainder_gets_the_extra_unit() -> None:
    # Fill 7/10: shares 2.1 (q=3) and 4.9 (q=7); total 7 = 2 + 5.
    plan = allocate(
        Problem(
            (offer("O1", 7, 1.0, "A"),),
            (request("three", 3, "A"), request("seven", 7, "A")),
        )
    )
    assert amounts(plan) == {"three": 2, "seven": 5}


def test_routing_uses_the_cheapest_plan() -> None:
    # Every request is met; the cheapest way uses all of "a" (1.0) and "c" (2.0) and one of "b".
    plan = allocate(
        Problem(
            (
                offer("a", 10, 1.0, "X", "Y"),
                offer("b", 10, 3.0, "X", "Y"),
                offer("c", 5, 2.0, "Y"),
            ),
            (request("rx", 8, "X"), request("ry", 8, "Y")),
        )
    )
    assert amounts(plan) == {"rx": 8, "ry": 8}
    assert plan.cost == 10 * 1.0 + 5 * 2.0 + 1 * 3.0
    used: dict[str, int] = {}
    for line in plan.lines:
        used[line.offer] = used.get(line.offer, 0) + line.quantity
    assert used == {"a": 10, "b": 1, "c": 5}


def test_identical_offers_are_split_in_input_order() -> None:
    plan = allocate(
        Problem(
            (offer("first", 3, 1.0, "A"), offer("second", 3, 1.0, "A")),
            (request("R", 5, "A"),),
        )
    )
    assert routes(plan) == {("R", "first"): 3, ("R", "second"): 2}


def test_empty_and_zero_offers() -> None:
    plan = allocate(Problem((offer("none", 0, 1.0, "A"), offer("nowhere", 9, 1.0)), ()))
    assert plan == Plan(lines=(), requests=(), tiers=(), cost=0.0)
    plan = allocate(Problem((offer("none", 0, 1.0, "A"),), (request("R", 4, "A", tier=2),)))
    assert amounts(plan) == {"R": 0}
    assert [(t.tier, t.requested, t.allocated) for t in plan.tiers] == [(2, 4, 0)]


def test_plan_is_deterministic() -> None:
    problem = Problem(
        (offer("O1", 17, 1.5, "A", "B"), offer("O2", 9, 1.0, "B")),
        tuple(request(f"R{i}", 3 + i, "AB"[i % 2], tier=1 + i % 2) for i in range(9)),
    )
    assert allocate(problem) == allocate(problem)


def test_allocate_checks_problems_built_in_code() -> None:
    with pytest.raises(ProblemError, match=r"requests\[1\] \(id R\): field 'id' duplicates"):
        allocate(Problem((), (request("R", 1, "A"), request("R", 2, "A"))))
    with pytest.raises(ProblemError, match=r"offers\[0\] \(id O\): field 'quantity'"):
        allocate(Problem((offer("O", -1, 1.0, "A"),), ()))


GOOD_OFFER = {"id": "O1", "supplier": "S1", "item": "kn95", "quantity": 10, "unit_price": 1.0,
              "regions": ["A"]}  # fmt: skip
GOOD_REQUEST = {"id": "R7", "enterprise": "E1", "item": "kn95", "quantity": 5, "tier": 1,
                "region": "A"}  # fmt: skip


def with_request(**changes: object) -> dict[str, object]:
    bad = {**GOOD_REQUEST, **changes}
    return {"offers": [GOOD_OFFER], "requests": [GOOD_REQUEST | {"id": "R0"}, GOOD_REQUEST, bad]}


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], r"^problem: must be an object"),
        ({"offers": []}, r"^problem: missing field 'requests'"),
        ({"offers": {}, "requests": []}, r"^problem: field 'offers' must be a list"),
        ({"offers": [], "requests": [], "extra": 1}, r"^problem: unknown field 'extra'"),
        (with_request(id="R9", quantity=-5), r"^requests\[2\] \(id R9\): field 'quantity'"),
        (with_request(id="R9", quantity=0), r"^requests\[2\] \(id R9\): field 'quantity'"),
        (with_request(id="R9", quantity=2.5), r"^requests\[2\] \(id R9\): field 'quantity'"),
        (with_request(id="R9", quantity=True), r"^requests\[2\] \(id R9\): field 'quantity'"),
        (with_request(id="R9", tier=0), r"^requests\[2\] \(id R9\): field 'tier'"),
        (with_request(id="R9", tier="1"), r"^requests\[2\] \(id R9\): field 'tier'"),
        (with_request(id="R9", region=None), r"^requests\[2\] \(id R9\): field 'region'"),
        (with_request(id="R9", max_unit_price="5"), r"\(id R9\): field 'max_unit_price'"),
        (with_request(id="R9", max_unit_price=-1), r"\(id R9\): field 'max_unit_price'"),
        (with_request(id="R9", max_price=5), r"\(id R9\): unknown field 'max_price'"),
        (with_request(id=7), r"^requests\[2\]: field 'id' must be a string"),
        (with_request(), r"^requests\[2\] \(id R7\): field 'id' duplicates requests\[1\]"),
        (
            {
                "offers": [GOOD_OFFER],
                "requests": [{k: v for k, v in GOOD_REQUEST.items() if k != "tier"}],
            },
            r"^requests\[0\] \(id R7\): missing field 'tier'",
        ),
        (
            {"offers": [GOOD_OFFER | {"quantity": -1}], "requests": []},
            r"^offers\[0\] \(id O1\): field 'quantity' must be >= 0",
        ),
        (
            {"offers": [GOOD_OFFER | {"unit_price": float("nan")}], "requests": []},
            r"^offers\[0\] \(id O1\): field 'unit_price'",
        ),
        (
            {"offers": [GOOD_OFFER | {"unit_price": 10**400}], "requests": []},
            r"^offers\[0\] \(id O1\): field 'unit_price' must be a finite number",
        ),
        (
            {"offers": [GOOD_OFFER | {"unit_price": 1e300}], "requests": []},
            r"^offers\[0\] \(id O1\): field 'unit_price' must be >= 0 and <= 2e\+292, got 1e\+300",
        ),
        (
            {"offers": [GOOD_OFFER | {"regions": "A"}], "requests": []},
            r"^offers\[0\] \(id O1\): field 'regions' must be a list of strings",
        ),
        (
            {"offers": [GOOD_OFFER, GOOD_OFFER], "requests": []},
            r"^offers\[1\] \(id O1\): field 'id' duplicates offers\[0\]",
        ),
        ({"offers": [3], "requests": []}, r"^offers\[0\]: must be an object"),
    ],
)
def test_parse_problem_names_record_and_field(obj: object, message: str) -> None:
    with pytest.raises(ProblemError, match=message):
        parse_problem(obj)


def test_parse_problem_accepts_null_or_absent_cap_and_integer_price() -> None:
    problem = parse_problem(
        {
            "offers": [GOOD_OFFER | {"unit_price": 2}],
            "requests": [GOOD_REQUEST, GOOD_REQUEST | {"id": "R8", "max_unit_price": None}],
        }
    )
    assert problem.offers[0].unit_price == 2.0
    assert isinstance(problem.offers[0].unit_price, float)
    assert [r.max_unit_price for r in problem.requests] == [None, None]
    assert problem.offers[0].regions == ("A",)


def test_quantities_are_bounded_by_exact_json_integers() -> None:
    """Each side's total must stay within 2^53 - 1 (what every JSON reader keeps exactly, and
    what the engine's 64-bit and double arithmetic counts exactly)."""
    with pytest.raises(
        ProblemError, match=r"^requests\[2\] \(id R9\): field 'quantity' must be <="
    ):
        parse_problem(with_request(id="R9", quantity=MAX_UNITS + 1))
    with pytest.raises(ProblemError, match=r"^requests: total quantity must be <="):
        allocate(Problem((), (request("R1", MAX_UNITS, "A"), request("R2", 1, "A"))))
    with pytest.raises(ProblemError, match=r"^offers: total quantity must be <="):
        allocate(Problem((offer("O1", MAX_UNITS, 1.0, "A"), offer("O2", 1, 1.0, "A")), ()))
    # At the bound itself the arithmetic is still exact.
    plan = allocate(
        Problem(
            (offer("O", MAX_UNITS - 1, 1.0, "A"),),
            (request("R1", MAX_UNITS - 3, "A"), request("R2", 3, "A")),
        )
    )
    assert [r.share for r in plan.requests] == [
        Fraction(MAX_UNITS - 1, MAX_UNITS) * (MAX_UNITS - 3),
        Fraction(MAX_UNITS - 1, MAX_UNITS) * 3,
    ]
    assert sum(r.allocated for r in plan.requests) == MAX_UNITS - 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", 0),
        ("quantity", -3),
        ("quantity", 2**70),
        ("tier", 0),
        ("max_unit_price", float("nan")),
        ("max_unit_price", float("inf")),
        ("max_unit_price", -0.5),
        ("id", ""),
    ],
)
def test_engine_bulk_request_check_names_the_bad_record(field: str, value: object) -> None:
    """The engine checks requests in bulk (numpy) and leaves the message to validate_problem:
    every bad value must still be caught and named, among thousands of good ones."""
    good = [request(f"R{i}", 1 + i % 5, "A", cap=None if i % 3 else 2.0) for i in range(3000)]
    bad = dataclasses.replace(good[1234], **{field: value})
    problem = Problem((offer("O1", 100, 1.5, "A"),), (*good[:1234], bad, *good[1235:]))
    with pytest.raises(ProblemError, match=rf"^requests\[1234\].*field '{field}'"):
        allocate(problem)


def test_engine_bulk_request_check_accepts_a_cap_beyond_the_float_range() -> None:
    """An integer cap numpy cannot hold as a double is still a valid (unbounded) cap."""
    problem = Problem(
        (offer("O1", 10, 1.5, "A"),), (request("R1", 4, "A", cap=10**400), request("R2", 6, "A"))
    )
    assert [r.allocated for r in allocate(problem).requests] == [4, 6]


def test_plan_records_match_its_columns_and_cannot_change() -> None:
    problem = Problem(
        (offer("O1", 17, 1.5, "A", "B"), offer("O2", 9, 1.0, "B")),
        tuple(request(f"R{i}", 3 + i, "AB"[i % 2], tier=1 + i % 2) for i in range(9)),
    )
    fresh, used = allocate(problem), allocate(problem)
    # The dictionary from the columns equals the one from the built records.
    assert plan_to_dict(fresh) == {
        "lines": [
            {"request": ln.request, "offer": ln.offer, "quantity": ln.quantity} for ln in used.lines
        ],
        "requests": [{"id": r.id, "allocated": r.allocated, "fill": r.fill} for r in used.requests],
        "tiers": [
            {"tier": t.tier, "requested": t.requested, "allocated": t.allocated} for t in used.tiers
        ],
        "cost": used.cost,
    }
    rebuilt = Plan(lines=used.lines, requests=used.requests, tiers=used.tiers, cost=used.cost)
    assert rebuilt == fresh and plan_to_dict(rebuilt) == plan_to_dict(fresh)
    with pytest.raises(AttributeError):
        fresh.cost = 0.0  # type: ignore[misc]
