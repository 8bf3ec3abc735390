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
  Within an LSH bucket of more than 64 posts a post is compared with one member per group seen
  there so far, which keeps viral reposts linear; a post similar only to a non-representative
  member of a group is still joined whenever they share another, smaller bucket.

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
    "jaccard",
    "minhash_signature",
    "shingles",
]

_ALL_PAIRS_MAX = 64


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
    rows = num_perm // bands
    n = len(texts)
    keys = [compact_key(t) for t in texts]
    prints = [hashlib.sha256(k.encode("utf-8")).hexdigest() for k in keys]
    uf = _UnionFind(n)

    # Exact duplicates first: cheap, and it keeps repeated keys out of the MinHash work.
    first_of: dict[str, int] = {}
    uniques: list[int] = []
    for i, fp in enumerate(prints):
        if fp in first_of:
            uf.union(first_of[fp], i)
        else:
            first_of[fp] = i
            uniques.append(i)

    sets = {i: shingles(keys[i], shingle_size) for i in uniques}
    # A post with no shingles (only emoji/URL) can only be an exact duplicate.
    live = [i for i in uniques if sets[i]]
    sigs = _signatures([sets[i] for i in live], num_perm, seed)
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    for row, i in enumerate(live):
        sig = sigs[row]
        for b in range(bands):
            buckets[(b, sig[b * rows : (b + 1) * rows].tobytes())].append(i)

    checked: set[tuple[int, int]] = set()
    for members in buckets.values():
        if len(members) < 2:
            continue
        # In a big bucket compare each post with one member per group already seen there, not
        # with every member: a viral post's thousand reposts share buckets, and all-pairs would
        # be quadratic. Small buckets (the usual case) compare all pairs.
        sparse = len(members) > _ALL_PAIRS_MAX
        reps: list[int] = []
        for pos, m in enumerate(members):
            joined = False
            for r in reps if sparse else members[:pos]:
                if uf.find(r) == uf.find(m):
                    joined = True
                    continue
                if (r, m) in checked:
                    continue
                checked.add((r, m))
                if jaccard(sets[r], sets[m]) >= threshold:
                    uf.union(r, m)
                    joined = True
            if sparse and not joined:
                reps.append(m)

    grouped: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        grouped[uf.find(i)].append(i)
    return [
        DuplicateGroup(group_id="dup-" + prints[root][:16], representative=root, members=tuple(m))
        for root, m in sorted(grouped.items())
    ]
