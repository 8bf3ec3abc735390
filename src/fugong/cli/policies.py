"""``fugong policies``: evaluate relief measures for a table of enterprises, test a pack.

Registered by the root CLI as ``root.add_typer(policies.app, name="policies")``. Usage errors and
bad input go to stderr with exit status 2 and write nothing; a failing pack test exits 1.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TextIO

import typer

from fugong.policies.engine import (
    PolicyError,
    evaluate,
    explain_rows,
    load_pack,
    read_enterprises_csv,
    run_scenarios,
)

app = typer.Typer(help="惠企政策 / relief measures", no_args_is_help=True)

RESULT_HEADER = ("uscc", "measure", "status", "amount")
EXPLAIN_SLICE = 5_000


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _parse_at(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        if len(text) != 10:
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _fail(f"--at {text!r} is not a date YYYY-MM-DD") from None


def _write_temp(target: Path, write: Callable[[TextIO], None]) -> Path:
    """Write beside ``target`` under a temporary name, renamed only once everything succeeded."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp makes the file private (0600); results are ordinary files, so honour the umask.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            write(handle)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


@app.command("evaluate")
def evaluate_command(
    enterprises: Annotated[
        Path, typer.Argument(help="UTF-8 CSV, one row per enterprise", metavar="ENTERPRISES.csv")
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="results CSV to write", metavar="RESULTS.csv")
    ],
    pack: Annotated[str, typer.Option("--pack", help="pack name or directory")] = "huangpu-2020",
    explain: Annotated[
        Path | None, typer.Option("--explain", help="also write explanations (JSON lines)")
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="evaluation date YYYY-MM-DD (default: the pack's)")
    ] = None,
) -> None:
    """Write uscc,measure,status,amount for every enterprise and measure of the pack.

    Empty cells are unknown; bad input is named by row and column (exit 2, nothing written).
    """
    when = _parse_at(at)
    for target in (output, explain):
        if target is not None and not target.parent.is_dir():
            raise _fail(f"cannot write {target}: no such directory")
    try:
        loaded = load_pack(pack)
        table = read_enterprises_csv(enterprises, loaded)
        results = evaluate(loaded, table, when)
    except PolicyError as exc:
        raise _fail(str(exc)) from None

    def write_results(handle: TextIO) -> None:
        # No field ever needs CSV quoting (USCC characters, measure ids [a-z0-9-], statuses,
        # digits), so lines are joined directly: several times faster than csv.writer here.
        handle.write(",".join(RESULT_HEADER) + "\n")
        handle.writelines(f"{u},{m},{st},{a}\n" for u, m, st, a in results.rows())

    def write_explanations(handle: TextIO) -> None:
        # In slices, so a large table never holds all its explanation dicts at once.
        for start in range(0, table.n, EXPLAIN_SLICE):
            rows = range(start, min(table.n, start + EXPLAIN_SLICE))
            for item in explain_rows(loaded, table, results.at, rows):
                handle.write(json.dumps(item, ensure_ascii=False))
                handle.write("\n")

    written: list[tuple[Path, Path]] = []
    try:
        written.append((_write_temp(output, write_results), output))
        if explain is not None:
            written.append((_write_temp(explain, write_explanations), explain))
    except OSError as exc:
        for tmp, _ in written:
            tmp.unlink(missing_ok=True)
        raise _fail(f"cannot write results: {exc}") from None
    for tmp, target in written:
        os.replace(tmp, target)

    typer.echo(
        f"{table.n} enterprises x {len(loaded.measures)} measures -> {output} "
        f"(pack {loaded.id}@{loaded.version}, at {results.at.isoformat()})"
    )
    for mid, t in results.totals().items():
        flag = "  [stand-in amount]" if loaded.measure(mid).stand_in else ""
        typer.echo(
            f"  {mid:<17} eligible {t['eligible']:>7}  ineligible {t['ineligible']:>7}  "
            f"unknown {t['unknown']:>7}  total {t['amount']:>16}{flag}"
        )


@app.command("test")
def test_command(
    pack: Annotated[str, typer.Argument(help="pack name or directory")],
) -> None:
    """Run the pack's scenario tests; exit 1 listing each failure."""
    try:
        loaded = load_pack(pack)
        report = run_scenarios(loaded)
    except PolicyError as exc:
        raise _fail(str(exc)) from None
    for failure in report.failures:
        typer.echo(f"FAIL {failure}", err=True)
    summary = (
        f"{loaded.id}@{loaded.version}: {report.scenarios} scenarios, {report.checks} checks, "
        f"{len(report.failures)} failed"
    )
    if report.failures:
        typer.echo(summary, err=True)
        raise typer.Exit(1)
    typer.echo(summary)
