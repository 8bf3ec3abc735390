"""Notifications: an in-app row in the caller's transaction, and a copy through the outbound
channel only after that transaction commits (a rolled-back change must not send an SMS).

The outbound channel is pluggable: ``FUGONG_OUTBOUND`` names a ``module:attribute`` whose
object has ``send(user, text, link)``; the default writes to the ``fugong.outbound`` log, so a
deployment plugs in its SMS or e-mail gateway without touching the code."""

from __future__ import annotations

import importlib
import logging
from typing import Protocol

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, SessionTransaction

from fugong.core.models import Notification, User

log = logging.getLogger("fugong.outbound")
_PENDING = "fugong_outbound_pending"
_MARKS = "fugong_outbound_savepoints"  # savepoint -> queue length when it began


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
    session.info.setdefault(_PENDING, []).append((user, text, link))


@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    # A savepoint remembers how many messages were queued before it, so rolling it back drops
    # only what was queued inside it: the enclosing transaction may still commit the rest.
    if transaction.nested:
        marks = session.info.setdefault(_MARKS, {})
        marks[transaction] = len(session.info.get(_PENDING, ()))


@event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    # SQLAlchemy fires this on a savepoint's release too; the enclosing transaction may still
    # roll back, so only the outermost commit sends.
    if session.in_nested_transaction():
        return
    session.info.pop(_MARKS, None)
    for user, text, link in session.info.pop(_PENDING, []):
        try:
            _channel.send(user, text, link)
        except Exception:  # a gateway failure must not break the request that succeeded
            log.exception("outbound channel failed for %s", user.username)


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    # Fires for every rollback, savepoints included (``after_rollback`` fires only for the
    # real one, and used to drop the whole queue when an inner savepoint rolled back).
    if previous_transaction.nested:
        mark = session.info.get(_MARKS, {}).pop(previous_transaction, None)
        pending = session.info.get(_PENDING)
        if mark is not None and pending is not None:
            del pending[mark:]
        return
    session.info.pop(_PENDING, None)
    session.info.pop(_MARKS, None)


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
