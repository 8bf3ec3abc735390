"""Exact and near-duplicate grouping of posts (reposts with small edits are one item, not many).

Method:

* **Exact**: two posts are exact duplicates when their :func:`~.normalise.compact_key` (analysis
  text without punctuation, emoji, spaces, repost prefixes, URLs, mentions) is equal; the key's
  SHA-256 is the post's fingerprint.
* **Near**: character n-gram shingles (bigrams by default — Chinese words are 1–3 characters, so
  bigrams tolerate a changed character while still separating unrelated posts), MinHash
  signatures, LSH banding to find candidate pairs, and then the *exact* Jaccard similarity of the
  shingle sets is checked against ``threshold``. LSH only prunes; the decision is exact, so the
  result does not depend on hash luck beyond missing a rare candidate pair.
* Pairs that pass are merged with union-find (transitively: A~B and B~C puts A, B, C together).
  Every pair sharing a bucket of up to 1,024 posts is checked, in bulk: the shingle sets are the
  rows of a sparse 0/1 matrix, so intersections are row products (scipy), and the bands are
  bucketed by sorting (numpy) rather than post by post. Within a bucket of more than 1,024 posts
  a post is compared with one member per group seen there so far, which keeps viral reposts
  linear; a post similar only to a non-representative member of a group is still joined whenever
  they share another, smaller bucket.

Group ids are stable: a group's representative is its earliest member in input order (callers pass
posts in time order), and the id is derived from the representative's fingerprint. Appending
posts therefore never renames an existing group, unless a new post bridges two groups.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from fugong.opinion.text.normalise import compact_key

__all__ = [
    "DuplicateGroup",
    "fingerprint",
    "group_duplicates",
    "group_keys",
    "jaccard",
    "minhash_signature",
    "shingles",
]

_ALL_PAIRS_MAX = 64
_PRODUCT_MAX = 1024


@dataclass(frozen=True)
class DuplicateGroup:
    """A set of posts that are the same item. ``members`` are input indices, ascending."""

    group_id: str
    representative: int
    members: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.members)


def fingerprint(text: str) -> str:
    """SHA-256 hex of the post's compact key: equal for exact duplicates after normalisation."""
    return hashlib.sha256(compact_key(text).encode("utf-8")).hexdigest()


