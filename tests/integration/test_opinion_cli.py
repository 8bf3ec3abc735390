"""``fugong opinion …`` on a database file of its own: ingest with per-line errors, analyse,
train / evaluate round trip on the shipped sample, alerts, the weekly report to a folder, and
the weekly cron job (``schedule``) run twice for the same week."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from fugong.cli import app
from fugong.core.models import AuditLog, Notification
from fugong.db import make_engine, make_session_factory, migrate, unit_of_work
from fugong.opinion import services
from fugong.opinion.models import OpinionAlert, OpinionModel, OpinionPost, OpinionReport
from fugong.opinion.queries import today
from fugong.opinion.report import week_bounds, week_of
from fugong.settings import get_settings
from tests.conftest import Factory

SAMPLE = Path(__file__).resolve().parents[2] / "src/fugong/opinion/text/data/sample_labelled.csv"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FUGONG_DATABASE_URL", url)
    monkeypatch.setenv("FUGONG_OPINION_AUTHOR_KEY_FILE", str(tmp_path / "keys" / "a.key"))
    get_settings.cache_clear()
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    get_settings.cache_clear()


def test_ingest_analyse_train_evaluate_report(db: str, tmp_path: Path) -> None:
    runner = CliRunner()
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        '{"id": "1", "time": "2020-03-02 08:00", "text": "药店口罩又断货了", "author": "@甲"}\n'
        "not json\n"
        '{"id": "3", "time": "2020-03-03 09:00", "text": "园区复工很顺利，员工都很安心"}\n',
        encoding="utf-8",
    )
    r = runner.invoke(app, ["opinion", "ingest", str(posts)])
    assert r.exit_code == 0, r.output
    assert "新增 2 条" in r.output and "第2行" in r.output
    assert (tmp_path / "keys" / "a.key").stat().st_mode & 0o777 == 0o600

    r = runner.invoke(app, ["opinion", "train", str(SAMPLE)])
    assert r.exit_code == 0, r.output
    assert "词典基线" in r.output and "macro-F1" in r.output
    r = runner.invoke(app, ["opinion", "analyse"])
    assert r.exit_code == 0 and "已分析 2 条" in r.output

    r = runner.invoke(app, ["opinion", "evaluate", str(SAMPLE)])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[0].startswith("logreg-") and lines[1].startswith("lexicon-v1")
    assert "accuracy=" in lines[0] and "macro-F1=" in lines[1]

    engine = make_engine(db)
    with make_session_factory(engine)() as s:
        model = s.scalar(select(OpinionModel))
        assert model is not None and model.active
        models = set(s.scalars(select(OpinionPost.sentiment_model)))
        assert models == {model.version}
    engine.dispose()

    r = runner.invoke(app, ["opinion", "alerts", "--start", "2020-03-02", "--end", "2020-03-03"])
    assert r.exit_code == 0 and "新预警 0 条" in r.output
    r = runner.invoke(app, ["opinion", "report", "--week", "2020-W10", "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "opinion-2020-W10.pdf").read_bytes().startswith(b"%PDF")
    assert "每周舆情分析报告" in (tmp_path / "out" / "opinion-2020-W10.html").read_text("utf-8")


def test_bad_input_exits_2_with_the_reason(db: str, tmp_path: Path) -> None:
    runner = CliRunner()
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\n好,positive\n坏,maybe\n", encoding="utf-8")
    r = runner.invoke(app, ["opinion", "train", str(bad)])
    assert r.exit_code == 2 and "bad.csv:3" in r.output
    r = runner.invoke(app, ["opinion", "report", "--week", "2020-10"])
    assert r.exit_code == 2 and "YYYY-Www" in r.output
    r = runner.invoke(app, ["opinion", "ingest"])
    assert r.exit_code == 2


def test_schedule_builds_last_weeks_report_once_per_week(db: str, tmp_path: Path) -> None:
    # The job always reports on the week before today's, so the posts are dated in that week.
    week = week_of(today() - timedelta(days=7))
    monday, sunday = week_bounds(week)
    rumour = "有人说自来水里有病毒，千万别喝"
    texts = [
        (monday + timedelta(days=1), rumour),
        (monday + timedelta(days=1), "转发：" + rumour),  # an exact repost: counted once
        (monday + timedelta(days=2), "药店口罩又断货了，排队两个小时"),
        (sunday, "园区复工很顺利，员工都很安心"),
    ]
    posts = tmp_path / "week.jsonl"
    posts.write_text(
        "".join(
            json.dumps({"id": f"w{i}", "time": f"{day} 09:{i:02d}", "text": text}) + "\n"
            for i, (day, text) in enumerate(texts)
        ),
        encoding="utf-8",
    )
    engine = make_engine(db)
    with unit_of_work(make_session_factory(engine)) as s:
        Factory(s).user("cdc")
        services.add_watch_phrase(s, actor=None, phrase="自来水*病毒")
    runner = CliRunner()
    r = runner.invoke(app, ["opinion", "ingest", str(posts)])
    assert r.exit_code == 0 and "新增 3 条，重复 1 条" in r.output, r.output

    out = tmp_path / "reports"
    r = runner.invoke(app, ["opinion", "schedule", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "已分析 4 条" in r.output
    assert f"{monday} 至 {sunday}：新预警 1 条" in r.output
    assert (out / f"opinion-{week}.pdf").read_bytes().startswith(b"%PDF")
    assert "每周舆情分析报告" in (out / f"opinion-{week}.html").read_text("utf-8")
    with make_session_factory(engine)() as s:
        (row,) = s.scalars(select(OpinionReport)).all()
        assert (row.week, row.period_start, row.period_end) == (week, monday, sunday)
        assert "共采集帖文 4 条，去重后 3 条" in row.summary
        assert "本周触发预警 1 条" in row.summary
        assert row.pdf.startswith(b"%PDF") and row.created_by_id is None
        first_built = row.created_at

    # Cron ran twice (a retry, a manual re-run): the week's report is rebuilt in place, the
    # alert is not raised again and nobody is told twice.
    r = runner.invoke(app, ["opinion", "schedule"])
    assert r.exit_code == 0, r.output
    assert "已分析 0 条" in r.output and "新预警 0 条" in r.output
    with make_session_factory(engine)() as s:
        (row,) = s.scalars(select(OpinionReport)).all()
        assert row.week == week and row.created_at >= first_built
        assert "共采集帖文 4 条，去重后 3 条" in row.summary
        assert len(s.scalars(select(OpinionAlert)).all()) == 1
        assert len(s.scalars(select(Notification)).all()) == 1
        builds = s.scalars(select(AuditLog.action).where(AuditLog.action == "opinion.report"))
        assert len(builds.all()) == 2
    engine.dispose()
