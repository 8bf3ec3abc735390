"""The pure screening rules: human range, threshold, moving baseline, drift, silence, the
workflow's transitions."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fugong.screening import rules
from fugong.screening.rules import Baseline, SiteRules, judge

temps = st.floats(min_value=-60, max_value=150, allow_nan=False)


@given(temps)
def test_outside_the_human_range_is_a_fault_never_an_alarm(t: float) -> None:
    v = judge(t, SiteRules(baseline=True), Baseline(50, [36.0] * 50), device_alarm=True)
    human = rules.HUMAN_MIN_C <= t <= rules.HUMAN_MAX_C
    assert (v.kind == rules.KIND_FAULT) == (not human)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_is_a_fault(value: float) -> None:
    assert rules.classify(value) == rules.KIND_FAULT


def test_fixed_threshold_is_inclusive() -> None:
    r = SiteRules()
    assert judge(37.2, r).kind == rules.KIND_NORMAL
    v = judge(37.3, r)
    assert (v.kind, v.rule, v.limit_c) == (rules.KIND_ALARM, rules.RULE_THRESHOLD, 37.3)
    assert judge(37.0, SiteRules(threshold_c=37.0)).kind == rules.KIND_ALARM


@given(st.lists(st.floats(min_value=33, max_value=37, allow_nan=False), min_size=10, max_size=60),
       st.floats(min_value=30, max_value=43, allow_nan=False))  # fmt: skip
def test_baseline_alarm_iff_at_or_above_median_plus_offset(history: list[float], t: float) -> None:
    r = SiteRules(threshold_c=40.0, baseline=True, baseline_window=50, baseline_offset_c=1.0)
    b = Baseline(50, history)
    median = statistics.median(history[-50:])
    v = judge(t, r, b)
    expected = t >= 40.0 or t >= median + 1.0
    assert (v.kind == rules.KIND_ALARM) == expected
    assert b.values[-1] == t  # the reading joins the window after being judged


def test_cold_morning_fever_caught_by_baseline_only() -> None:
    cold = Baseline(50, [35.2] * 30)  # skin temperature on a cold morning
    on = SiteRules(baseline=True, baseline_offset_c=1.0)
    v = judge(36.4, on, cold)
    assert v.kind == rules.KIND_ALARM and v.rule == rules.RULE_BASELINE and v.limit_c == 36.2
    assert judge(36.4, SiteRules(), Baseline(50, [35.2] * 30)).kind == rules.KIND_NORMAL


def test_baseline_needs_warm_up_and_faults_stay_out() -> None:
    b = Baseline(50, [35.0] * (rules.BASELINE_MIN_READINGS - 1))
    assert judge(36.5, SiteRules(baseline=True), b).kind == rules.KIND_NORMAL
    before = list(b.values)
    judge(80.0, SiteRules(baseline=True), b)
    assert list(b.values) == before


def test_device_alarm_flag_raises_below_threshold() -> None:
    v = judge(36.9, SiteRules(), None, device_alarm=True)
    assert v.kind == rules.KIND_ALARM and v.rule == rules.RULE_DEVICE


def test_drift_against_the_other_devices() -> None:
    means = {1: (36.3, 100), 2: (36.4, 100), 3: (37.1, 100), 4: (39.0, 5)}
    out = rules.drifting_devices(means, drift_c=0.5)
    assert set(out) == {3}  # device 4 has too few readings to judge or to be judged against
    assert out[3] == pytest.approx(0.75)
    assert rules.drifting_devices({1: (36.0, 50)}, 0.5) == {}


def _local(h: int, m: int = 0) -> datetime:
    return datetime(2020, 3, 2, h, m, tzinfo=rules.SITE_TZ).astimezone(UTC)


def test_silence_only_counts_while_open() -> None:
    opens, closes = time(7), time(19)
    seen = _local(9)
    assert not rules.is_silent(seen, _local(9, 20), opens, closes, 30)
    assert rules.is_silent(seen, _local(9, 31), opens, closes, 30)
    assert not rules.is_silent(seen, _local(20), opens, closes, 30)  # closed
    # the first half hour after opening does not alarm, even with no reading since yesterday
    assert not rules.is_silent(_local(18) - timedelta(days=1), _local(7, 10), opens, closes, 30)
    assert rules.is_silent(None, _local(7, 40), opens, closes, 30)


def test_night_shift_hours_cross_midnight() -> None:
    assert rules.is_open(_local(23), time(22), time(6))
    assert rules.is_open(_local(2), time(22), time(6))
    assert not rules.is_open(_local(12), time(22), time(6))
    assert rules.is_open(_local(12), time(0), time(0))


def test_workflow_transitions() -> None:
    assert rules.can_move("open", "cleared") and rules.can_move("open", "confirmed")
    assert not rules.can_move("open", "closed")  # never closed without a re-check
    assert rules.can_move("confirmed", "observation") and rules.can_move("referred", "closed")
    assert not rules.can_move("closed", "open")
    assert rules.recheck_outcome(37.3, 37.3) == "confirmed"
    assert rules.recheck_outcome(36.9, 37.3) == "cleared"


def test_time_window() -> None:
    now = datetime(2020, 3, 2, tzinfo=UTC)
    assert rules.time_problem(now - timedelta(days=3), now) is None
    assert rules.time_problem(now + timedelta(minutes=4), now) is None
    assert rules.time_problem(now + timedelta(minutes=6), now) is not None
    assert rules.time_problem(now - timedelta(days=31), now) is not None


@given(st.text(max_size=45))
def test_codes_fit_a_topic_level(code: str) -> None:
    if rules.code_problem(code) is None:
        assert "/" not in code and "+" not in code and "#" not in code and code


def test_false_alarm_rate() -> None:
    assert rules.false_alarm_rate(0, 0) is None
    assert rules.false_alarm_rate(4, 3) == 0.75
