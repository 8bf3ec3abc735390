"""The outbound copy of a notification leaves only when the transaction that made it commits,
and a rolled-back savepoint drops only what was queued inside it (``fugong.core.notify``)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fugong.core import audit, notify
from fugong.core.models import Notification, User
from fugong.core.schemas import RESERVED_USERNAMES, UserCreate
from tests.conftest import Factory

MODULE = "tests.integration.test_notify_outbound"


class Recorder:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, user: User, text: str, link: str | None) -> None:
        self.sent.append(text)


CHANNEL = Recorder()


@pytest.fixture
def outbound() -> Iterator[Recorder]:
    channel: Recorder = importlib.import_module(MODULE).CHANNEL
    channel.sent.clear()
    assert notify.configure(f"{MODULE}:CHANNEL") is channel
    yield channel
    notify.configure(None)


def test_a_rolled_back_savepoint_keeps_what_the_enclosing_transaction_queued(
    session: Session, make: Factory, outbound: Recorder
) -> None:
    s = session
    user = make.user("enterprise")
    s.commit()
    notify.notify(s, user, "before the savepoint")
    with pytest.raises(RuntimeError), s.begin_nested():
        notify.notify(s, user, "inside the failed savepoint")
        raise RuntimeError("a per-row step failed")
    with s.begin_nested():
        notify.notify(s, user, "inside a good savepoint")
    notify.notify(s, user, "after the savepoints")
    assert outbound.sent == []
    s.commit()
    assert outbound.sent == [
        "before the savepoint",
        "inside a good savepoint",
        "after the savepoints",
    ]
    # The in-app rows follow the same transactions.
    texts = s.scalars(select(Notification.text).where(Notification.user_id == user.id))
    assert sorted(texts) == sorted(outbound.sent)


def test_an_outer_rollback_drops_everything_queued(
    session: Session, make: Factory, outbound: Recorder
) -> None:
    s = session
    user = make.user("enterprise")
    s.commit()
    notify.notify(s, user, "lost with the rollback")
    with s.begin_nested():
        notify.notify(s, user, "lost too")
    s.rollback()
    notify.notify(s, user, "the only one")
    s.commit()
    assert outbound.sent == ["the only one"]
    n = s.scalar(
        select(func.count()).select_from(Notification).where(Notification.user_id == user.id)
    )
    assert n == 1


@pytest.mark.parametrize("name", ["system", "cli", "CLI", "System"])
def test_audit_labels_are_not_usernames(name: str) -> None:
    assert {audit.SYSTEM_LABEL, audit.CLI_LABEL} <= RESERVED_USERNAMES
    with pytest.raises(ValueError, match="系统保留"):
        UserCreate(
            username=name,
            display_name="x",
            password="a-long-pass-1",
            organisation_id=1,
            roles=["enterprise"],
        )
