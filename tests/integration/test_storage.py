"""A file written for a row lives and dies with the transaction that wrote it
(``fugong.core.storage``), savepoints included."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from fugong.core import storage


def test_a_committed_file_is_kept_and_a_rolled_back_one_removed(
    session: Session, tmp_path: Path
) -> None:
    s = session
    kept, gone = tmp_path / "kept.bin", tmp_path / "gone.bin"
    storage.write_new_file(s, kept, b"a")
    s.commit()
    storage.write_new_file(s, gone, b"b")
    assert gone.exists()
    s.rollback()
    assert kept.read_bytes() == b"a"
    assert not gone.exists()
    with pytest.raises(FileExistsError):  # never overwrites
        storage.write_new_file(s, kept, b"c")


def test_savepoints_settle_their_own_files(session: Session, tmp_path: Path) -> None:
    s = session
    outer, failed, released = (tmp_path / n for n in ("outer", "failed", "released"))
    storage.write_new_file(s, outer, b"1")
    with pytest.raises(RuntimeError), s.begin_nested():
        storage.write_new_file(s, failed, b"2")
        raise RuntimeError("this row failed")
    # The failed savepoint's file goes at once; the outer transaction's stays.
    assert not failed.exists() and outer.exists()
    with s.begin_nested():
        storage.write_new_file(s, released, b"3")
    # Released, but the enclosing transaction has not committed: still owned by it.
    s.rollback()
    assert not outer.exists() and not released.exists()

    again = tmp_path / "again"
    with s.begin_nested():
        storage.write_new_file(s, again, b"4")
    s.commit()
    assert again.read_bytes() == b"4"
