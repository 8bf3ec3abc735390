"""Files that belong to database rows (uploaded documents, generated reports).

A file is written before its row is committed, so a transaction that rolls back later (a failed
audit write, a constraint on another row, a request that errors after the service returned)
would leave it behind with nothing pointing at it. :func:`write_new_file` registers each file on
the session: it is kept when the transaction commits and removed when it rolls back.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

_PENDING = "fugong.storage.pending"


def write_new_file(session: Session, path: Path, content: bytes) -> None:
    """Create ``path`` (never overwriting: the name must be new) with ``content``, owned by the
    session's current transaction."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with path.open("xb") as fh:
        fh.write(content)
    session.info.setdefault(_PENDING, []).append(path)


@event.listens_for(Session, "after_commit")
def _keep_after_commit(session: Session) -> None:
    session.info.pop(_PENDING, None)


@event.listens_for(Session, "after_soft_rollback")
def _remove_after_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    # Only the outermost transaction's end decides; a rolled-back savepoint inside it may have
    # written nothing of its own, and its files are settled with the outer transaction.
    if previous_transaction.parent is not None:
        return
    for path in session.info.pop(_PENDING, []):
        path.unlink(missing_ok=True)
