"""``fugong opinion …``: public-opinion monitoring from a shell (the host's operator acts as
``system`` in the audit log). Errors name the file and line and exit with status 2.

Weekly run (cron, Mondays 06:15 Beijing time, for the week that just ended)::

    15 6 * * 1  cd /srv/fugong && fugong opinion schedule -o /srv/fugong/reports

(with the deployment's ``FUGONG_*`` settings in the cron environment).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fugong.errors import FugongError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

app = typer.Typer(help="舆情监测 / public-opinion monitoring", no_args_is_help=True)

OutDir = Annotated[Path | None, typer.Option("--output", "-o", help="把 HTML 和 PDF 写入此目录")]


def _fail(message: str) -> typer.Exit:
    typer.secho(f"错误：{message}", fg=typer.colors.RED, err=True)
    return typer.Exit(2)


def _factory() -> sessionmaker[Session]:
    from fugong.db import make_engine, make_session_factory
    from fugong.settings import get_settings

    return make_session_factory(make_engine(get_settings().database_url))


def _labelled(path: Path) -> tuple[list[str], list[str]]:
    from fugong.opinion.text import load_labelled_csv

    try:
        return load_labelled_csv(path)
    except (OSError, ValueError) as e:
        raise _fail(str(e)) from e


@app.command()
def ingest(
    file: Annotated[Path | None, typer.Argument(help="CSV / JSONL / RSS 文件")] = None,
    feed: Annotated[str | None, typer.Option("--feed", help="RSS/Atom 订阅地址")] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="来源名称（默认：文件名或地址）")
    ] = None,
) -> None:
    """Import posts from FILE or fetch --feed URL; every malformed item is listed with its line."""
    from fugong.db import unit_of_work
    from fugong.opinion import ingest as parse
    from fugong.opinion import services
    from fugong.settings import get_settings

    if (file is None) == (feed is None):
        raise _fail("请给出一个文件，或 --feed 地址（二选一）")
    key = services.load_author_key(get_settings().opinion_author_key_file)
    try:
        with unit_of_work(_factory()) as session:
            if feed is not None:
                src = services.get_or_create_source(
                    session, name=source or feed[:100], kind="feed", url=feed
                )
                report = services.fetch_feed(session, actor=None, source=src, key=key)
            else:
                assert file is not None
                try:
                    parsed = parse.parse_file(file.name, file.read_bytes())
                except OSError as e:
                    raise _fail(f"{file}: {e.strerror}") from e
                src = services.get_or_create_source(session, name=source or file.stem, kind="file")
                report = services.ingest_items(
                    session,
                    actor=None,
                    source=src,
                    items=parsed.items,
                    key=key,
                    errors=parsed.errors,
                )
    except FugongError as e:
        raise _fail(e.message) from e
    for err in report.errors:
        typer.echo(f"{file or feed}: {err.where}: {err.message}", err=True)
    typer.echo(report.summary())


@app.command()
def analyse(
    rescore_days: Annotated[
        int, typer.Option("--rescore-days", min=0, help="同时重新打分最近 N 天的帖文")
    ] = 0,
) -> None:
    """Score new posts with the active model and group duplicates."""
    from datetime import UTC, datetime

    from fugong.db import unit_of_work
    from fugong.opinion import services

    since = datetime.now(UTC) - timedelta(days=rescore_days) if rescore_days else None
    with unit_of_work(_factory()) as session:
        r = services.analyse(session, actor=None, since=since)
    typer.echo(
        f"已分析 {r.analysed} 条（模型 {r.model}）；"
        f"重复组 {r.groups} 个，新归入重复的帖文 {r.duplicates} 条"
    )


@app.command()
def train(
    labelled: Annotated[Path, typer.Argument(help="text,label 的 CSV")],
    activate: Annotated[bool, typer.Option("--activate/--no-activate")] = True,
    algorithm: Annotated[str, typer.Option("--algorithm", help="logreg | nb")] = "logreg",
) -> None:
    """Train a sentiment classifier on LABELLED.csv, store it and (by default) activate it."""
    from fugong.db import unit_of_work
    from fugong.opinion import services

    if algorithm not in ("logreg", "nb"):
        raise _fail("--algorithm 应为 logreg 或 nb")
    texts, labels = _labelled(labelled)
    try:
        with unit_of_work(_factory()) as session:
            row = services.train_model(
                session,
                actor=None,
                texts=texts,
                labels=labels,
                activate=activate,
                algorithm="nb" if algorithm == "nb" else "logreg",
            )
            version, metrics = row.version, row.metrics
    except FugongError as e:
        raise _fail(e.message) from e
    m, lx = metrics["held_out"], metrics["lexicon"]
    typer.echo(f"模型 {version}（{len(texts)} 条）{'已启用' if activate else '未启用'}")
    typer.echo(
        f"留出集 n={m['n']}: accuracy={m['accuracy']:.3f} macro-F1={m['macro_f1']:.3f}  |  "
        f"词典基线 accuracy={lx['accuracy']:.3f} macro-F1={lx['macro_f1']:.3f}"
    )


@app.command()
def evaluate(
    labelled: Annotated[Path, typer.Argument(help="text,label 的 CSV")],
) -> None:
    """Print accuracy and macro-F1 of the active model on LABELLED.csv, and the lexicon's."""
    from fugong.db import unit_of_work
    from fugong.opinion import services

    texts, labels = _labelled(labelled)
    try:
        with unit_of_work(_factory()) as session:
            ev, lex = services.evaluate_model(session, actor=None, texts=texts, labels=labels)
    except (FugongError, ValueError) as e:
        raise _fail(str(e)) from e
    typer.echo(f"{ev.model}: n={ev.n} accuracy={ev.accuracy:.3f} macro-F1={ev.macro_f1:.3f}")
    typer.echo(f"{lex.model}: n={lex.n} accuracy={lex.accuracy:.3f} macro-F1={lex.macro_f1:.3f}")


