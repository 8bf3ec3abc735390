"""Text normalisation for Chinese posts: script, width, whitespace, and analysis-only stripping.

Contracts:

* :func:`normalise` is lossless in meaning: Traditional → Simplified (OpenCC ``t2s``, whose
  dictionaries ship inside the installed package, so nothing is fetched at run time),
  full-width ASCII → half-width, runs of whitespace → one space, trimmed. It is idempotent.
* :func:`analysis_text` additionally removes what must not drive analysis: URLs, ``@mentions``,
  repost chains (``//@user:``) and repost prefixes (``转发：``), and ``#`` topic markers (the topic
  words stay). Use it for segmentation, dedup and sentiment, never for display.
* :func:`author_hash` is the only form in which an author handle may be stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from functools import lru_cache
from pathlib import Path

import opencc as opencc_module
from opencc import OpenCC

__all__ = [
    "analysis_text",
    "author_hash",
    "compact_key",
    "fullwidth_to_halfwidth",
    "normalise",
    "to_simplified",
]

# Full-width forms U+FF01..U+FF5E map to ASCII U+0021..U+007E by a fixed offset; U+3000 is the
# ideographic space. A translate table makes this one C-level pass per string.
_WIDTH_TABLE: dict[int, int] = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_WIDTH_TABLE[0x3000] = 0x20

_WS = re.compile(r"\s+")
_URL = re.compile(r"(?:https?|ftp)://\S+|www\.\S+", re.IGNORECASE)
# Weibo-style repost chain "//@someone:" — everything from the marker on is quoted material.
_REPOST_CHAIN = re.compile(r"//\s*@[^\s:：]{1,30}\s*[:：].*$", re.DOTALL)
# A mention ends at whitespace or punctuation; handles are at most 30 characters.
_MENTION = re.compile(r"@[\w\u4e00-\u9fff\-]{1,30}")
_REPOST_PREFIX = re.compile(r"^\s*(?:转发|转|repost|rt)\s*[:：]?\s*", re.IGNORECASE)
_HASHTAG_MARK = re.compile(r"#([^#\s]{1,40})#")
# For str patterns, \w is exactly the characters for which str.isalnum() holds, plus "_".
_NOT_ALNUM = re.compile(r"[\W_]+")

# OpenCC's pure-Python converter is not documented as thread-safe; one instance per thread.
_local = threading.local()


def _converter() -> OpenCC:
    conv = getattr(_local, "t2s", None)
    if conv is None:
        conv = OpenCC("t2s")
        _local.t2s = conv
    return conv


@lru_cache(maxsize=65536)
def _t2s_cached(text: str) -> str:
    # Reposts repeat the same strings many times; caching the slow pure-Python conversion pays.
    return str(_converter().convert(text))


@lru_cache(maxsize=1)
def _traditional_marks() -> frozenset[str] | None:
    """Characters without which OpenCC's t2s is the identity; None if the tables can't be read.

    A conversion changes a text only through a dictionary entry whose key differs from its value,
    and such a key holds a character that differs (at its position, for equal-length entries; any
    of its characters otherwise). Most posts are already Simplified, and the pure-Python converter
    is the slowest step of the pipeline, so posts with none of these characters skip it. Reads the
    ``t2s`` tables that ship in the opencc package, so the gate always matches the converter.
    """
    root = Path(str(getattr(opencc_module, "__file__", ""))).parent / "dictionary"
    marks: set[str] = set()
    try:
        for name in ("TSCharacters.txt", "TSPhrases.txt"):
            for line in (root / name).read_text(encoding="utf-8").splitlines():
                if "\t" not in line:
                    continue
                key, values = line.split("\t", 1)
                for value in values.split(" "):
                    if len(key) == len(value):
                        marks.update(k for k, v in zip(key, value, strict=True) if k != v)
                    elif key != value:
                        marks.update(key)
    except OSError:
        return None
    return frozenset(marks)


def to_simplified(text: str) -> str:
    """Convert Traditional Chinese characters and phrases to Simplified (OpenCC ``t2s``).

    Simplified input and non-Chinese text pass through unchanged.
    """
    if not text or text.isascii():
        return text
    marks = _traditional_marks()
    if marks is not None and marks.isdisjoint(text):
        return text
    return _t2s_cached(text)


def fullwidth_to_halfwidth(text: str) -> str:
    """Map full-width ASCII variants (``ＡＢＣ１２３，！``) and U+3000 to their half-width forms."""
    return text.translate(_WIDTH_TABLE)


def normalise(text: str) -> str:
    """Simplified script, half-width ASCII, single spaces, trimmed. Idempotent."""
    text = fullwidth_to_halfwidth(text)
    text = to_simplified(text)
    return _WS.sub(" ", text).strip()


def analysis_text(text: str) -> str:
    """:func:`normalise`, then strip URLs, mentions, repost markers and ``#`` topic marks.

    The result is for analysis (segmentation, dedup, sentiment) only; it loses information that a
    reader needs and must not replace the stored original.
    """
    text = normalise(text)
    text = _URL.sub(" ", text)
    text = _REPOST_CHAIN.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = _HASHTAG_MARK.sub(r"\1", text)
    # A repost prefix may follow a stripped mention ("@某某 转发：..."), so trim before matching.
    text = _REPOST_PREFIX.sub("", _WS.sub(" ", text).strip())
    return _WS.sub(" ", text).strip()


# A post's compact key is needed by ingest (fingerprint), dedup and the classifier's features;
# a bounded cache makes the repeats free, as for segmentation.
@lru_cache(maxsize=32768)
def compact_key(text: str) -> str:
    """Analysis text reduced to letters and digits (CJK included), lower-cased.

    Punctuation, emoji, symbols and spaces are dropped, so two posts that differ only in those
    have the same key. Used by exact dedup and by the rumour matcher.
    """
    return _NOT_ALNUM.sub("", analysis_text(text).lower())


def author_hash(handle: str, key: bytes | str) -> str:
    """HMAC-SHA256 of an author handle under a deployment secret, as 64 hex characters.

    The handle is normalised first (trimmed, leading ``@`` removed, case-folded, width and script
    normalised) so ``@ＡＢＣ`` and ``abc`` hash alike. An empty key or handle is a
    :class:`ValueError`: an unkeyed hash of a short handle is trivially reversible.
    """
    key_bytes = key.encode("utf-8") if isinstance(key, str) else key
    if not key_bytes:
        raise ValueError("author_hash needs a non-empty key")
    canonical = normalise(handle).lstrip("@").strip().casefold()
    if not canonical:
        raise ValueError("author_hash needs a non-empty handle")
    return hmac.new(key_bytes, canonical.encode("utf-8"), hashlib.sha256).hexdigest()
