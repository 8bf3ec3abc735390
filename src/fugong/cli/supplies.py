"""``fugong supplies …``: emergency-supplies commands (the root app registers ``app``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fugong.supplies.allocation import ProblemError, run_file

app = typer.Typer(help="应急物资 / emergency supplies")


@app.callback()
def _group() -> None:
    """应急物资 / emergency supplies."""
    # A callback keeps ``allocate`` a named sub-command even while it is the only one.


@app.command()
def allocate(
    problem: Annotated[Path, typer.Argument(help="problem JSON: offers and requests")],
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write the plan JSON")],
) -> None:
    """Run an allocation round on PROBLEM and write the plan to OUTPUT.

    Exit status 2, with a message naming the record and the field, when the problem is
    malformed; nothing is written then.
    """
    try:
        plan = run_file(problem, output)
    except ProblemError as exc:
        typer.echo(f"error: {problem}: {exc}", err=True)
        raise typer.Exit(2) from exc
    except OSError as exc:
        typer.echo(f"error: {exc.filename or problem}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from exc
    served = sum(t.allocated for t in plan.tiers)
    asked = sum(t.requested for t in plan.tiers)
    typer.echo(
        f"{output}: {len(plan.lines)} lines, {served}/{asked} units allocated, cost {plan.cost:.2f}"
    )
