"""``fugong opinion …`` on a database file of its own: ingest with per-line errors, analyse,
train / evaluate round trip on the shipped sample, alerts, the weekly report to a folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from fugong.cli import app
from fugong.db import make_engine, make_session_factory, migrate
from fugong.opinion.models import OpinionModel, OpinionPost
from fugong.settings import get_settings

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
