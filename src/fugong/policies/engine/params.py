"""Dated parameters (openfisca-style): each value is in force from its date until the next one.

A parameter may be split by an enum fact (for example the UI-refund ratio by enterprise ``size``):
then a period's value is either one number for everybody or a mapping from the fact's values to
numbers, where ``default`` covers the values not listed. Adding next year's value is adding one
period to the YAML, never a code change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from fugong.policies.engine.errors import EvaluationError


@dataclass(frozen=True)
class Period:
    """A value in force from ``start`` (inclusive) until the next period's start."""

    start: dt.date
    value: float | None
    by: Mapping[str, float] | None
    source: str
    stand_in: bool = False
    note: str = ""
    line: int = 0

    def for_category(self, category: str) -> float:
        """The value for one category of the split fact (``value`` when not split)."""
        if self.value is not None:
            return self.value
        assert self.by is not None
        return self.by[category] if category in self.by else self.by["default"]


@dataclass(frozen=True)
class Parameter:
    """A named number that changes over time; ``periods`` are sorted by start, distinct."""

    name: str
    description: str
    unit: str
    periods: tuple[Period, ...]
    split_by: str | None = None
    path: str = ""

    def at(self, when: dt.date) -> Period:
        """The period in force on ``when``; EvaluationError before the first one."""
        found: Period | None = None
        for period in self.periods:
            if period.start <= when:
                found = period
            else:
                break
        if found is None:
            first = self.periods[0].start.isoformat()
            raise EvaluationError(
                f"parameter {self.name!r} has no value in force on {when.isoformat()} "
                f"(its first value applies from {first})"
            )
        return found
