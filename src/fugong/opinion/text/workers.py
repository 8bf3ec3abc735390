"""Worker processes for the text pipeline, so that a large batch uses every core.

One plain child process per core beyond this one (at most three), each running
:mod:`._worker` and answering requests over its stdin/stdout in JSON frames (:mod:`._frames`):
``{"op": "cut", "texts": [...]}`` (jieba segmentation, see :func:`.segment.segment_many`) and
``{"op": "group", "texts": [...]}`` (duplicate grouping of compact keys, see
:func:`offload_grouping`).

Plain child processes, not multiprocessing: "spawn" would re-run the caller's main script in
the child (breaking any script without a ``__main__`` guard), and "fork" of a threaded web
server can copy a lock that another thread holds, forever. Workers start on first use and stop
at exit; a worker that fails is replaced, and its work is done in this process instead, so a
worker can cost time but never change a result.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from fugong.opinion.text._frames import read_frame, write_frame

if TYPE_CHECKING:
    from fugong.opinion.text.dedup import DuplicateGroup

__all__ = [
    "WORKERS_ENV",
    "Pending",
    "Worker",
    "live_workers",
    "offload_grouping",
    "start_workers",
    "stop_workers",
    "worker_count",
    "worker_cpu_seconds",
]

T = TypeVar("T")
_workers: list[Worker] = []
_workers_lock = threading.Lock()
_cpu_lock = threading.Lock()
_worker_cpu = 0.0


#: Environment variable capping the number of workers (``0``: none, all work in the calling
#: process), for hosts whose "spare" cores are in fact busy with other work.
WORKERS_ENV = "FUGONG_OPINION_WORKERS"


def worker_count() -> int:
    """How many worker processes there are to be: cores beyond this one, at most 3, and at
    most ``$FUGONG_OPINION_WORKERS`` when that is set (a malformed value is ignored)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    count = max(0, min(cores, 4) - 1)
    cap = os.environ.get(WORKERS_ENV, "").strip()
    return min(count, int(cap)) if cap.isdigit() else count


class Worker:
    """One worker process. One thread at a time talks to it (holding ``lock``); requests are
    answered in order, so a caller may send several before reading the answers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cpu_seen = 0.0  # the child's CPU seconds as of its last answer
        self.ready = False
        self.broken = False
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fugong.opinion.text._worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def wait_ready(self) -> bool:
        """Block until the child has loaded its dictionary; False if it died instead."""
        if not self.ready and not self.broken:
            try:
                self.ready = self._read() == {"ready": True}
            except (OSError, EOFError, ValueError):
                self.ready = False
            self.broken = not self.ready
        return self.ready

    def send(self, op: str, texts: Sequence[str]) -> None:
        assert self.proc.stdin is not None
        write_frame(self.proc.stdin, {"op": op, "texts": list(texts)})

    def receive(self, key: str) -> Any:
        """``answer[key]`` of the oldest request not yet answered; counts the worker's CPU."""
        global _worker_cpu
        answer = self._read()
        if not isinstance(answer, dict) or key not in answer or "cpu" not in answer:
            raise ValueError("text worker: malformed answer")
        cpu = float(answer["cpu"])
        with _cpu_lock:
            _worker_cpu += cpu - self.cpu_seen
        self.cpu_seen = cpu
        return answer[key]

    def _read(self) -> Any:
        assert self.proc.stdout is not None
        body = read_frame(self.proc.stdout)
        if body is None:
            raise EOFError("text worker exited")
        return json.loads(body)

    def stop(self) -> None:
        if self.proc.stdin is not None:
            with suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def live_workers() -> list[Worker]:
    """The worker processes, started on first use; a worker that failed is stopped and
    replaced."""
    with _workers_lock:
        for w in [w for w in _workers if w.broken]:
            _workers.remove(w)
            w.proc.kill()
            w.stop()
        while len(_workers) < worker_count():
            _workers.append(Worker())
        return list(_workers)


def start_workers() -> int:
    """Start the worker processes now and wait until each has loaded its dictionary (about a
    second), so that the first large batch does not pay for it. Returns how many are ready
    (0 on a one-core machine)."""
    return sum(w.wait_ready() for w in live_workers())


def stop_workers() -> None:
    """Stop the worker processes (they are started again when next needed)."""
    with _workers_lock:
        workers, _workers[:] = list(_workers), []
    for w in workers:
        with w.lock:
            w.stop()


atexit.register(stop_workers)


def worker_cpu_seconds() -> float:
    """CPU time the worker processes have spent on requests, in total (for benchmarks)."""
    return _worker_cpu


class Pending(Generic[T]):
    """A result being computed by a worker; :meth:`result` waits for it, or computes it here
    when no worker took the job or the worker failed."""

    def __init__(self, local: Callable[[], T]) -> None:
        self._local = local
        self._value: T | None = None
        self._have = False
        self._thread: threading.Thread | None = None

    def _settle(self, value: T) -> None:
        self._value, self._have = value, True

    def result(self) -> T:
        if self._thread is not None:
            self._thread.join()
        if not self._have:
            self._settle(self._local())
        return self._value  # type: ignore[return-value]  # set by _settle


def _offload(
    op: str, texts: Sequence[str], key: str, decode: Callable[[Any], T], local: Callable[[], T]
) -> Pending[T]:
    pending = Pending(local)
    # Only a worker that is ready and idle takes the job: waiting for one would be slower
    # than doing the work here.
    idle = [w for w in live_workers() if w.ready and not w.broken and w.lock.acquire(False)]
    if not idle:
        return pending
    worker, others = idle[0], idle[1:]
    for w in others:
        w.lock.release()

    def run() -> None:
        try:
            worker.send(op, texts)
            pending._settle(decode(worker.receive(key)))
        except (OSError, EOFError, ValueError, TypeError):
            worker.broken = True
        finally:
            worker.lock.release()

    pending._thread = threading.Thread(target=run, daemon=True, name="fugong-text-offload")
    pending._thread.start()
    return pending


def offload_grouping(texts: Sequence[str]) -> Pending[list[DuplicateGroup]]:
    """:func:`~.dedup.group_duplicates` of ``texts`` (default settings) on a worker, while this
    process does something else; only the groups of two or more posts are returned."""
    from fugong.opinion.text.dedup import DuplicateGroup, group_keys
    from fugong.opinion.text.normalise import compact_key

    # The worker gets compact keys, not texts: this process has them cached from ingest, and
    # they are what grouping works on.
    keys = [compact_key(t) for t in texts]

    def local() -> list[DuplicateGroup]:
        return [g for g in group_keys(keys) if g.size > 1]

    def decode(raw: Any) -> list[DuplicateGroup]:
        return [DuplicateGroup(str(g), int(r), tuple(int(m) for m in ms)) for g, r, ms in raw]

    return _offload("group", keys, "groups", decode, local)
