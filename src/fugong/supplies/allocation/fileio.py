"""Run the engine on a problem file and write the plan file (the CLI's contract).

A round can then be reproduced and checked outside the database: ``run_file`` reads JSON,
validates it (:func:`parse_problem`), allocates, and writes the plan as UTF-8 JSON. Nothing is
written unless the whole run succeeds: the plan goes to a temporary file in the target folder
and is moved into place in one step, so a reader never sees half a plan.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from fugong.supplies.allocation.engine import allocate
from fugong.supplies.allocation.model import Plan, ProblemError, parse_problem, plan_to_dict

__all__ = ["read_problem", "run_file", "write_plan"]


def read_problem(problem_path: str | os.PathLike[str]) -> object:
    """Decode the problem file; bad UTF-8 or bad JSON becomes a :class:`ProblemError`."""
    data = Path(problem_path).read_bytes()
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ProblemError(f"problem: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise ProblemError(
            f"problem: bad JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc


def write_plan(plan: Plan, plan_path: str | os.PathLike[str]) -> None:
    """Write the plan as UTF-8 JSON (Chinese names stay readable), atomically."""
    target = Path(plan_path)
    text = json.dumps(plan_to_dict(plan), ensure_ascii=False, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_file(problem_path: str | os.PathLike[str], plan_path: str | os.PathLike[str]) -> Plan:
    """Read, validate and allocate ``problem_path``; write the plan to ``plan_path``.

    Raises :class:`ProblemError` for a malformed problem (nothing is written) and ``OSError``
    when a file cannot be read or written.
    """
    problem = parse_problem(read_problem(problem_path))
    plan = allocate(problem)
    write_plan(plan, plan_path)
    return plan
