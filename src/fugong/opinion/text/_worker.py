"""A text worker process: ``python -m fugong.opinion.text._worker``.

Started by :mod:`fugong.opinion.text.workers`, never by hand. Protocol on its stdin/stdout,
one frame each way per request (framing in :mod:`._frames`). Its first frame, written once the
dictionary is loaded and before anything is read, is ``{"ready": true}``. Requests:

* ``{"op": "cut", "texts": [...]}`` → ``{"cuts": [[token, ...], ...], "cpu": s}``, in order;
* ``{"op": "group", "texts": [compact key, ...]}`` → ``{"groups": [[group_id, representative,
  [member, ...]], ...], "cpu": s}``, the duplicate groups of two or more posts.

``cpu`` is the CPU time the worker has used since it was ready. It exits at the end of its
input. JSON rather than pickle: nothing a peer sends can make the other side run code.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from fugong.opinion.text._frames import read_frame, write_frame


def handle(request: dict[str, Any]) -> dict[str, Any]:
    from fugong.opinion.text.dedup import group_keys
    from fugong.opinion.text.segment import _cut_uncached

    texts = [str(t) for t in request["texts"]]
    if request["op"] == "cut":
        return {"cuts": [_cut_uncached(t) for t in texts]}
    if request["op"] == "group":
        groups = group_keys(texts)
        return {"groups": [[g.group_id, g.representative, g.members] for g in groups if g.size > 1]}
    raise ValueError(f"unknown op {request['op']!r}")


def main() -> None:
    # Frames go to the original stdout; anything a library prints goes to stderr instead, so
    # it can never corrupt the channel.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    from fugong.opinion.text.segment import tokenizer

    tokenizer()
    write_frame(channel, {"ready": True})
    started = time.process_time()
    while (body := read_frame(sys.stdin.buffer)) is not None:
        answer = handle(json.loads(body))
        # CPU since ready, all of it (decoding requests, encoding earlier answers), not just
        # the work itself: benchmarks charge it to the work.
        answer["cpu"] = time.process_time() - started
        write_frame(channel, answer)


if __name__ == "__main__":
    main()
