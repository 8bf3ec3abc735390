"""Keywords (TF-IDF, TextRank) and topics (clusters of posts named by their keywords).

All three are implemented here on :func:`~.segment.tokens` so that they are small, explainable and
deterministic:

* **TF-IDF keywords** of a set of posts: ``score(w) = tf(w) · idf(w)`` where ``tf`` is w's share
  of all tokens in the set and ``idf(w) = ln((1 + N) / (1 + df(w))) + 1`` over a *background*
  corpus of N posts (by default the set itself; for "today's keywords" pass the whole window so
  that words present every day sink).
* **TextRank**: an undirected graph whose nodes are content tokens of at least two characters,
  with an edge weight for every co-occurrence within ``window`` tokens of the same post; node
  scores are the weighted PageRank (damping 0.85) by power iteration with numpy.
* **Topics**: spherical k-means (cosine) on L2-normalised TF-IDF post vectors with k-means++
  seeding from a fixed seed; when ``k`` is not given it is chosen by the best mean silhouette.
  Each topic is named by the highest-weighted words of its centroid.

Ties are broken by the word itself, so outputs never depend on dict or hash order.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import numpy as np
import numpy.typing as npt

from fugong.opinion.text.segment import tokens
from fugong.opinion.text.sentiment import DEGREES, NEGATIONS

__all__ = [
    "Keyword",
    "TfidfVectorizer",
    "Topic",
    "bucket_by_period",
    "cluster_topics",
    "keywords_by_period",
    "period_key",
    "textrank_keywords",
    "tfidf_keywords",
    "topics_by_period",
]

Period = Literal["day", "week"]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Keyword:
    word: str
    score: float


@dataclass(frozen=True)
class Topic:
    """A cluster of posts. ``members`` are input indices; ``keywords`` name the topic."""

    topic_id: int
    keywords: tuple[str, ...]
    members: tuple[int, ...]

    @property
    def label(self) -> str:
        return " / ".join(self.keywords)


def _is_keyword(token: str, min_len: int) -> bool:
    # Single characters are mostly particles or fragments; requiring two keeps keywords readable.
    # Negation and degree words survive stop-word removal for sentiment's sake, but say nothing
    # about what a set of posts is about.
    return len(token) >= min_len and token not in NEGATIONS and token not in DEGREES


def _tokenise_all(texts: Sequence[str]) -> list[list[str]]:
    return [tokens(t) for t in texts]


def _idf(docs: Sequence[Sequence[str]]) -> tuple[dict[str, float], int]:
    df: Counter[str] = Counter()
    for doc in docs:
        df.update(set(doc))
    n = len(docs)
    return {w: math.log((1 + n) / (1 + c)) + 1.0 for w, c in df.items()}, n


def _top(scores: dict[str, float], top_k: int) -> list[Keyword]:
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [Keyword(w, float(s)) for w, s in ranked[:top_k]]


def tfidf_keywords(
    texts: Sequence[str],
    *,
    background: Sequence[str] | None = None,
    top_k: int = 10,
    min_len: int = 2,
) -> list[Keyword]:
    """Top ``top_k`` TF-IDF keywords of ``texts`` against ``background`` (default: ``texts``).

    A word absent from the background gets the highest possible idf (df = 0).
    """
    docs = _tokenise_all(texts)
    bg_docs = docs if background is None else _tokenise_all(background)
    idf, n_bg = _idf(bg_docs)
    max_idf = math.log(1 + n_bg) + 1.0
    tf: Counter[str] = Counter()
    for doc in docs:
        tf.update(t for t in doc if _is_keyword(t, min_len))
    total = sum(tf.values())
    if not total:
        return []
    scores = {w: (c / total) * idf.get(w, max_idf) for w, c in tf.items()}
    return _top(scores, top_k)


def textrank_keywords(
    texts: Sequence[str],
    *,
    top_k: int = 10,
    window: int = 5,
    damping: float = 0.85,
    min_len: int = 2,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> list[Keyword]:
    """Top ``top_k`` words by TextRank over all ``texts`` (edges never cross posts).

    Scores sum to 1 over the graph's nodes. Deterministic: nodes are indexed in sorted order and
    iteration starts from the uniform vector.
    """
    if window < 2:
        raise ValueError("window must be >= 2")
    docs = [[t for t in doc if _is_keyword(t, min_len)] for doc in _tokenise_all(texts)]
    vocab = sorted({t for doc in docs for t in doc})
    if not vocab:
        return []
    index = {w: i for i, w in enumerate(vocab)}
    n = len(vocab)
    # Edge list rather than a dense n×n matrix: a day's vocabulary can be tens of thousands.
    edges: Counter[tuple[int, int]] = Counter()
    for doc in docs:
        for i, w in enumerate(doc):
            for other in doc[i + 1 : i + window]:
                if other != w:
                    a, b = index[w], index[other]
                    edges[(a, b)] += 1
                    edges[(b, a)] += 1
    ordered = sorted(edges.items())
    rows = np.array([e[0][0] for e in ordered], dtype=np.int64)
    cols = np.array([e[0][1] for e in ordered], dtype=np.int64)
    vals = np.array([e[1] for e in ordered], dtype=np.float64)
    strength = np.bincount(cols, weights=vals, minlength=n)
    # Mass flows from j to i in proportion to w_ij / strength_j. Isolated words (no
    # co-occurrence) spread their mass uniformly, the usual dangling-node fix.
    flow = vals / strength[cols] if len(vals) else vals
    dangling = strength == 0
    score = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        spread = np.bincount(rows, weights=flow * score[cols], minlength=n)
        new = (1 - damping) / n + damping * (spread + score[dangling].sum() / n)
        if float(np.abs(new - score).sum()) < tol:
            score = new
            break
        score = new
    return _top({w: float(score[i]) for i, w in enumerate(vocab)}, top_k)


class TfidfVectorizer:
    """TF-IDF vectors of token lists, rows L2-normalised; vocabulary capped by document frequency.

    ``fit`` keeps the ``max_features`` words with the highest df (ties by word), dropping words in
    fewer than ``min_df`` documents. ``transform`` uses sublinear tf (``1 + ln count``).
    """

    def __init__(self, *, max_features: int = 5000, min_df: int = 1) -> None:
        self.max_features = max_features
        self.min_df = min_df
        self.vocabulary: dict[str, int] = {}
        self.idf: FloatArray = np.zeros(0)

    def fit(self, docs: Sequence[Sequence[str]]) -> TfidfVectorizer:
        df: Counter[str] = Counter()
        for doc in docs:
            df.update(set(doc))
        kept = sorted((w for w, c in df.items() if c >= self.min_df), key=lambda w: (-df[w], w))
        kept = sorted(kept[: self.max_features])
        self.vocabulary = {w: i for i, w in enumerate(kept)}
        n = len(docs)
        self.idf = np.array([math.log((1 + n) / (1 + df[w])) + 1.0 for w in kept])
        return self

    def transform(self, docs: Sequence[Sequence[str]]) -> FloatArray:
        matrix = np.zeros((len(docs), len(self.vocabulary)), dtype=np.float64)
        for r, doc in enumerate(docs):
            for w, c in Counter(doc).items():
                col = self.vocabulary.get(w)
                if col is not None:
                    matrix[r, col] = (1.0 + math.log(c)) * self.idf[col]
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        out: FloatArray = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
        return out

    def fit_transform(self, docs: Sequence[Sequence[str]]) -> FloatArray:
        return self.fit(docs).transform(docs)


def _kmeans_cosine(
    x: FloatArray, k: int, rng: np.random.Generator, max_iter: int = 100
) -> tuple[npt.NDArray[np.int64], FloatArray]:
    n = x.shape[0]
    # k-means++ seeding with cosine distance (1 - similarity) on unit vectors.
    centres = [int(rng.integers(n))]
    dist = 1.0 - x @ x[centres[0]]
    for _ in range(1, k):
        d = np.clip(dist, 0.0, None)
        total = d.sum()
        nxt = int(rng.choice(n, p=d / total)) if total > 0 else int(rng.integers(n))
        centres.append(nxt)
        dist = np.minimum(dist, 1.0 - x @ x[nxt])
    centroids = x[centres].copy()
    labels = np.full(n, -1, dtype=np.int64)
    for _ in range(max_iter):
        new_labels = np.argmax(x @ centroids.T, axis=1).astype(np.int64)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        for c in range(k):
            members = x[labels == c]
            if len(members):
                mean = members.sum(axis=0)
                norm = np.linalg.norm(mean)
                centroids[c] = mean / norm if norm > 0 else mean
    return labels, centroids


def _silhouette_cosine(x: FloatArray, labels: npt.NDArray[np.int64]) -> float:
    clusters = np.unique(labels)
    if len(clusters) < 2:
        return -1.0
    dist = np.clip(1.0 - x @ x.T, 0.0, None)
    onehot = (labels[:, None] == clusters[None, :]).astype(np.float64)
    sums = dist @ onehot  # sums[i, c]: total distance from i to members of cluster c
    counts = onehot.sum(axis=0)
    own = np.searchsorted(clusters, labels)
    rows = np.arange(len(labels))
    own_count = counts[own]
    a = np.divide(sums[rows, own], own_count - 1, out=np.zeros(len(labels)), where=own_count > 1)
    mean_other = sums / counts[None, :]
    mean_other[rows, own] = np.inf
    b = mean_other.min(axis=1)
    denom = np.maximum(a, b)
    s = np.divide(b - a, denom, out=np.zeros(len(labels)), where=denom > 0)
    s[own_count <= 1] = 0.0  # a singleton's silhouette is 0 by convention
    return float(s.mean())


def cluster_topics(
    texts: Sequence[str],
    *,
    k: int | None = None,
    max_k: int = 8,
    seed: int = 0,
    n_keywords: int = 3,
    max_features: int = 2000,
) -> list[Topic]:
    """Cluster posts into topics; returns topics ordered by size (largest first), then id.

    With ``k=None`` every k in ``2..max_k`` is tried and the best mean cosine silhouette wins
    (computed on at most 2,000 posts). Posts with no content tokens form no topic. The same
    inputs and seed give the same topics.
    """
    docs = _tokenise_all(texts)
    live = [i for i, d in enumerate(docs) if d]
    if not live:
        return []
    vec = TfidfVectorizer(max_features=max_features)
    x = vec.fit_transform([docs[i] for i in live])
    n = len(live)
    if k is None:
        candidates = [c for c in range(2, max_k + 1) if c < n]
        if not candidates:
            k = 1
        else:
            sample = np.arange(n)
            if n > 2000:
                sample = np.sort(np.random.default_rng(seed).choice(n, 2000, replace=False))
            best: tuple[float, int] = (-2.0, 1)
            for c in candidates:
                labels, _ = _kmeans_cosine(x, c, np.random.default_rng(seed))
                s = _silhouette_cosine(x[sample], labels[sample])
                if s > best[0] + 1e-12:
                    best = (s, c)
            k = best[1]
    k = max(1, min(k, n))
    labels, centroids = _kmeans_cosine(x, k, np.random.default_rng(seed))
    words = sorted(vec.vocabulary, key=vec.vocabulary.__getitem__)
    topics = []
    for c in range(k):
        members = tuple(live[i] for i in np.flatnonzero(labels == c))
        if not members:
            continue
        order = sorted(range(len(words)), key=lambda j: (-centroids[c, j], words[j]))
        names = tuple(words[j] for j in order if _is_keyword(words[j], 2) and centroids[c, j] > 0)
        topics.append(Topic(topic_id=c, keywords=names[:n_keywords], members=members))
    topics.sort(key=lambda t: (-len(t.members), t.topic_id))
    return [Topic(topic_id=i, keywords=t.keywords, members=t.members) for i, t in enumerate(topics)]


def period_key(when: date | datetime, period: Period) -> str:
    """``2020-03-02`` for a day, ISO week ``2020-W10`` for a week (Monday-based ISO weeks)."""
    day = when.date() if isinstance(when, datetime) else when
    if period == "day":
        return day.isoformat()
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    raise ValueError(f"unknown period {period!r}")


def bucket_by_period(
    items: Iterable[tuple[date | datetime, str]], period: Period = "day"
) -> dict[str, list[tuple[int, str]]]:
    """Group ``(time, text)`` items by period key; values keep the input index with the text.

    Keys are returned in ascending order.
    """
    buckets: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for i, (when, text) in enumerate(items):
        buckets[period_key(when, period)].append((i, text))
    return dict(sorted(buckets.items()))


def keywords_by_period(
    items: Sequence[tuple[date | datetime, str]],
    *,
    period: Period = "day",
    method: Literal["tfidf", "textrank"] = "tfidf",
    top_k: int = 10,
) -> dict[str, list[Keyword]]:
    """Keywords per day or week. TF-IDF uses all ``items`` as the background corpus."""
    buckets = bucket_by_period(items, period)
    background = [text for _, text in items]
    out: dict[str, list[Keyword]] = {}
    for key, members in buckets.items():
        texts = [t for _, t in members]
        if method == "tfidf":
            out[key] = tfidf_keywords(texts, background=background, top_k=top_k)
        else:
            out[key] = textrank_keywords(texts, top_k=top_k)
    return out


def topics_by_period(
    items: Sequence[tuple[date | datetime, str]],
    *,
    period: Period = "week",
    k: int | None = None,
    seed: int = 0,
) -> dict[str, list[Topic]]:
    """Topics per day or week; ``Topic.members`` are indices into ``items`` (not the bucket)."""
    out: dict[str, list[Topic]] = {}
    for key, members in bucket_by_period(items, period).items():
        topics = cluster_topics([t for _, t in members], k=k, seed=seed)
        out[key] = [
            Topic(t.topic_id, t.keywords, tuple(members[m][0] for m in t.members)) for t in topics
        ]
    return out
