"""The unified social credit code (统一社会信用代码, GB 32100-2015).

18 characters from ``CHARSET``; the last is a check character over the first 17 (weights
below, modulo 31). Characters 3-8 are the registering authority's administrative division code
(Huangpu district, Guangzhou: 440112). Pure: no framework imports, so engines can use it.
"""

from __future__ import annotations

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_VALUE = {c: i for i, c in enumerate(CHARSET)}
HUANGPU_DIVISION = "440112"


class USCCError(ValueError):
    """A string that is not a valid USCC; the message says why, in Chinese and English."""


def check_character(body: str) -> str:
    """Return the check character for the first 17 characters of a USCC."""
    if len(body) != 17:
        raise USCCError(f"需要17位本体字符 (need 17 characters, got {len(body)})")
    total = 0
    for pos, (ch, weight) in enumerate(zip(body, WEIGHTS, strict=True), start=1):
        if ch not in _VALUE:
            raise USCCError(f"第{pos}位字符“{ch}”不合法 (character {pos} {ch!r} is not allowed)")
        total += _VALUE[ch] * weight
    return CHARSET[(31 - total % 31) % 31]


def normalise(code: str) -> str:
    """Strip surrounding blanks and upper-case: what a person typing a code means."""
    return code.strip().upper()


def validate(code: str) -> str:
    """Return the normalised code, or raise USCCError saying exactly what is wrong."""
    c = normalise(code)
    if len(c) != 18:
        raise USCCError(
            f"统一社会信用代码应为18位，实际{len(c)}位 (a USCC has 18 characters, got {len(c)})"
        )
    for pos, ch in enumerate(c, start=1):
        if ch not in _VALUE:
            raise USCCError(
                f"第{pos}位字符“{ch}”不合法，只允许数字和除I、O、Z、S、V外的大写字母 "
                f"(character {pos} {ch!r} is not allowed)"
            )
    expected = check_character(c[:17])
    if c[17] != expected:
        raise USCCError(
            f"校验码错误：第18位应为“{expected}”，实际为“{c[17]}” "
            f"(wrong check character: expected {expected!r}, got {c[17]!r})"
        )
    return c


def is_valid(code: str) -> bool:
    try:
        validate(code)
    except USCCError:
        return False
    return True


def make(body: str) -> str:
    """Complete a 17-character body with its check character (used by the demo generator)."""
    b = normalise(body)
    return b + check_character(b)
