"""Pure allocation engine for emergency-supplies rounds: dataclasses in, plan out.

No framework imports (import-linter enforces it). :func:`allocate` computes a plan,
:func:`parse_problem` / :func:`plan_to_dict` are the file contract, :func:`run_file` runs it on
files. See :mod:`.engine` for the method and why it is correct.
"""

from fugong.supplies.allocation.engine import allocate
from fugong.supplies.allocation.fileio import run_file
from fugong.supplies.allocation.model import (
    MAX_PRICE,
    MAX_UNITS,
    Offer,
    Plan,
    PlanLine,
    Problem,
    ProblemError,
    Request,
    RequestResult,
    TierResult,
    parse_problem,
    plan_to_dict,
    validate_problem,
)

__all__ = [
    "MAX_PRICE",
    "MAX_UNITS",
    "Offer",
    "Plan",
    "PlanLine",
    "Problem",
    "ProblemError",
    "Request",
    "RequestResult",
    "TierResult",
    "allocate",
    "parse_problem",
    "plan_to_dict",
    "run_file",
    "validate_problem",
]