def _range(start: str | None, end: str | None) -> tuple[date, date]:
    from fugong.db import unit_of_work
    from fugong.opinion import queries

    try:
        last = date.fromisoformat(end) if end else None
        first = date.fromisoformat(start) if start else None
    except ValueError as e:
        raise _fail(f"日期格式应为 YYYY-MM-DD：{e}") from e
    if last is None:
        with unit_of_work(_factory()) as session:
            last = queries.latest_day(session) or queries.today()
    return first or last - timedelta(days=6), last


@app.command()
def alerts(
    start: Annotated[
        str | None, typer.Option("--start", help="YYYY-MM-DD（默认：结束日前 6 天）")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="YYYY-MM-DD（默认：最新帖文当天）")
    ] = None,
) -> None:
    """Run the alert rules over a date range and print the new alerts."""
    from fugong.db import unit_of_work
    from fugong.opinion import services
    from fugong.opinion.models import ALERT_KINDS
    from fugong.settings import get_settings

    first, last = _range(start, end)
    settings = get_settings()
    try:
        with unit_of_work(_factory()) as session:
            config = services.AlertConfig(
                ears=services.parse_ears(settings.opinion_ears),
                negative_z=settings.opinion_negative_z,
            )
            new = services.detect_alerts(session, actor=None, start=first, end=last, config=config)
            lines = [
                f"{a.day} {ALERT_KINDS[a.kind]} {a.subject} {a.method} "
                f"统计量 {a.statistic:.2f} (阈值 {a.threshold:g})"
                for a in new
            ]
    except FugongError as e:
        raise _fail(e.message) from e
    for line in lines:
        typer.echo(line)
    typer.echo(f"{first} 至 {last}：新预警 {len(lines)} 条")


def _write(out: Path | None, week: str, html: str, pdf: bytes) -> None:
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    (out / f"opinion-{week}.html").write_text(html, encoding="utf-8")
    (out / f"opinion-{week}.pdf").write_bytes(pdf)
    typer.echo(f"已写入 {out / f'opinion-{week}.pdf'}")


def _last_week() -> str:
    from fugong.opinion.queries import today
    from fugong.opinion.report import week_of

    return week_of(today() - timedelta(days=7))


@app.command()
def report(
    week: Annotated[str | None, typer.Option("--week", help="ISO 周，如 2020-W10")] = None,
    last_week: Annotated[bool, typer.Option("--last-week", help="上一个完整的周")] = False,
    output: OutDir = None,
) -> None:
    """Build the weekly report (HTML + PDF), store it, and optionally write both to a folder."""
    from fugong.db import unit_of_work
    from fugong.opinion import services

    if (week is None) == (not last_week):
        raise _fail("请给出 --week 2020-W10 或 --last-week（二选一）")
    wk = week or _last_week()
    try:
        with unit_of_work(_factory()) as session:
            row = services.build_report(session, actor=None, week=wk)
            html, pdf, summary = row.html, row.pdf, row.summary
    except FugongError as e:
        raise _fail(e.message) from e
    typer.echo(summary)
    _write(output, wk, html, pdf)


@app.command()
def schedule(output: OutDir = None) -> None:
    """The weekly job: analyse new posts, run the alert rules over last week, build its report."""
    from fugong.opinion.report import week_bounds

    wk = _last_week()
    start, end = week_bounds(wk)
    analyse(0)
    alerts(start.isoformat(), end.isoformat())
    report(wk, False, output)
