"""Segmentation uses the shipped epidemic dictionary and stop words, nothing else."""

from __future__ import annotations

import os
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from fugong.opinion.text import cut, domain_terms, stopwords, tokens, workers
from fugong.opinion.text.segment import tokenizer

REQUIRED_TERMS = [
    "确诊",
    "无症状",
    "无症状感染者",
    "密接",
    "密切接触者",
    "次密接",
    "封控",
    "封控区",
    "管控区",
    "防范区",
    "核酸",
    "核酸检测",
    "抗原",
    "复工",
    "复产",
    "复学",
    "口罩",
    "谣言",
    "隔离",
    "居家隔离",
    "集中隔离",
    "健康码",
    "行程卡",
    "疫苗",
    "加强针",
    "发热门诊",
    "流调",
    "时空伴随者",
    "方舱",
    "清零",
    "解封",
    "停工",
    "停课",
    "物资",
    "测温",
    "红码",
    "黄码",
    "绿码",
]


def test_domain_dictionary_has_the_required_terms() -> None:
    terms = domain_terms()
    assert len(terms) >= 80
    assert set(REQUIRED_TERMS) <= set(terms)
    assert all(freq > 0 and pos for freq, pos in terms.values())


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("小区发现一名无症状感染者", "无症状感染者"),
        ("他被判定为时空伴随者", "时空伴随者"),
        ("我是次密接要居家隔离吗", "次密接"),
        ("封控区和管控区今天做核酸检测", "核酸检测"),
        ("发热门诊在哪里", "发热门诊"),
    ],
)
def test_domain_terms_stay_one_token(text: str, term: str) -> None:
    assert term in cut(text)


def test_traditional_input_is_segmented_as_simplified() -> None:
    assert "无症状感染者" in tokens("發現一名無症狀感染者")


def test_stop_words_and_punctuation_are_removed_but_negation_is_kept() -> None:
    toks = tokens("我们的小区今天，已经开始了核酸检测！但是我不满意。")
    assert "核酸检测" in toks
    assert not {"我们", "的", "今天", "已经", "了", "但是", "，", "！", "。"} & set(toks)
    assert "不" in toks  # negation words are never stop words: sentiment needs them
    assert {"的", "了", "，"} <= stopwords()


def test_jieba_global_tokenizer_is_left_alone() -> None:
    # Our dictionary goes into a private Tokenizer; other jieba users see stock behaviour.
    tokens("时空伴随者")
    # jieba is imported by our segment module (which silences its import-time warnings), so
    # reach it through sys.modules rather than importing it here under "-W error".
    jieba = sys.modules["jieba"]
    assert jieba.dt.FREQ.get("时空伴随者") is None


def test_jieba_cache_lives_in_a_private_temp_dir() -> None:
    cache_dir = Path(tokenizer().tmp_dir).resolve()
    assert cache_dir.is_relative_to(Path(tempfile.gettempdir()).resolve())
    assert cache_dir.name.startswith("fugong-jieba-")
    assert not cache_dir.is_relative_to(Path(sysconfig.get_paths()["purelib"]).resolve())


def _many_posts() -> list[str]:
    places = ["萝岗", "夏港", "联和", "永和", "长岭"]
    return [
        f"{places[i % 5]}{i}栋今天开始核酸检测，居民请带好身份证，不要聚集！第{i % 7}批"
        for i in range(120)
    ]


@pytest.fixture
def one_worker(monkeypatch: pytest.MonkeyPatch) -> Any:
    from fugong.opinion.text import segment

    monkeypatch.setattr(segment, "PARALLEL_MIN", 1)
    monkeypatch.setattr(segment, "_CHUNK", 7)
    monkeypatch.setattr(workers, "worker_count", lambda: 1)
    segment.clear_caches()
    yield segment
    workers.stop_workers()
    segment.clear_caches()


def test_a_worker_process_cuts_exactly_as_this_process(one_worker: Any) -> None:
    segment = one_worker
    texts = _many_posts()
    assert workers.start_workers() == 1
    (worker,) = workers.live_workers()
    with worker.lock:
        worker.send("cut", texts[:10])
        cuts = worker.receive("cuts")
    assert cuts == [list(segment._cut_uncached(t)) for t in texts[:10]]
    segment.segment_many(texts)
    assert [segment.cut(t) for t in texts] == [list(segment._cut_uncached(t)) for t in texts]


def test_a_dead_worker_costs_nothing_but_time(
    one_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment = one_worker
    texts = _many_posts()
    assert workers.start_workers() == 1
    (worker,) = workers.live_workers()
    worker.proc.kill()
    worker.proc.wait()
    # This process cuts slowly, so that the sharing hands the (dead) worker some chunks.
    cut_here = segment._cut_uncached

    def slow_cut(text: str) -> tuple[str, ...]:
        time.sleep(0.002)
        return cut_here(text)

    monkeypatch.setattr(segment, "_cut_uncached", slow_cut)
    segment.segment_many(texts)
    assert [segment.cut(t) for t in texts] == [list(segment._cut_uncached(t)) for t in texts]
    # The broken worker is replaced by a fresh one on the next large batch.
    assert worker.broken and workers.live_workers()[0] is not worker


def test_the_environment_caps_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(workers.WORKERS_ENV, "0")
    assert workers.worker_count() == 0 and workers.live_workers() == []
    assert workers.start_workers() == 0
    monkeypatch.setenv(workers.WORKERS_ENV, "lots")  # malformed: ignored
    assert workers.worker_count() == max(0, min(len(os.sched_getaffinity(0)), 4) - 1)
