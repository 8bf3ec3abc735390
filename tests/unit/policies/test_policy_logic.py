"""Vectorised three-valued evaluation: Kleene logic, unknown propagation, naming what is missing."""

from __future__ import annotations

import datetime as dt

import pytest

from fugong.policies.engine.params import Parameter, Period

from .conftest import evaluate_expr

T, F, U = True, False, None


@pytest.mark.parametrize(
    ("a", "b", "and_", "or_"),
    [
        (T, T, T, T),
        (T, F, F, T),
        (F, T, F, T),
        (F, F, F, F),
        (F, U, F, U),
        (U, F, F, U),
        (T, U, U, T),
        (U, T, U, T),
        (U, U, U, U),
    ],
)
def test_kleene_truth_tables(
    a: bool | None, b: bool | None, and_: bool | None, or_: bool | None
) -> None:
    # Pad with a known row so each column's type is inferable even when a/b are unknown.
    got_and, _ = evaluate_expr("a and b", a=[a, True], b=[b, True])
    got_or, _ = evaluate_expr("a or b", a=[a, True], b=[b, True])
    assert got_and[0] is and_ if and_ is None else got_and[0] == and_
    assert got_or[0] is or_ if or_ is None else got_or[0] == or_


def test_not_keeps_unknown() -> None:
    values, missing = evaluate_expr("not a", a=[True, False, None])
    assert values == [False, True, None]
    assert missing == [[], [], ["a"]]


def test_missing_names_only_what_the_result_depends_on() -> None:
    values, missing = evaluate_expr(
        "a and b > 1 or c",
        a=[None, False, None, True],
        b=[5.0, None, None, None],
        c=[None, None, True, False],
    )
    assert values == [None, None, True, None]
    assert missing == [["a", "c"], ["c"], [], ["b"]]


def test_arithmetic_and_comparison_propagate_unknown() -> None:
    values, missing = evaluate_expr("x * 2 + y >= 10", x=[1.0, None, 5.0], y=[8.0, 1.0, None])
    assert values == [True, None, None]
    assert missing == [[], ["x"], ["y"]]


def test_if_with_unknown_condition() -> None:
    values, missing = evaluate_expr(
        "if c then x else y",
        c=[None, None, True, False, None],
        x=[1.0, 2.0, None, 1.0, None],
        y=[1.0, 3.0, 7.0, None, 1.0],
    )
    # Row 0: both branches agree, so the unknown condition does not matter.
    assert values == [1.0, None, None, None, None]
    assert missing == [[], ["c"], ["x"], ["y"], ["c", "x"]]


def test_in_lists_for_numbers_text_and_negation() -> None:
    values, _ = evaluate_expr("n in [1, 2.5, -3]", n=[1.0, 2.5, -3.0, 4.0, None])
    assert values == [True, True, True, False, None]
    values, _ = evaluate_expr('s not in ["small", "micro"]', s=["small", "large", "micro", None])
    assert values == [False, True, False, None]


def test_text_comparison_between_columns_and_literals() -> None:
    values, _ = evaluate_expr('s == t or s == "large"', s=["a", "large", "b"], t=["a", "b", "c"])
    assert values == [True, True, False]
    values, _ = evaluate_expr('if flag then s else "x"', s=["a", "b"], flag=[True, False])
    assert values == ["a", "x"]


def test_min_max_floor_ceil_abs() -> None:
    values, missing = evaluate_expr(
        "min(a, 10) + max(a, 0) + floor(a / 4) + ceil(a / 4) + abs(-a)", a=[2.0, 12.0, None]
    )
    assert values == [2 + 2 + 0 + 1 + 2, 10 + 12 + 3 + 3 + 12, None]
    assert missing[2] == ["a"]


def test_date_comparison_with_unknown() -> None:
    values, missing = evaluate_expr(
        'd < date("2020-02-10")', d=[dt.date(2020, 2, 9), dt.date(2020, 2, 10), None]
    )
    assert values == [True, False, None]
    assert missing == [[], [], ["d"]]


def test_division_by_zero_is_unknown_and_named() -> None:
    values, missing = evaluate_expr("a / b > 0.5", a=[1.0, 1.0, 1.0, None], b=[1.0, 0.0, None, 0.0])
    assert values == [True, None, None, None]
    assert missing[1] == ["division by zero in a / b"]
    assert missing[2] == ["b"]
    assert missing[3] == ["a", "division by zero in a / b"]


def test_division_guarded_by_if_never_reports_zero() -> None:
    values, missing = evaluate_expr("if b > 0 then a / b else 0", a=[3.0, 3.0], b=[2.0, 0.0])
    assert values == [1.5, 0.0]
    assert missing == [[], []]


def test_exact_decimal_boundaries_hold() -> None:
    # Division is correctly rounded, so 11/200 is the same double as the literal 0.055.
    values, _ = evaluate_expr("a / b <= 0.055", a=[11.0, 12.0], b=[200.0, 200.0])
    assert values == [True, False]
    values, _ = evaluate_expr("(b - a) / a > 0.1", a=[100.0, 100.0], b=[110.0, 110.01])
    assert values == [False, True]


def test_constants_broadcast() -> None:
    values, missing = evaluate_expr("true or a", a=[None, False])
    assert values == [True, True]
    assert missing == [[], []]


def _ratio() -> Parameter:
    return Parameter(
        name="ratio",
        description="",
        unit="ratio",
        split_by="size",
        periods=(
            Period(dt.date(2020, 1, 1), 0.5, None, "s"),
            Period(dt.date(2020, 6, 1), None, {"large": 0.3, "default": 0.6}, "s"),
        ),
    )


def test_split_parameter_reads_its_fact() -> None:
    values, missing = evaluate_expr(
        "param.ratio * x", {"ratio": _ratio()}, size=["large", "small", None], x=[10.0, 10.0, 10.0]
    )
    assert values == [3.0, 6.0, None]
    assert missing == [[], [], ["size"]]
