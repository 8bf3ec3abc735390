"""USCC validation (GB 32100-2015): properties over generated codes, and the published example."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fugong.core import uscc

bodies = st.text(alphabet=uscc.CHARSET, min_size=17, max_size=17)


def test_known_real_code_is_valid() -> None:
    # A code in the form published by the national enterprise credit system.
    assert uscc.is_valid("91350100M000100Y43")
    assert uscc.check_character("91350100M000100Y4") == "3"


@given(bodies)
def test_completed_body_is_valid(body: str) -> None:
    code = uscc.make(body)
    assert len(code) == 18
    assert uscc.validate(code) == code


@given(bodies, st.sampled_from(uscc.CHARSET))
def test_any_other_check_character_is_refused_with_expected_one_named(body: str, ch: str) -> None:
    good = uscc.make(body)
    if ch == good[17]:
        return
    with pytest.raises(uscc.USCCError) as e:
        uscc.validate(body + ch)
    assert "校验码错误" in str(e.value)
    assert f"应为“{good[17]}”" in str(e.value)


@given(bodies, st.integers(0, 16), st.sampled_from(uscc.CHARSET))
def test_single_substitution_in_body_is_detected(body: str, pos: int, ch: str) -> None:
    # The weights are all non-zero and 31 is prime: any single change alters the check sum.
    good = uscc.make(body)
    if good[pos] == ch:
        return
    bad = good[:pos] + ch + good[pos + 1 :]
    assert not uscc.is_valid(bad)


@given(bodies)
def test_lower_case_and_blanks_are_normalised(body: str) -> None:
    code = uscc.make(body)
    assert uscc.validate(f"  {code.lower()} ") == code


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("9144011234567890", "应为18位"),
        ("91440112MA5ABCDEFGH", "应为18位"),
        ("91440112MA5CXXXXXI", "第18位字符“I”不合法"),
        ("91440112OA5CXXXXX1", "第9位字符“O”不合法"),
        ("", "应为18位"),
    ],
)
def test_malformed_codes_say_what_is_wrong(code: str, fragment: str) -> None:
    with pytest.raises(uscc.USCCError, match=fragment):
        uscc.validate(code)
