"""Normalisation: script, width, whitespace, analysis stripping, keyed author hashes."""

from __future__ import annotations

import pytest

from fugong.opinion.text import (
    analysis_text,
    author_hash,
    compact_key,
    fullwidth_to_halfwidth,
    normalise,
    to_simplified,
)


def test_traditional_to_simplified() -> None:
    assert to_simplified("無症狀感染者到過發熱門診") == "无症状感染者到过发热门诊"
    assert to_simplified("謠言：喝板藍根能預防病毒") == "谣言：喝板蓝根能预防病毒"


def test_fullwidth_to_halfwidth() -> None:
    assert fullwidth_to_halfwidth("ＣＯＶＩＤ－１９\u3000核酸") == "COVID-19 核酸"


def test_normalise_is_idempotent_and_collapses_whitespace() -> None:
    raw = "  復工　復產 \n\t今天開始！ "
    once = normalise(raw)
    assert once == "复工 复产 今天开始!"
    assert normalise(once) == once


def test_analysis_text_strips_urls_mentions_and_repost_markers() -> None:
    raw = "转发：@卫健委发布 #核酸检测# 明天全员核酸 https://t.cn/A6abc //@路人甲: 收到"
    assert analysis_text(raw) == "核酸检测 明天全员核酸"


def test_compact_key_ignores_punctuation_emoji_and_script() -> None:
    assert compact_key("明天，全員核酸！😷") == compact_key("明天全员核酸")


def test_author_hash_is_keyed_and_canonical() -> None:
    h = author_hash("@ＡＢＣ", "secret")
    assert h == author_hash("abc", "secret")
    assert len(h) == 64 and int(h, 16) >= 0
    assert h != author_hash("abc", "another-secret")
    assert "abc" not in h


@pytest.mark.parametrize(("handle", "key"), [("abc", ""), ("@", "k"), ("  ", b"k")])
def test_author_hash_refuses_empty_inputs(handle: str, key: str | bytes) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        author_hash(handle, key)
