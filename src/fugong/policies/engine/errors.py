"""The policy engine's errors, one tree so callers can catch the family or a branch.

::

    PolicyError (ValueError)
    ├── ExpressionError      an expression does not tokenize, parse or type-check (line, column)
    ├── PackError            a pack on disk is broken (file, line, reason)
    ├── InputError           an enterprise table is unusable (row, column, reason)
    └── EvaluationError      evaluation cannot proceed (e.g. a parameter has no value at that date)

Every message is meant to be shown to the person who can fix the problem as is.
"""

from __future__ import annotations


class PolicyError(ValueError):
    """Base of every error the policy engine raises on purpose."""


class ExpressionError(PolicyError):
    """A bad expression; ``line`` and ``column`` are 1-based, within the expression text."""

    def __init__(self, message: str, line: int, column: int) -> None:
        self.reason = message
        self.line = line
        self.column = column
        super().__init__(f"{message} (at line {line}, column {column})")


class PackError(PolicyError):
    """A broken pack. ``path`` is the file and ``line`` its 1-based line (0 when unknown)."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {reason}")


class InputError(PolicyError):
    """An unusable enterprise table; ``row`` is the 1-based data row (0: the header or the file)."""

    def __init__(
        self, reason: str, *, row: int = 0, column: str | None = None, line: int = 0
    ) -> None:
        self.reason = reason
        self.row = row
        self.column = column
        self.line = line
        parts = []
        if row:
            parts.append(f"row {row}" + (f" (line {line})" if line else ""))
        if column is not None:
            parts.append(f"column {column!r}")
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {reason}" if prefix else reason)


class EvaluationError(PolicyError):
    """Evaluation cannot proceed as asked (for example no parameter value at the chosen date)."""
