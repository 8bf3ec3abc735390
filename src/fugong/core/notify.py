"""Notifications: an in-app row in the caller's transaction, and a copy through the outbound
channel only after that transaction commits (a rolled-back change must not send an SMS).

The outbound channel is pluggable: ``FUGONG_OUTBOUND`` names a ``module:attribute`` whose
object has ``send(user, text, link)``; the default writes to the ``fugong.outbound`` log, so a
deployment plugs in its SMS or e-mail gateway without touching the code."""

from __future__ import annotations

import importlib
import logging
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fugong.core.aftercommit import TransactionQueue
from fugong.core.models import Notification, User

log = logging.getLogger("fugong.outbound")


class Outbound(Protocol):
    def send(self, user: User, text: str, link: str | None) -> None: ...


class LogOutbound:
    """The default channel: one log line per message (no phone number or address in it)."""

    def send(self, user: User, text: str, link: str | None) -> None:
        log.info("to=%s text=%s link=%s", user.username, text, link or "")


_channel: Outbound = LogOutbound()


def configure(spec: str | None) -> Outbound:
    """Install the channel named by ``module:attribute`` (or the log channel when empty)."""
    global _channel
    if not spec:
        _channel = LogOutbound()
        return _channel
    module, _, attr = spec.partition(":")
    obj = getattr(importlib.import_module(module), attr)
    _channel = obj() if isinstance(obj, type) else obj
    return _channel


def notify(session: Session, user: User | None, text: str, link: str | None = None) -> None:
    if user is None:
        return
    session.add(Notification(user_id=user.id, text=text[:300], link=link))
    _outbox.add(session, (user, text, link))


def _send(messages: list[tuple[User, str, str | None]]) -> None:
    for user, text, link in messages:
        try:
            _channel.send(user, text, link)
        except Exception:  # a gateway failure must not break the request that succeeded
            log.exception("outbound channel failed for %s", user.username)


# Sent when the outermost transaction commits; dropped with it, or with the savepoint they
# were queued in, on rollback.
_outbox: TransactionQueue[tuple[User, str, str | None]] = TransactionQueue(
    "fugong.outbound", on_commit=_send, on_rollback=lambda _messages: None
)


def unread_count(session: Session, user: User) -> int:
    return (
        session.scalar(
            select(func.count(Notification.id)).where(
                Notification.user_id == user.id, Notification.read_at.is_(None)
            )
        )
        or 0
    )


def recent(session: Session, user: User, limit: int = 30) -> list[Notification]:
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.user_id == user.id)
            .order_by(Notification.id.desc())
            .limit(limit)
        )
    )
