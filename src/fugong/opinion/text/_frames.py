"""Length-prefixed JSON frames: the wire format between :mod:`.segment` and its worker
processes (:mod:`._segment_worker`). A frame is a 4-byte little-endian length and that many
bytes of UTF-8 JSON. JSON rather than pickle: nothing a peer sends can make the other side run
code.
"""

from __future__ import annotations

import json
from typing import IO


def read_frame(stream: IO[bytes]) -> bytes | None:
    """One frame's payload, or None at a clean end of input."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    size = int.from_bytes(head, "little")
    body = stream.read(size)
    if len(body) < size:
        raise EOFError("segmentation worker: frame cut short")
    return body


def write_frame(stream: IO[bytes], payload: object) -> None:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    stream.write(len(body).to_bytes(4, "little") + body)
    stream.flush()
