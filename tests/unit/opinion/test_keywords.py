"""TF-IDF and TextRank keywords, topics, per-period helpers."""

from __future__ import annotations

import itertools
from datetime import date, datetime

from fugong.opinion.text import (
    bucket_by_period,
    cluster_topics,
    keywords_by_period,
    period_key,
    textrank_keywords,
    tfidf_keywords,
    topics_by_period,
)

MASKS = [
    "药店的口罩卖完了，口罩到底什么时候补货",
    "口罩价格太贵，一个口罩要五块钱",
    "社区发放口罩，每户五只口罩",
    "医用口罩和外科口罩哪个好",
    "口罩厂加班生产口罩，供应会好转",
    "买不到口罩怎么办，药店都说口罩断货",
]
TESTS = [
    "明天全员核酸检测，采样点设在小区门口",
    "核酸检测排队两个小时，采样点人太多",
    "核酸检测结果什么时候出来",
    "采样点晚上也开放核酸检测吗",
    "今天做了核酸检测，采样点很有序",
    "核酸检测改为每三天一次，采样点不变",
]


def test_tfidf_keywords_rank_the_dominant_words() -> None:
    top = [k.word for k in tfidf_keywords(MASKS, top_k=3)]
    assert top[0] == "口罩"
    # Against a background where 口罩 is everywhere, the day's distinctive words rise instead.
    day = ["药店抗原试剂断货，口罩也没了", "抗原试剂涨价，口罩还算平价"]
    vs_bg = [k.word for k in tfidf_keywords(day, background=MASKS + TESTS + day, top_k=2)]
    assert "抗原" in vs_bg and "口罩" not in vs_bg
    assert tfidf_keywords(["的了，。"]) == []


def test_textrank_is_deterministic_and_finds_the_hub() -> None:
    corpus = MASKS + TESTS
    first = textrank_keywords(corpus, top_k=5)
    again = textrank_keywords(list(corpus), top_k=5)
    assert first == again
    assert first[0].word == "口罩"  # the word co-occurring with the most others
    assert all(a.score >= b.score for a, b in itertools.pairwise(first))


def test_textrank_scores_sum_to_one() -> None:
    allk = textrank_keywords(MASKS, top_k=10_000)
    assert abs(sum(k.score for k in allk) - 1.0) < 1e-6


def test_topics_separate_two_clearly_different_themes() -> None:
    texts = [t for pair in zip(MASKS, TESTS, strict=True) for t in pair]  # interleaved
    for k in (2, None):
        topics = cluster_topics(texts, k=k, seed=0)
        assert len(topics) == 2
        groups = {frozenset(t.members) for t in topics}
        assert groups == {frozenset(range(0, 12, 2)), frozenset(range(1, 12, 2))}
        assert {t.keywords[0] for t in topics} == {"口罩", "核酸检测"}
    assert cluster_topics(texts, k=2, seed=0) == cluster_topics(texts, k=2, seed=0)


def test_period_keys_and_buckets() -> None:
    assert period_key(date(2020, 3, 2), "week") == "2020-W10"
    assert period_key(datetime(2020, 3, 8, 23, 59), "week") == "2020-W10"
    assert period_key(datetime(2020, 3, 9, 0, 1), "day") == "2020-03-09"
    items = [(date(2020, 3, 9), "b"), (date(2020, 3, 2), "a"), (date(2020, 3, 9), "c")]
    assert bucket_by_period(items, "day") == {
        "2020-03-02": [(1, "a")],
        "2020-03-09": [(0, "b"), (2, "c")],
    }


def test_keywords_and_topics_by_day() -> None:
    items = [(date(2020, 3, 2), t) for t in MASKS] + [(date(2020, 3, 3), t) for t in TESTS]
    kw = keywords_by_period(items, period="day", top_k=1)
    assert kw["2020-03-02"][0].word == "口罩"
    assert kw["2020-03-03"][0].word in {"核酸检测", "采样点"}
    tr = keywords_by_period(items, period="day", method="textrank", top_k=1)
    assert tr["2020-03-02"][0].word == "口罩"
    by_week = topics_by_period(items, period="week", k=2)
    assert list(by_week) == ["2020-W10"]
    members = sorted(m for t in by_week["2020-W10"] for m in t.members)
    assert members == list(range(12))
