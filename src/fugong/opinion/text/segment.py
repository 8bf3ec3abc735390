"""Word segmentation: jieba with the epidemic-domain dictionary and the stop-word list.

Everything is read from files inside installed packages: jieba's own bundled dictionary, and
``data/epidemic_dict.txt`` / ``data/stopwords.txt`` next to this module. jieba's prefix-dict
cache is written only to a private temporary directory made for this process (never into
site-packages, never to a shared, guessable path that another user could plant).

:func:`cut` keeps every token (sentiment needs negation and degree words); :func:`tokens` is the
content-word view used by keywords, topics and the classifier.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from typing import Any

from fugong.opinion.text.normalise import analysis_text

__all__ = ["content_tokens", "cut", "domain_terms", "stopwords", "tokenizer", "tokens"]

_PKG = "fugong.opinion.text"
_lock = threading.Lock()
_tokenizer: Any = None


def _import_jieba() -> Any:
    # jieba 0.42.1 (its latest release) has non-raw regex literals ("\.") that compile with a
    # DeprecationWarning on first import, and imports pkg_resources, which newer setuptools
    # deprecate with a UserWarning. Neither is ours to fix; silence exactly those two so that a
    # "-W error" process (our test suite) can still import it.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"invalid escape sequence", category=DeprecationWarning
        )
        warnings.filterwarnings(
            "ignore", message=r"invalid escape sequence", category=SyntaxWarning
        )
        warnings.filterwarnings(
            "ignore", message=r"pkg_resources is deprecated", category=UserWarning
        )
        import jieba

    # jieba logs "Building prefix dict..." at DEBUG to stderr; that is noise in a CLI or server.
    logging.getLogger("jieba").setLevel(logging.WARNING)
    return jieba


def _read_data(name: str) -> str:
    return resources.files(_PKG).joinpath("data", name).read_text(encoding="utf-8")


def _data_lines(name: str) -> list[str]:
    lines = []
    for raw in _read_data(name).splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


@lru_cache(maxsize=1)
def domain_terms() -> dict[str, tuple[int, str]]:
    """The epidemic-domain dictionary: term → (frequency, part of speech).

    File format is jieba's user dictionary: ``term frequency pos`` per line; ``#`` comments.
    """
    terms: dict[str, tuple[int, str]] = {}
    for line in _data_lines("epidemic_dict.txt"):
        parts = line.split()
        if len(parts) != 3 or not parts[1].isdigit():
            raise ValueError(f"epidemic_dict.txt: malformed line {line!r}")
        terms[parts[0]] = (int(parts[1]), parts[2])
    return terms


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """The stop-word list (function words and punctuation), one entry per line in the file."""
    return frozenset(_data_lines("stopwords.txt"))


def tokenizer() -> Any:
    """The process-wide jieba ``Tokenizer``, built on first use (about one second)."""
    global _tokenizer
    if _tokenizer is not None:
        return _tokenizer
    with _lock:
        if _tokenizer is None:
            jieba = _import_jieba()
            tok = jieba.Tokenizer()
            cache_dir = tempfile.mkdtemp(prefix="fugong-jieba-")
            atexit.register(shutil.rmtree, cache_dir, True)
            tok.tmp_dir = cache_dir
            tok.initialize()
            for term, (freq, pos) in domain_terms().items():
                tok.add_word(term, freq, pos)
            _tokenizer = tok
    return _tokenizer


def cut(text: str) -> list[str]:
    """All tokens of the analysis text (see :func:`~.normalise.analysis_text`), spaces dropped.

    Nothing is removed but whitespace: negation words, degree words and punctuation stay, in
    order, which is what the lexicon sentiment scorer needs.
    """
    return list(_cut_cached(text))


@lru_cache(maxsize=32768)
def _cut_cached(text: str) -> tuple[str, ...]:
    # One post is cut for keywords, the lexicon and the classifier, and reposts repeat texts;
    # a bounded cache of immutable tuples makes the repeats free.
    clean = analysis_text(text)
    if not clean:
        return ()
    return tuple(t for t in tokenizer().lcut(clean) if t.strip())


def _is_content(token: str) -> bool:
    return any(ch.isalnum() for ch in token) and not token.isdigit()


def tokens(text: str) -> list[str]:
    """Content tokens: :func:`cut` without stop words, punctuation, symbols and bare numbers.

    Latin tokens are lower-cased. Order is preserved (TextRank uses adjacency).
    """
    return list(_tokens_cached(text))


@lru_cache(maxsize=32768)
def _tokens_cached(text: str) -> tuple[str, ...]:
    # Ingest (search index), keywords and the classifier's features all want a post's content
    # tokens; like the cut itself, they are computed once per distinct text.
    return tuple(content_tokens(_cut_cached(text)))


def content_tokens(cut_tokens: Iterable[str]) -> list[str]:
    """The :func:`tokens` filter applied to the output of :func:`cut` (saves a second cut)."""
    stops = stopwords()
    out = []
    for tok in cut_tokens:
        t = tok.lower()
        if t not in stops and _is_content(t):
            out.append(t)
    return out
