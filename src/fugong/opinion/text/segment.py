"""Word segmentation: jieba with the epidemic-domain dictionary and the stop-word list.

Everything is read from files inside installed packages: jieba's own bundled dictionary, and
``data/epidemic_dict.txt`` / ``data/stopwords.txt`` next to this module. jieba's prefix-dict
cache is written only to a private temporary directory made for this process (never into
site-packages, never to a shared, guessable path that another user could plant).

:func:`cut` keeps every token (sentiment needs negation and degree words); :func:`tokens` is the
content-word view used by keywords, topics and the classifier. Cuts are cached per text, so a
post is segmented once for search, keywords and sentiment. :func:`segment_many` cuts a large
batch on every core: worker processes (:mod:`.workers`) take a share of it.
"""

from __future__ import annotations

import atexit
import logging
import queue
import shutil
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from importlib import resources
from itertools import islice
from typing import Any

from fugong.opinion.text import workers
from fugong.opinion.text.normalise import analysis_text

__all__ = [
    "clear_caches",
    "content_tokens",
    "cut",
    "domain_terms",
    "segment_many",
    "start_segmenting",
    "stopwords",
    "tokenizer",
    "tokens",
]

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


#: jieba's HMM discovers out-of-dictionary words (names, slang) by a Viterbi pass over every
#: run of unknown characters. It is off: the epidemic dictionary already holds the domain's terms,
#: the pass cost a third of segmentation time, and on the shipped labelled sample (5 seeded 70/30
#: splits) held-out accuracy went up without it: logreg 0.824 -> 0.836, nb 0.830 -> 0.860 (the
#: lexicon 0.692 -> 0.695). Unknown words become single characters, the same way at ingest and
#: in search queries, so search still matches.
HMM = False


# One post is cut for keywords, the lexicon and the classifier, and reposts repeat texts; a
# bounded cache of immutable tuples makes the repeats free. A plain dict rather than lru_cache so
# that :func:`segment_many` can fill it with cuts made in worker processes. Insertion order is
# age: when full, the oldest eighth goes.
_CUT_CACHE: dict[str, tuple[str, ...]] = {}
_CUT_CACHE_MAX = 65536
_cache_lock = threading.Lock()


def _cut_cached(text: str) -> tuple[str, ...]:
    got = _CUT_CACHE.get(text)
    if got is None:
        got = tuple(map(sys.intern, _cut_uncached(text)))
        _remember([(text, got)])
    return got


