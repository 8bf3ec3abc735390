"""Due-time rules, the status machine and answer validation, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fugong.desk import rules

T0 = datetime(2020, 2, 10, 9, 0, tzinfo=UTC)


def test_default_due_times_follow_urgency() -> None:
    assert rules.due_times("urgent", T0) == (T0 + timedelta(hours=4), T0 + timedelta(hours=24))
    ack, res = rules.due_times("normal", T0)
    assert ack == T0 + timedelta(hours=24) and res == T0 + timedelta(days=7)


def test_due_rules_are_configurable_and_checked() -> None:
    custom = rules.parse_due_rules("urgent=2/12")
    assert rules.due_times("urgent", T0, custom) == (
        T0 + timedelta(hours=2),
        T0 + timedelta(hours=12),
    )
    assert custom["normal"] == rules.DEFAULT_DUE["normal"]
    for bad in ("urgent=12/2", "soon=1/2", "urgent=abc", "urgent=0/5"):
        with pytest.raises(ValueError, match="期限规则"):
            rules.parse_due_rules(bad)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("new", "acknowledged"),
        ("new", "cannot_help"),
        ("acknowledged", "in_progress"),
        ("acknowledged", "resolved"),
        ("in_progress", "resolved"),
        ("in_progress", "cannot_help"),
    ],
)
def test_legal_transitions(current: str, target: str) -> None:
    rules.check_transition(current, target, "原因")


@pytest.mark.parametrize(
    ("current", "target", "message"),
    [
        ("new", "resolved", "只能变为：已受理、无法协助"),
        ("in_progress", "acknowledged", "只能变为：已解决、无法协助"),
        ("resolved", "in_progress", "需求已已解决，不能再变更"),
        ("new", "nonsense", "未知状态"),
    ],
)
def test_illegal_transitions_say_what_is_allowed(current: str, target: str, message: str) -> None:
    with pytest.raises(rules.TransitionError, match=message):
        rules.check_transition(current, target, None)


def test_cannot_help_needs_a_reason() -> None:
    with pytest.raises(rules.TransitionError, match="必须填写原因"):
        rules.check_transition("acknowledged", "cannot_help", "  ")


@given(st.sampled_from(list(rules.URGENCIES)), st.integers(0, 400))
def test_overdue_flags(urgency: str, hours: int) -> None:
    ack_due, res_due = rules.due_times(urgency, T0)
    now = T0 + timedelta(hours=hours)
    flag = rules.overdue("new", ack_due, res_due, None, now)
    if now > ack_due:
        assert flag == "acknowledge"
    else:
        assert flag is None
    assert rules.overdue("resolved", ack_due, res_due, None, now) is None
    acked = rules.overdue("acknowledged", ack_due, res_due, T0, now)
    assert acked == ("resolve" if now > res_due else None)


def test_answers_are_cleaned_and_required_checked_on_submit_only() -> None:
    qs = rules.default_questionnaire()
    raw = {
        "resumption_status": "partial",
        "staff_back_pct": "60",
        "help_needed": ["supplies"],
        "help_urgency": "urgent",
        "mask_days": "",
        "resumption_date": "2020-02-20",
    }
    answers, errors = rules.validate_answers(qs, raw, final=True)
    assert errors == {}
    assert answers == {
        "resumption_status": "partial",
        "staff_back_pct": 60,
        "help_needed": ["supplies"],
        "help_urgency": "urgent",
        "resumption_date": "2020-02-20",
    }
    _, errors = rules.validate_answers(qs, {}, final=False)
    assert errors == {}
    _, errors = rules.validate_answers(qs, {}, final=True)
    assert errors == {"resumption_status": "必填"}
    _, errors = rules.validate_answers(
        qs,
        {
            "resumption_status": "full",
            "staff_back_pct": "150",
            "help_needed": ["x"],
            "resumption_date": "20/2",
        },
        final=True,
    )
    assert set(errors) == {"staff_back_pct", "help_needed", "resumption_date"}
    _, errors = rules.validate_answers(
        qs, {"resumption_status": "full", "help_needed": ["policy"]}, final=True
    )
    assert "help_urgency" in errors


def test_questionnaire_checks() -> None:
    assert rules.check_questionnaire(rules.default_questionnaire()) == []
    problems = rules.check_questionnaire(
        [{"key": "a", "label": "x", "type": "single"}, {"key": "a", "label": "", "type": "bogus"}]
    )
    assert any("缺少选项" in p for p in problems) and any("重复" in p for p in problems)
    assert rules.check_questionnaire([]) == ["问卷至少需要一个问题"]
