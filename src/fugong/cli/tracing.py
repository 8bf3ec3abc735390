"""``fugong tracing``: synthetic data, ingest, build, the four queries, retention.

Answers go to stdout (JSON by default: a list of objects, times ISO-8601 UTC); logs and errors go
to stderr. A missing or malformed data directory exits with status 2 and a one-line message; an
unknown uid answers an empty list. Results are candidates for an epidemiologist to check, each with
its evidence (grids, times, overlaps).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
from datetime import date, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from fugong.tracing.common import (
    DEFAULT_DAYS,
    DEFAULT_GRID_M,
    DEFAULT_MAX_GAP_S,
    DEFAULT_MIN_OVERLAP_S,
    DEFAULT_MIN_STAY_S,
    CompanionQuery,
    Profile,
    TracingDataError,
    parse_at,
)

app = typer.Typer(help="轨迹追踪 / tracing", no_args_is_help=True)
log = logging.getLogger("fugong.tracing")


class Fmt(StrEnum):
    json = "json"
    csv = "csv"
    table = "table"


class EngineName(StrEnum):
    duckdb = "duckdb"
    spark = "spark"
    reference = "reference"


DataDir = Annotated[
    Path, typer.Argument(help="数据目录 / data directory (cells.parquet + records/)")
]
At = Annotated[str, typer.Option("--at", help="查询截止时间 ISO-8601 (UTC if no zone)")]
Days = Annotated[int, typer.Option("--days", min=1, help="回溯天数 / days before --at")]
GridM = Annotated[float, typer.Option("--grid-m", help="网格边长（米）/ grid size in metres")]
MaxGap = Annotated[
    int, typer.Option("--max-gap", min=1, max=86400, help="一条记录最长代表的秒数 / max_gap (s)")
]
MinOverlap = Annotated[
    int, typer.Option("--min-overlap", min=1, help="最短连续同格时间（秒）/ min_overlap (s)")
]
EngineOpt = Annotated[EngineName, typer.Option("--engine", help="duckdb (default) | spark")]
FormatOpt = Annotated[Fmt, typer.Option("--format", help="json | csv | table")]
Master = Annotated[
    str | None, typer.Option("--spark-master", help="Spark master URL (default local[2])")
]


def _setup_logging() -> None:
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


@app.callback()
def _main() -> None:
    """轨迹追踪：时空伴随者、次密接、行程卡 (candidates for the CDC, never determinations)."""
    _setup_logging()


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"错误 / error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def _engine(name: EngineName, master: str | None) -> Any:
    from fugong.tracing.engines import get_engine

    if name is EngineName.spark:
        return get_engine("spark", master=master)
    return get_engine(name.value)


def _cell(v: Any) -> str:
    if isinstance(v, list):
        return ";".join(str(x) for x in v)
    return str(v)


def emit(rows: list[dict[str, Any]], fmt: Fmt, columns: list[str]) -> None:
    """Write result rows to stdout in the asked format (lists in csv/table are ``;``-joined)."""
    if fmt is Fmt.json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    cols = columns + sorted({k for r in rows for k in r} - set(columns))
    if fmt is Fmt.csv:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow([_cell(r.get(c, "")) for c in cols])
        typer.echo(buf.getvalue(), nl=False)
        return
    cells = [[_cell(r.get(c, "")) for c in cols] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    typer.echo("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
    for row in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    typer.echo(f"({len(rows)} rows)")


Purpose = Annotated[
    str | None,
    typer.Option("--purpose", help="查询事由（病例编号）/ purpose, e.g. the case number: audited"),
]


def _audit(data_dir: Path, command: str, subject: str, purpose: str | None, rows: int) -> None:
    """Append who asked what and why to ``DATA_DIR/audit/queries.jsonl`` (uids are pseudonyms).

    The web keeps its own audit in the database; this is the shell's trail. A read-only data
    directory must not block an urgent query, so a failed write is only warned about.
    """
    import getpass
    from datetime import UTC, datetime

    entry = {
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "user": getpass.getuser(),
        "command": command,
        "subject": subject,
        "purpose": purpose,
        "rows": rows,
    }
    try:
        (data_dir / "audit").mkdir(exist_ok=True)
        with (data_dir / "audit" / "queries.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
    except OSError as exc:
        log.warning("could not write the audit trail: %s", exc.strerror)
    if not purpose:
        log.warning("no --purpose given: the audit trail records this query without a case number")


def _run(fn: Any) -> Any:
    try:
        return fn()
    except TracingDataError as exc:
        raise fail(str(exc)) from exc
    except ValueError as exc:
        raise fail(str(exc)) from exc


COMPANION_COLS = ["uid", "via", "longest_overlap_s", "total_overlap_s", "first_contact", "grids"]


MinTotalStay = Annotated[
    int | None,
    typer.Option(
        "--min-total-stay",
        min=1,
        help="可选：病例或伴随者在接触网格累计停留超过此秒数（108000 = 30 小时）/ optional",
    ),
]


def _companion_query(
    case: str,
    at: str,
    days: int,
    grid_m: float,
    min_overlap: int,
    max_gap: int,
    min_total_stay: int | None,
) -> CompanionQuery:
    return CompanionQuery(
        case=case,
        at=parse_at(at),
        days=days,
        min_overlap_s=min_overlap,
        profile=Profile(grid_m=grid_m, max_gap_s=max_gap),
        min_total_stay_s=min_total_stay,
    )


@app.command()
def companions(
    data_dir: DataDir,
    case: Annotated[str, typer.Option("--case", help="病例的 uid / the case's uid")],
    at: At,
    days: Days = DEFAULT_DAYS,
    grid_m: GridM = DEFAULT_GRID_M,
    min_overlap: MinOverlap = DEFAULT_MIN_OVERLAP_S,
    max_gap: MaxGap = DEFAULT_MAX_GAP_S,
    min_total_stay: MinTotalStay = None,
    engine: EngineOpt = EngineName.duckdb,
    fmt: FormatOpt = Fmt.json,
    spark_master: Master = None,
    purpose: Purpose = None,
) -> None:
    """时空伴随者：与病例同一网格连续不少于 min_overlap 秒的号码 / spatio-temporal companions."""

    def go() -> list[Any]:
        q = _companion_query(case, at, days, grid_m, min_overlap, max_gap, min_total_stay)
        out: list[Any] = _engine(engine, spark_master).companions(data_dir, q)
        return out

    rows = _run(go)
    _audit(data_dir, "companions", case, purpose, len(rows))
    emit([c.to_json() for c in rows], fmt, COMPANION_COLS)


@app.command("second-order")
def second_order(
    data_dir: DataDir,
    case: Annotated[str, typer.Option("--case", help="病例的 uid / the case's uid")],
    at: At,
    days: Days = DEFAULT_DAYS,
    grid_m: GridM = DEFAULT_GRID_M,
    min_overlap: MinOverlap = DEFAULT_MIN_OVERLAP_S,
    max_gap: MaxGap = DEFAULT_MAX_GAP_S,
    min_total_stay: MinTotalStay = None,
    engine: EngineOpt = EngineName.duckdb,
    fmt: FormatOpt = Fmt.json,
    spark_master: Master = None,
    purpose: Purpose = None,
) -> None:
    """次密接候选：伴随者首次接触之后的伴随者 / companions of the companions after first contact."""

    def go() -> list[Any]:
        q = _companion_query(case, at, days, grid_m, min_overlap, max_gap, min_total_stay)
        out: list[Any] = _engine(engine, spark_master).second_order(data_dir, q)
        return out

    rows = _run(go)
    _audit(data_dir, "second-order", case, purpose, len(rows))
    emit([c.to_json() for c in rows], fmt, COMPANION_COLS)


@app.command()
def itinerary(
    data_dir: DataDir,
    uid: Annotated[str, typer.Option("--uid", help="号码的 uid / the subscriber's uid")],
    at: At,
    days: Days = DEFAULT_DAYS,
    min_stay: Annotated[
        int, typer.Option("--min-stay", min=1, help="最短停留（秒）/ min stay per city (s)")
    ] = DEFAULT_MIN_STAY_S,
    max_gap: MaxGap = DEFAULT_MAX_GAP_S,
    engine: EngineOpt = EngineName.duckdb,
    fmt: FormatOpt = Fmt.json,
    spark_master: Master = None,
    purpose: Purpose = None,
) -> None:
    """行程卡：停留不少于 min_stay 的城市 / cities where the phone stayed at least --min-stay."""

    def go() -> list[Any]:
        out: list[Any] = _engine(engine, spark_master).itinerary(
            data_dir, uid, parse_at(at), days, min_stay, Profile(max_gap_s=max_gap)
        )
        return out

    rows = _run(go)
    _audit(data_dir, "itinerary", uid, purpose, len(rows))
    emit([c.to_json() for c in rows], fmt, ["city", "first_seen", "last_seen", "total_s"])


@app.command()
def trajectory(
    data_dir: DataDir,
    uid: Annotated[str, typer.Option("--uid", help="号码的 uid / the subscriber's uid")],
    at: At,
    days: Days = DEFAULT_DAYS,
    grid_m: GridM = DEFAULT_GRID_M,
    max_gap: MaxGap = DEFAULT_MAX_GAP_S,
    engine: EngineOpt = EngineName.duckdb,
    fmt: FormatOpt = Fmt.json,
    spark_master: Master = None,
    purpose: Purpose = None,
) -> None:
    """轨迹：各网格的停留区间及所在城市 / where the phone was: maximal stays per grid (with the
    grid's city), in time order."""

    def go() -> list[Any]:
        out: list[Any] = _engine(engine, spark_master).trajectory(
            data_dir, uid, parse_at(at), days, Profile(grid_m=grid_m, max_gap_s=max_gap)
        )
        return out

    rows = _run(go)
    _audit(data_dir, "trajectory", uid, purpose, len(rows))
    emit(
        [t.to_json() for t in rows],
        fmt,
        ["grid", "city", "start", "end", "duration_s", "lon", "lat"],
    )


@app.command()
def build(
    data_dir: DataDir,
    grid_m: GridM = DEFAULT_GRID_M,
    max_gap: MaxGap = DEFAULT_MAX_GAP_S,
    bucket_s: Annotated[
        int, typer.Option("--bucket-s", help="stay pieces are cut at multiples of this")
    ] = 3600,
    threads: Annotated[int | None, typer.Option("--threads", help="DuckDB threads")] = None,
) -> None:
    """压缩：记录 → 停留（按天增量，可重复运行）/ compact records into stays, by day."""
    from fugong.tracing.build import build as run_build

    report = _run(
        lambda: run_build(
            data_dir, Profile(grid_m=grid_m, max_gap_s=max_gap), bucket_s=bucket_s, threads=threads
        )
    )
    typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=1))


