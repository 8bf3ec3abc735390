"""Side effects that belong to a transaction: queued while it runs, carried out when the
outermost transaction commits, undone or dropped when it rolls back.

SQLAlchemy fires ``after_commit`` when a *savepoint* is released too, although the enclosing
transaction may still roll back, and ``after_soft_rollback`` for a rolled-back savepoint, whose
enclosing transaction may still commit. A :class:`TransactionQueue` therefore settles items
only at the outermost commit, and on a savepoint's rollback settles (as rolled back) just the
items queued inside that savepoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

T = TypeVar("T")


class TransactionQueue(Generic[T]):
    """Per-session queue named ``name``; ``on_commit`` / ``on_rollback`` get the settled items
    in the order they were queued."""

    def __init__(
        self,
        name: str,
        *,
        on_commit: Callable[[list[T]], None],
        on_rollback: Callable[[list[T]], None],
    ) -> None:
        self._items = f"{name}.pending"
        self._marks = f"{name}.savepoints"  # savepoint -> queue length when it began
        self._on_commit = on_commit
        self._on_rollback = on_rollback
        event.listen(Session, "after_transaction_create", self._mark)
        event.listen(Session, "after_commit", self._commit)
        event.listen(Session, "after_soft_rollback", self._rollback)

    def add(self, session: Session, item: T) -> None:
        # The item belongs to the transaction under way; with none begun yet (nothing written
        # to the database so far), begin it, or a rollback would have nothing to settle.
        if not session.in_transaction():
            session.begin()
        session.info.setdefault(self._items, []).append(item)

    def _mark(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.nested:
            marks = session.info.setdefault(self._marks, {})
            marks[transaction] = len(session.info.get(self._items, ()))

    def _commit(self, session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint's release: the enclosing transaction decides
        session.info.pop(self._marks, None)
        items = session.info.pop(self._items, [])
        if items:
            self._on_commit(items)

    def _rollback(self, session: Session, previous_transaction: SessionTransaction) -> None:
        if previous_transaction.nested:
            mark = session.info.get(self._marks, {}).pop(previous_transaction, None)
            items = session.info.get(self._items)
            if mark is None or not items:
                return
            dropped = items[mark:]
            del items[mark:]
        else:
            session.info.pop(self._marks, None)
            dropped = session.info.pop(self._items, [])
        if dropped:
            self._on_rollback(dropped)
