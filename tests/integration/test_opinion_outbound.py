"""Opinion alerts reach the CDC analysts through the pluggable outbound channel only after the
transaction that raised them commits (``fugong.core.notify``): each analyst gets each new alert
once, and a detection that rolls back sends nothing, on both databases.

The recording channel is plugged in the way a deployment plugs in its SMS gateway:
``FUGONG_OUTBOUND`` names ``module:attribute`` and ``notify.configure`` installs what the
setting names (what ``create_app`` does at start-up, and the CLI's root callback)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from fugong.cli import app
from fugong.core import notify
from fugong.core.models import Notification, User
from fugong.db import make_engine, make_session_factory, migrate, unit_of_work
from fugong.opinion import services
from fugong.opinion.ingest import CST, RawItem
from fugong.opinion.models import OpinionAlert
from fugong.settings import get_settings
from tests.conftest import Factory

MODULE = "tests.integration.test_opinion_outbound"
KEY = b"k" * 32
DAY = date(2020, 3, 4)
RUMOUR = "自来水*病毒"


class Recorder:
    """An outbound channel that keeps every message it is handed, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str | None]] = []

    def send(self, user: User, text: str, link: str | None) -> None:
        self.sent.append((user.username, text, link))


#: The object ``FUGONG_OUTBOUND`` names; ``notify.configure`` installs it as it is.
CHANNEL = Recorder()


def _channel() -> Recorder:
    # The instance of the module as ``notify.configure`` imports it by name (pytest's importlib
    # mode may hold this file under another name too).
    channel: Recorder = importlib.import_module(MODULE).CHANNEL
    return channel


@pytest.fixture
def outbound(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    monkeypatch.setenv("FUGONG_OUTBOUND", f"{MODULE}:CHANNEL")
    get_settings.cache_clear()
    channel = _channel()
    channel.sent.clear()
    assert notify.configure(get_settings().outbound) is channel
    yield channel
    # Back to the log channel: the channel is process-wide.
    notify.configure(None)
    get_settings.cache_clear()


def _post(n: int, text: str) -> RawItem:
    return RawItem(
        external_id=f"o-{n}", posted_at=datetime.combine(DAY, time(9, n), CST), text=text
    )


def _prepare(session: Session) -> list[str]:
    """Two CDC analysts, a rumour on the watch-list and a day whose posts repeat it; returns
    the analysts' usernames."""
    make = Factory(session)
    analysts = [make.user("cdc").username, make.user("cdc").username]
    src = services.get_or_create_source(session, name="外发测试源", kind="file")
    items = [_post(0, "有人说自来水里有病毒，千万别喝"), _post(1, "园区复工第一天，食堂分餐")]
    services.ingest_items(session, actor=None, source=src, items=items, key=KEY)
    services.analyse(session, actor=None)
    services.add_watch_phrase(session, actor=None, phrase=RUMOUR)
    return analysts


def _detect(session: Session) -> list[OpinionAlert]:
    config = services.AlertConfig(ears=services.parse_ears("C1=3,C2=3,C3=2,min_count=3"))
    return services.detect_alerts(session, actor=None, start=DAY, end=DAY, config=config)


def _count(session: Session, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_committed_alert_is_sent_once_to_each_analyst_after_the_commit(
    session_factory: sessionmaker[Session], outbound: Recorder
) -> None:
    with unit_of_work(session_factory) as s:
        analysts = _prepare(s)
    assert outbound.sent == []

    with unit_of_work(session_factory) as s:
        (alert,) = _detect(s)
        assert alert.kind == "rumour" and alert.subject == RUMOUR
        s.flush()
        # Raised, flushed, in-app rows written: still nothing outside until the commit.
        assert _count(s, Notification) == len(analysts)
        assert outbound.sent == []
        alert_id = alert.id
    link = f"/opinion/alerts/{alert_id}"
    assert sorted(outbound.sent) == [
        (name, f"舆情预警：谣言监测「{RUMOUR}」{DAY.isoformat()}", link)
        for name in sorted(analysts)
    ]

    # Running the rules again raises nothing new, and sends nothing again.
    with unit_of_work(session_factory) as s:
        assert _detect(s) == []
    assert len(outbound.sent) == len(analysts)


def test_an_alert_whose_transaction_rolls_back_is_never_sent(
    session_factory: sessionmaker[Session], outbound: Recorder
) -> None:
    with unit_of_work(session_factory) as s:
        analysts = _prepare(s)

    with (
        pytest.raises(RuntimeError, match="after the rules ran"),
        unit_of_work(session_factory) as s,
    ):
        assert len(_detect(s)) == 1
        raise RuntimeError("the request failed after the rules ran")
    assert outbound.sent == []
    with session_factory() as s:
        assert _count(s, OpinionAlert) == 0 and _count(s, Notification) == 0

    # One session: a rolled-back detection, then one that commits. Only the committed alert is
    # sent, once per analyst; the dropped copy does not come back with the later commit.
    s = session_factory()
    try:
        assert len(_detect(s)) == 1
        s.rollback()
        assert outbound.sent == []
        (alert,) = _detect(s)
        s.commit()
    finally:
        s.close()
    assert sorted(name for name, _, _ in outbound.sent) == sorted(analysts)
    assert {link for _, _, link in outbound.sent} == {f"/opinion/alerts/{alert.id}"}


def test_the_cli_sends_alerts_through_the_configured_channel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'outbound.db'}"
    monkeypatch.setenv("FUGONG_DATABASE_URL", url)
    monkeypatch.setenv("FUGONG_OPINION_AUTHOR_KEY_FILE", str(tmp_path / "keys" / "a.key"))
    monkeypatch.setenv("FUGONG_OUTBOUND", f"{MODULE}:CHANNEL")
    get_settings.cache_clear()
    channel = _channel()
    channel.sent.clear()
    # Whatever an earlier test installed in this process, the command must install its own.
    notify.configure(None)
    engine = make_engine(url)
    migrate.upgrade(engine)
    with unit_of_work(make_session_factory(engine)) as s:
        analysts = _prepare(s)
    engine.dispose()
    try:
        r = CliRunner().invoke(
            app, ["opinion", "alerts", "--start", DAY.isoformat(), "--end", DAY.isoformat()]
        )
        assert r.exit_code == 0, r.output
        assert "新预警 1 条" in r.output
        assert sorted(name for name, _, _ in channel.sent) == sorted(analysts)
    finally:
        notify.configure(None)
        get_settings.cache_clear()
