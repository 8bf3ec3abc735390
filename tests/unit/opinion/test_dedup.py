"""Exact and near-duplicate grouping with stable group ids."""

from __future__ import annotations

import random

import pytest

from fugong.opinion.text import DuplicateGroup, compact_key, dedup, fingerprint, group_duplicates
from fugong.opinion.text.dedup import _signatures, jaccard, minhash_signature, shingles

ORIGINAL = "市疾控中心提醒：本周六上午社区将统一发放口罩，每户五只，请居民带好身份证排队领取"
REPOSTS = [
    "转发：" + ORIGINAL,
    ORIGINAL + "😷😷👍",
    ORIGINAL.replace("，", " ").replace("：", "!!"),
    "市疾控中心提醒:本周日上午社区将统一发放口罩,每户六只,请居民带好身份证排队领取",
    "市疾控中心提醒：本周六上午社區將統一發放口罩，每戶五只，請居民帶好身份證排隊領取",
]
UNRELATED = [
    "明天上午八点至十二点在社区广场开展全员核酸检测，请居民错峰前往",
    "本周六上午社区超市正常营业，请居民错峰购物并佩戴口罩",
    "园区今天正式复工了，防疫措施很到位，员工都很安心",
    "有人散布谣言说自来水有病毒，搞得人心惶惶",
]


def _group_of(groups: list[DuplicateGroup], index: int) -> str:
    return next(g.group_id for g in groups if index in g.members)


def test_exact_duplicates_share_a_fingerprint() -> None:
    assert fingerprint(ORIGINAL) == fingerprint("转发：" + ORIGINAL + " 😷")
    assert fingerprint(ORIGINAL) != fingerprint(UNRELATED[0])


def test_reposts_with_small_edits_form_one_group_and_unrelated_posts_do_not_join() -> None:
    texts = [ORIGINAL, *REPOSTS, *UNRELATED]
    groups = group_duplicates(texts)
    main = next(g for g in groups if 0 in g.members)
    assert main.members == tuple(range(1 + len(REPOSTS)))
    assert main.representative == 0
    # Each unrelated post, though on the same themes (口罩, 社区, 周六), stays alone.
    assert sorted(g.size for g in groups) == [1] * len(UNRELATED) + [1 + len(REPOSTS)]
    assert sorted(m for g in groups for m in g.members) == list(range(len(texts)))


def test_group_ids_are_stable_when_posts_are_appended() -> None:
    first = group_duplicates([ORIGINAL, UNRELATED[0], REPOSTS[0]])
    later = group_duplicates([ORIGINAL, UNRELATED[0], REPOSTS[0], *REPOSTS[1:], UNRELATED[1]])
    assert _group_of(first, 0) == _group_of(later, 0)
    assert _group_of(first, 1) == _group_of(later, 1)
    assert _group_of(later, 5) == _group_of(later, 0)


def test_posts_without_text_group_only_with_exact_duplicates() -> None:
    groups = group_duplicates(["😷😷", "https://t.cn/x", ORIGINAL])
    assert [g.members for g in groups] == [(0, 1), (2,)]


def test_a_viral_post_with_hundreds_of_edited_reposts_is_one_group() -> None:
    # More reposts than the all-pairs bucket limit, so the per-group comparison path runs too.
    rng = random.Random(7)
    reposts = []
    for i in range(300):
        chars = list(ORIGINAL)
        for _ in range(2):
            chars[rng.randrange(len(chars))] = rng.choice("好的人大中")
        reposts.append(rng.choice(["", "转发：", "//"]) + "".join(chars) + "!" * (i % 3))
    groups = group_duplicates([*reposts, *UNRELATED])
    assert sorted(g.size for g in groups) == [1] * len(UNRELATED) + [300]


def test_batched_signatures_equal_the_single_post_signature() -> None:
    sets = [shingles(compact_key(t)) for t in [ORIGINAL, *UNRELATED]]
    batch = _signatures(sets, 128, 1, chunk=2)
    for row, s in zip(batch, sets, strict=True):
        assert (row == minhash_signature(s)).all()


def test_a_viral_post_in_a_bucket_too_big_for_all_pairs_is_still_one_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dedup, "_PRODUCT_MAX", 16)
    test_a_viral_post_with_hundreds_of_edited_reposts_is_one_group()


def test_groups_are_the_components_of_all_similar_pairs() -> None:
    # A brute-force reference: every pair compared, exact Jaccard of bigram sets. Posts share
    # clauses, so many pairs are candidates by chance and few are truly similar.
    rng = random.Random(11)
    clauses = [*UNRELATED, ORIGINAL, "今天药店又买不到口罩了", "小区封控通知太突然了", "感谢志愿者"]
    texts = []
    for i in range(400):
        if texts and rng.random() < 0.3:
            chars = list(rng.choice(texts))
            chars[rng.randrange(len(chars))] = rng.choice("好的人大中")
            texts.append("".join(chars))
        else:
            texts.append("，".join([f"{i}号楼", *rng.sample(clauses, 3)]))
    sets = [shingles(compact_key(t)) for t in texts]
    parent = list(range(len(texts)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for a in range(len(texts)):
        for b in range(a + 1, len(texts)):
            if sets[a] == sets[b] or jaccard(sets[a], sets[b]) >= 0.6:
                parent[max(root(a), root(b))] = min(root(a), root(b))
    expected = sorted(
        tuple(i for i in range(len(texts)) if root(i) == r) for r in set(map(root, range(400)))
    )
    got = sorted(g.members for g in group_duplicates(texts))
    assert got == expected
    assert sum(len(m) for m in got if len(m) > 1) > 100


def test_grouping_on_a_worker_process_equals_grouping_here(monkeypatch: pytest.MonkeyPatch) -> None:
    from fugong.opinion.text import workers

    texts = [ORIGINAL, *REPOSTS, *UNRELATED, *REPOSTS[:2]]
    monkeypatch.setattr(workers, "worker_count", lambda: 1)
    try:
        assert workers.start_workers() == 1
        before = workers.worker_cpu_seconds()
        got = workers.offload_grouping(texts).result()
        assert workers.worker_cpu_seconds() > before  # the worker did it
        (worker,) = workers.live_workers()
        worker.proc.kill()
        worker.proc.wait()
        # A dead worker fails the job, which is then done here, with the same answer.
        assert workers.offload_grouping(texts).result() == got
    finally:
        workers.stop_workers()
    assert got == [g for g in group_duplicates(texts) if g.size > 1]
    assert [g.members for g in got] == [(0, 1, 2, 3, 4, 5, 10, 11)]
