"""Files that belong to database rows (uploaded documents, generated reports).

A file is written before its row is committed, so a transaction that rolls back later (a failed
audit write, a constraint on another row, a request that errors after the service returned)
would leave it behind with nothing pointing at it. :func:`write_new_file` registers each file on
the session: it is kept when the transaction commits and removed when it, or the savepoint the
file was written in, rolls back.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from fugong.core.aftercommit import TransactionQueue


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


# Kept on commit; removed when the transaction (or the savepoint they were written in) rolls
# back.
_files: TransactionQueue[Path] = TransactionQueue(
    "fugong.storage", on_commit=lambda _paths: None, on_rollback=_remove
)


def write_new_file(session: Session, path: Path, content: bytes) -> None:
    """Create ``path`` (never overwriting: the name must be new) with ``content``, owned by the
    session's current transaction."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with path.open("xb") as fh:
        fh.write(content)
    _files.add(session, path)
