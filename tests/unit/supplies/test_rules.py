"""The pure supplies rules: tiers, need caps, price caps, the policy document, order states."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from fugong.supplies.rules import (
    Facts,
    ItemCap,
    Policy,
    RuleError,
    approved_quantity,
    cap_for,
    next_order_status,
    over_cap,
    policy_from_dict,
    request_status,
    tier_for,
)

TODAY = date(2020, 2, 20)


def test_key_category_and_institutions_are_tier_one() -> None:
    tier, why = tier_for(Facts("enterprise", "epidemic", "防疫必需"), TODAY, Policy())
    assert tier == 1 and "防疫必需" in why
    assert tier_for(Facts("institution"), TODAY, Policy())[0] == 1
    assert tier_for(Facts("institution"), TODAY, Policy(tier1_institutions=False))[0] == 3


@pytest.mark.parametrize(
    ("days", "tier"), [(-1, 3), (0, 2), (7, 2), (8, 3)], ids=["past", "today", "day7", "day8"]
)
def test_approved_resumption_within_seven_days_is_tier_two(days: int, tier: int) -> None:
    facts = Facts(
        "enterprise", resumption_status="approved", resumption_date=TODAY + timedelta(days)
    )
    assert tier_for(facts, TODAY, Policy())[0] == tier


def test_mask_cap_is_per_employee_per_working_day_until_next_round() -> None:
    cap, why = cap_for("mask_kn95", "个", Facts("enterprise", headcount=37), Policy())
    assert cap == 2 * 37 * 5 and "37 人" in why
    assert approved_quantity(1000, cap) == 370 and approved_quantity(100, cap) == 100
    assert cap_for("alcohol_75", "升", Facts("enterprise"), Policy()) == (
        None,
        "该物资不设需求上限",
    )


def test_the_smaller_of_two_caps_applies() -> None:
    policy = Policy(caps={"gloves": ItemCap(per_employee_per_day=1, fixed=50)})
    assert cap_for("gloves", "副", Facts("enterprise", headcount=100), policy)[0] == 50
    assert cap_for("gloves", "副", Facts("enterprise", headcount=3), policy)[0] == 15


def test_price_cap() -> None:
    assert not over_cap(5.25, 3.5, 1.5) and over_cap(5.26, 3.5, 1.5)
    assert not over_cap(1e9, 3.5, None)


def test_policy_round_trips_and_rejects_bad_values() -> None:
    assert policy_from_dict(Policy().to_dict()) == Policy()
    for bad in (
        {"tier2_within_days": -1},
        {"caps": {"bogus": {"fixed": 1}}},
        {"caps": {"gloves": {"fixed": 1.5}}},
        {"caps": {"gloves": {"per_day": 1}}},
        {"tier1_key_categories": "yes"},
        {"unknown": 1},
    ):
        with pytest.raises(RuleError):
            policy_from_dict(bad)


def test_order_state_machine() -> None:
    assert next_order_status("ship", "allocated") == "shipped"
    assert next_order_status("deliver", "shipped") == "delivered"
    with pytest.raises(RuleError):
        next_order_status("cancel", "shipped")  # on its way: no silent cancel
    with pytest.raises(RuleError):
        next_order_status("deliver", "confirmed")
    assert request_status(10, 0) == "open"
    assert request_status(10, 4) == "partly"
    assert request_status(10, 10) == "allocated"