@app.command()
def generate(
    out_dir: Annotated[Path, typer.Argument(help="输出目录 / output data directory")],
    subscribers: Annotated[int, typer.Option("--subscribers", min=1)] = 10_000,
    days: Annotated[int, typer.Option("--days", min=1)] = 14,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    start: Annotated[str, typer.Option("--start", help="first UTC date")] = "2022-11-01",
    cells: Annotated[int | None, typer.Option("--cells", help="cells in the traced city")] = None,
) -> None:
    """合成城市数据 / a seeded synthetic Guangzhou-like city in the data contract."""
    from fugong.tracing.generate import generate as run_generate

    report = _run(
        lambda: run_generate(
            out_dir, subscribers, days, seed=seed, start=date.fromisoformat(start), cells=cells
        )
    )
    typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=1))


@app.command()
def ingest(
    raw_csv: Annotated[Path, typer.Argument(help="运营商导出 CSV：号码, 时间, 小区")],
    data_dir: DataDir,
    key_file: Annotated[Path, typer.Option("--key-file", help="HMAC key, outside DATA_DIR")],
    naive_tz_hours: Annotated[
        int, typer.Option("--naive-tz-hours", help="UTC offset of times without a zone")
    ] = 8,
) -> None:
    """导入：号码假名化（HMAC-SHA256），坏行按行号报告 / pseudonymise an operator export."""
    from fugong.tracing.ingest import IngestError
    from fugong.tracing.ingest import ingest as run_ingest

    if not raw_csv.is_file():
        raise fail(f"input file not found: {raw_csv}")
    try:
        report = _run(
            lambda: run_ingest(
                raw_csv, data_dir, key_file, timezone(timedelta(hours=naive_tz_hours))
            )
        )
    except IngestError as exc:
        raise fail(str(exc)) from exc
    if report.rejected:
        log.warning(
            "%d row(s) rejected; see ingest_reports/ in the data directory", report.rejected
        )
    typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=1))


@app.command()
def purge(
    data_dir: DataDir,
    older_than: Annotated[str, typer.Option("--older-than", help="e.g. 28d or 4w")] = "28d",
    today: Annotated[
        str | None, typer.Option("--today", help="UTC date to count from (default: today)")
    ] = None,
) -> None:
    """删除过期数据 / delete records and stays older than the retention window."""
    from fugong.tracing.retention import parse_age
    from fugong.tracing.retention import purge as run_purge

    report = _run(
        lambda: run_purge(
            data_dir, parse_age(older_than), date.fromisoformat(today) if today else None
        )
    )
    if report.unpartitioned_kept:
        log.warning("unpartitioned record files cannot be purged by date; rewrite them partitioned")
    typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=1))