def shingles(key: str, n: int = 2) -> frozenset[str]:
    """Character n-grams of a compact key; a key shorter than ``n`` is its own single shingle."""
    if n < 1:
        raise ValueError("shingle size must be >= 1")
    if len(key) <= n:
        return frozenset([key]) if key else frozenset()
    return frozenset(key[i : i + n] for i in range(len(key) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|A ∩ B| / |A ∪ B|; two empty sets are identical (1.0)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


@lru_cache(maxsize=65536)
def _hash64(s: str) -> int:
    # Python's hash() is salted per process; group ids and LSH buckets must be reproducible.
    # Cached: Chinese bigrams repeat across posts, so most shingles were hashed before.
    return int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "little")


@lru_cache(maxsize=8)
def _hash_family(num_perm: int, seed: int) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    rng = np.random.default_rng(seed)
    xor = rng.integers(0, np.iinfo(np.uint64).max, size=num_perm, dtype=np.uint64, endpoint=True)
    # Odd multipliers make x -> x * m (mod 2^64) a bijection, so no two shingles collide by it.
    mult = rng.integers(0, np.iinfo(np.uint64).max, size=num_perm, dtype=np.uint64) | np.uint64(1)
    return xor, mult


def minhash_signature(
    shingle_set: frozenset[str], num_perm: int = 128, seed: int = 1
) -> npt.NDArray[np.uint64]:
    """MinHash signature: for each of ``num_perm`` hash functions, the minimum over the shingles.

    The functions are ``h_i(x) = ((x XOR a_i) * m_i) mod 2^64`` with fixed-seed random ``a_i`` and
    odd ``m_i``; numpy's unsigned array arithmetic wraps modulo 2^64, which is the intent.
    """
    xor, mult = _hash_family(num_perm, seed)
    if not shingle_set:
        return np.full(num_perm, np.iinfo(np.uint64).max, dtype=np.uint64)
    x = np.fromiter((_hash64(s) for s in sorted(shingle_set)), dtype=np.uint64)
    hashed = (x[None, :] ^ xor[:, None]) * mult[:, None]
    return np.asarray(hashed.min(axis=1), dtype=np.uint64)


def _signatures(
    sets: Sequence[frozenset[str]], num_perm: int, seed: int, chunk: int = 2048
) -> npt.NDArray[np.uint64]:
    """MinHash signatures of non-empty sets, one row each; equal to :func:`minhash_signature`.

    Vectorised over a chunk of posts at once (one hash matrix, then a segmented minimum), which
    is an order of magnitude faster than a numpy call per post.
    """
    xor, mult = _hash_family(num_perm, seed)
    out = np.empty((len(sets), num_perm), dtype=np.uint64)
    for start in range(0, len(sets), chunk):
        part = sets[start : start + chunk]
        lengths = np.array([len(s) for s in part], dtype=np.int64)
        x = np.fromiter(
            (_hash64(sh) for s in part for sh in sorted(s)), dtype=np.uint64, count=lengths.sum()
        )
        hashed = (x[None, :] ^ xor[:, None]) * mult[:, None]
        offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        out[start : start + len(part)] = np.minimum.reduceat(hashed, offsets, axis=1).T
    return out


def _signatures_of_rows(
    hashes: npt.NDArray[np.uint64],
    lengths: npt.NDArray[np.int64],
    num_perm: int,
    seed: int,
    chunk: int = 2048,
) -> npt.NDArray[np.uint64]:
    """:func:`_signatures` of sets given as their shingles' 64-bit hashes, concatenated row
    after row (``lengths`` per row, none empty). The minimum ignores order, so this equals
    :func:`minhash_signature` of each set."""
    xor, mult = _hash_family(num_perm, seed)
    out = np.empty((len(lengths), num_perm), dtype=np.uint64)
    ends = np.cumsum(lengths)
    for start in range(0, len(lengths), chunk):
        stop = min(start + chunk, len(lengths))
        lo = int(ends[start - 1]) if start else 0
        x = hashes[lo : int(ends[stop - 1])]
        hashed = (x[None, :] ^ xor[:, None]) * mult[:, None]
        offsets = ends[start:stop] - lengths[start:stop] - lo
        out[start:stop] = np.minimum.reduceat(hashed, offsets, axis=1).T
    return out


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # Keep the smaller index as root so the representative is the earliest post.
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            self.parent[hi] = lo


def _band_keys(sigs: npt.NDArray[np.uint64], bands: int) -> npt.NDArray[np.uint64]:
    """One 64-bit key per (post, band): the band's rows mixed by odd multipliers.

    Equal bands always give equal keys; unequal bands collide with probability about 2^-64,
    and a collision only adds a candidate pair, which the exact check then rejects.
    """
    rows = sigs.shape[1] // bands
    mult = _hash_family(rows, 7)[1]
    parts = sigs.reshape(len(sigs), bands, rows)
    with np.errstate(over="ignore"):
        mixed = parts * mult[None, None, :]
        out = mixed[:, :, 0].copy()
        for r in range(1, rows):
            out = (out ^ (out >> np.uint64(29))) * np.uint64(0x9E3779B97F4A7C15) + mixed[:, :, r]
    return out


def _bucket_runs(
    keys: npt.NDArray[np.uint64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Rows sorted by key (stable, so ascending row within a key), and the start and length of
    every run of two or more equal keys in that order."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    lengths = np.diff(np.concatenate((starts, [len(ordered)])))
    multi = lengths > 1
    return order.astype(np.int64), starts[multi], lengths[multi]


def _pairs_within(
    order: npt.NDArray[np.int64], starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Every pair (earlier, later) of rows inside each run, as an (m, 2) array."""
    if not len(starts):
        return np.empty((0, 2), dtype=np.int64)
    run_of = np.full(len(order), -1, dtype=np.int64)
    for_runs = np.repeat(np.arange(len(starts)), lengths)
    positions = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths, strict=True)])
    run_of[positions] = for_runs
    out = []
    # Offset k pairs each position with the one k further on when both are in the same run;
    # runs are at most _ALL_PAIRS_MAX long, so this is a bounded number of vector passes.
    for k in range(1, int(lengths.max())):
        same = np.flatnonzero((run_of[:-k] == run_of[k:]) & (run_of[:-k] >= 0))
        if not len(same):
            break
        out.append(np.stack((order[same], order[same + k]), axis=1))
    return np.concatenate(out) if out else np.empty((0, 2), dtype=np.int64)


def group_duplicates(
    texts: Sequence[str],
    *,
    threshold: float = 0.6,
    shingle_size: int = 2,
    num_perm: int = 128,
    bands: int = 32,
    seed: int = 1,
) -> list[DuplicateGroup]:
    """Group ``texts`` into duplicate clusters; every input index is in exactly one group.

    Two posts are joined when their compact keys are equal, or when the Jaccard similarity of
    their character ``shingle_size``-gram sets is at least ``threshold``. ``bands`` must divide
    ``num_perm``; with the defaults (32 bands of 4 rows) a pair of similarity 0.6 becomes a
    candidate with probability ≈ 0.98, and one of 0.2 with ≈ 0.05.

    Returns the groups ordered by representative index; singletons are groups of size 1.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold must be in (0, 1]")
    if num_perm % bands:
        raise ValueError("bands must divide num_perm")
    return group_keys(
        [compact_key(t) for t in texts],
        threshold=threshold,
        shingle_size=shingle_size,
        num_perm=num_perm,
        bands=bands,
        seed=seed,
    )


def group_keys(
    keys: Sequence[str],
    *,
    threshold: float = 0.6,
    shingle_size: int = 2,
    num_perm: int = 128,
    bands: int = 32,
    seed: int = 1,
) -> list[DuplicateGroup]:
    """:func:`group_duplicates` of texts given as their :func:`~.normalise.compact_key`
    (for a caller that has the keys already, such as a worker process)."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold must be in (0, 1]")
    if num_perm % bands:
        raise ValueError("bands must divide num_perm")
    n = len(keys)
    uf = _UnionFind(n)

    # Exact duplicates first: cheap, and it keeps repeated keys out of the MinHash work.
    first_of: dict[str, int] = {}
    uniques: list[int] = []
    for i, k in enumerate(keys):
        first = first_of.get(k)
        if first is None:
            first_of[k] = i
            uniques.append(i)
        else:
            uf.union(first, i)

    # Shingles as ids into one vocabulary: the rows of a sparse post × shingle matrix. A post
    # with no shingles (only emoji/URL) can only be an exact duplicate.
    vocab: dict[str, int] = {}
    flat: list[int] = []
    lengths: list[int] = []
    live: list[int] = []
    for i in uniques:
        key = keys[i]
        grams = (
            shingles(key, shingle_size)
            if len(key) <= shingle_size
            else {key[j : j + shingle_size] for j in range(len(key) - shingle_size + 1)}
        )
        if grams:
            live.append(i)
            lengths.append(len(grams))
            flat.extend(vocab.setdefault(g, len(vocab)) for g in grams)
    if len(live) < 2:
        return _groups(uf, keys)
    ids = np.asarray(flat, dtype=np.int64)
    indptr = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    sizes = np.asarray(lengths, dtype=np.int64)
    gram_hashes = np.fromiter((_hash64(g) for g in vocab), dtype=np.uint64, count=len(vocab))
    sigs = _signatures_of_rows(gram_hashes[ids], sizes, num_perm, seed)
    band_keys = _band_keys(sigs, bands)

    small: list[npt.NDArray[np.int64]] = []
    big: list[list[int]] = []
    for band in range(bands):
        order, starts, runs = _bucket_runs(band_keys[:, band])
        fits = runs <= _ALL_PAIRS_MAX
        small.append(_pairs_within(order, starts[fits], runs[fits]))
        big.extend(
            order[s : s + m].tolist() for s, m in zip(starts[~fits], runs[~fits], strict=True)
        )

    from scipy import sparse

    matrix = sparse.csr_matrix(
        (np.ones(len(ids), dtype=np.int32), ids, indptr), shape=(len(live), len(vocab))
    )
    # Small buckets (the usual case): every pair, each checked once however many buckets it
    # shares, all at once: |A ∩ B| is the row product of the 0/1 post × shingle matrix.
    # Pairs are unique as one integer each (a 1-D unique is much faster than a row unique).
    code = np.unique(np.concatenate(small) @ np.array([len(live), 1], dtype=np.int64))
    pairs = np.stack((code // len(live), code % len(live)), axis=1)
    if len(pairs):
        inter = np.asarray(
            matrix[pairs[:, 0]].multiply(matrix[pairs[:, 1]]).sum(axis=1), dtype=np.int64
        ).ravel()
        union = sizes[pairs[:, 0]] + sizes[pairs[:, 1]] - inter
        for a, b in pairs[inter >= threshold * union].tolist():
            uf.union(live[a], live[b])

    # A big bucket (often a common phrase, or a viral post's reposts) of up to _PRODUCT_MAX
    # posts: all pairs too, from one sparse product of its rows (a k × k table).
    huge: list[list[int]] = []
    for members in big:
        if len(members) > _PRODUCT_MAX:
            huge.append(members)
            continue
        rows = matrix[members]
        inter_k = np.asarray((rows @ rows.T).todense(), dtype=np.int64)
        size_k = sizes[members]
        union_k = size_k[:, None] + size_k[None, :] - inter_k
        for a, b in np.argwhere(np.triu(inter_k >= threshold * union_k, 1)).tolist():
            uf.union(live[members[a]], live[members[b]])

    # In a bucket bigger still compare each post with one member per group already seen there,
    # not with every member: a viral post's thousands of reposts share buckets, and all pairs
    # would be quadratic. A post similar only to a non-representative member of a group is
    # still joined whenever they share another, smaller bucket.
    row_sets: dict[int, frozenset[int]] = {}

    def row_set(r: int) -> frozenset[int]:
        got = row_sets.get(r)
        if got is None:
            got = row_sets[r] = frozenset(flat[indptr[r] : indptr[r + 1]])
        return got

    checked: set[tuple[int, int]] = set()
    find = uf.find
    for members in huge:
        reps: list[int] = []
        for m in members:
            joined = False
            root, lm = find(live[m]), lengths[m]
            for r in reps:
                if find(live[r]) == root:
                    joined = True
                    continue
                lr = lengths[r]
                if min(lm, lr) < threshold * max(lm, lr) or (r, m) in checked:
                    continue
                checked.add((r, m))
                common = len(row_set(r) & row_set(m))
                if common >= threshold * (lm + lr - common):
                    uf.union(live[r], live[m])
                    root = find(live[m])
                    joined = True
            if not joined:
                reps.append(m)
    return _groups(uf, keys)


def _groups(uf: _UnionFind, keys: Sequence[str]) -> list[DuplicateGroup]:
    grouped: dict[int, list[int]] = defaultdict(list)
    for i in range(len(keys)):
        grouped[uf.find(i)].append(i)
    return [
        DuplicateGroup(
            group_id="dup-" + hashlib.sha256(keys[root].encode("utf-8")).hexdigest()[:16],
            representative=root,
            members=tuple(m),
        )
        for root, m in sorted(grouped.items())
    ]