def _remember(pairs: Iterable[tuple[str, Sequence[str]]]) -> None:
    # Tokens are interned: a language's words repeat endlessly, so the cache then holds one
    # string per distinct word rather than one per occurrence (a tenth of the memory).
    with _cache_lock:
        for text, toks in pairs:
            if len(_CUT_CACHE) >= _CUT_CACHE_MAX:
                for old in list(islice(_CUT_CACHE, _CUT_CACHE_MAX // 8)):
                    del _CUT_CACHE[old]
            _CUT_CACHE[text] = tuple(map(sys.intern, toks))


def _cut_uncached(text: str) -> tuple[str, ...]:
    clean = analysis_text(text)
    if not clean:
        return ()
    return tuple(t for t in tokenizer().lcut(clean, HMM=HMM) if t.strip())


def clear_caches() -> None:
    """Forget every cut and token list (benchmarks use this to start cold)."""
    with _cache_lock:
        _CUT_CACHE.clear()
    _tokens_cached.cache_clear()


# -- segmenting many posts on several cores ---------------------------------------------------

#: Fewer texts than this (not yet cut) are cut in the calling process: below it, shipping the
#: work to another process costs more than it saves.
PARALLEL_MIN = 2000
#: Callers that cut a batch and then use the cuts should take at most this many texts at a
#: time, so that none is evicted from the cache before it is used.
BATCH_MAX = _CUT_CACHE_MAX // 4
_CHUNK = 400


def segment_many(texts: Iterable[str]) -> None:
    """Cut every text not cut yet, on all cores when there are many, and cache the cuts.

    Afterwards :func:`cut` and :func:`tokens` of these texts cost a lookup. The cuts are the
    same as :func:`cut` makes in this process. Work is shared without a fixed split: each
    ready worker takes chunks from the end while this process takes them from the start, so a
    slow or still-starting worker delays nothing; a worker that fails has its chunk cut here.
    """
    start_segmenting(texts)()


def start_segmenting(texts: Iterable[str]) -> Callable[[], None]:
    """:func:`segment_many`, begun: the workers start on the texts at once, and this process
    can do other work before it calls the returned function, which joins in and returns when
    every text is cut."""
    todo = [t for t in dict.fromkeys(texts) if t not in _CUT_CACHE]
    helpers = workers.live_workers() if len(todo) >= PARALLEL_MIN else []
    chunks = [todo[i : i + _CHUNK] for i in range(0, len(todo), _CHUNK)]
    state = {"front": 0, "back": len(chunks)}  # chunks[front:back] are still unclaimed
    claim = threading.Lock()
    done = threading.Semaphore(0)

    def take(from_back: bool) -> int | None:
        with claim:
            if state["front"] >= state["back"]:
                return None
            if from_back:
                state["back"] -= 1
                return state["back"]
            state["front"] += 1
            return state["front"] - 1

    def serve(worker: workers.Worker) -> None:
        # Two requests in flight per worker, so that it starts on the next chunk while this
        # process is still reading the last answer. A separate sender thread writes them: with
        # one thread, a request and an answer that both overflow their pipes would deadlock.
        with worker.lock:
            if not worker.wait_ready():
                return
            slots = threading.Semaphore(2)
            sent: queue.SimpleQueue[int | None] = queue.SimpleQueue()

            def send() -> None:
                while True:
                    slots.acquire()
                    i = None if worker.broken else take(from_back=True)
                    if i is not None:
                        try:
                            worker.send("cut", chunks[i])
                        except OSError:
                            worker.broken = True
                    sent.put(i)
                    if i is None:
                        return

            sender = threading.Thread(target=send, daemon=True, name="fugong-segment-send")
            sender.start()
            while (i := sent.get()) is not None:
                try:
                    if worker.broken:
                        raise OSError("text worker is broken")
                    cuts = worker.receive("cuts")
                    if len(cuts) != len(chunks[i]):
                        raise ValueError("text worker: wrong number of cuts")
                    _remember(zip(chunks[i], cuts, strict=True))
                except (OSError, EOFError, ValueError, TypeError):
                    worker.broken = True
                    _remember((t, _cut_uncached(t)) for t in chunks[i])
                finally:
                    done.release()
                    slots.release()
            sender.join()

    started = []
    for w in helpers:
        t = threading.Thread(target=serve, args=(w,), daemon=True, name="fugong-segment")
        t.start()
        started.append((t, w.ready))

    def finish() -> None:
        while (i := take(from_back=False)) is not None:
            _remember((t, _cut_uncached(t)) for t in chunks[i])
            done.release()
        for _ in chunks:
            done.acquire()
        # A ready worker's thread is about to let go of it: wait, so that the worker is free
        # for the caller's next job. A still-starting one is left to finish in the background.
        for t, was_ready in started:
            if was_ready:
                t.join()

    return finish


def _is_content(token: str) -> bool:
    return any(ch.isalnum() for ch in token) and not token.isdigit()


# token -> its content form (lower-cased) or "" when it is filtered out. A language's tokens
# repeat endlessly, so deciding each distinct token once makes the filter one dict lookup per
# token. Bounded: past the limit new tokens are decided without being remembered.
_CONTENT_MEMO: dict[str, str] = {}
_CONTENT_MEMO_MAX = 200_000


def _content_form(token: str) -> str:
    t = token.lower()
    form = t if t not in stopwords() and _is_content(t) else ""
    if len(_CONTENT_MEMO) < _CONTENT_MEMO_MAX:
        _CONTENT_MEMO[token] = form
    return form


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
    memo = _CONTENT_MEMO
    out = []
    for tok in cut_tokens:
        form = memo.get(tok)
        if form is None:
            form = _content_form(tok)
        if form:
            out.append(form)
    return out
