"""Lexicon baseline (negation, degree), trainable classifier, evaluation, model files."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from fugong.opinion.text import (
    LABELS,
    LEXICON_MODEL,
    LexiconSentiment,
    Model,
    SentimentScore,
    evaluate,
    lexicon_sentiment,
    load_labelled_csv,
    sample_labelled,
    split_train_test,
    train,
)


@pytest.fixture(scope="module")
def split() -> tuple[list[str], list[str], list[str], list[str]]:
    texts, labels = sample_labelled()
    return split_train_test(texts, labels, test_fraction=0.3, seed=0)


@pytest.fixture(scope="module")
def model(split: tuple[list[str], list[str], list[str], list[str]]) -> Model:
    return train(split[0], split[1])


def test_sample_is_balanced_and_large_enough() -> None:
    texts, labels = sample_labelled()
    counts = Counter(labels)
    assert len(texts) >= 150
    assert set(counts) == set(LABELS)
    assert max(counts.values()) - min(counts.values()) <= 5
    assert len(set(texts)) == len(texts)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("我对社区的服务很不满意", "negative"),
        ("不满意", "negative"),
        ("这不是谣言", "positive"),
        ("这是谣言，大家不要信", "negative"),
        ("我们一点也不担心物资", "positive"),
        ("志愿者辛苦了，非常感谢", "positive"),
        ("一刀切停工太离谱了", "negative"),
        ("明天上午开展全员核酸检测", "neutral"),
        ("不，我很满意", "positive"),  # the negation is in another clause
    ],
)
def test_lexicon_labels_with_negation(text: str, label: str) -> None:
    score = lexicon_sentiment(text)
    assert score.label == label, score
    assert score.model == LEXICON_MODEL


def test_degree_words_scale_the_score() -> None:
    s = {t: lexicon_sentiment(t).score for t in ("满意", "非常满意", "有点满意", "极其不满意")}
    assert s["非常满意"] == pytest.approx(2.0)
    assert s["有点满意"] == pytest.approx(0.6)
    assert s["满意"] == pytest.approx(1.0)
    assert s["极其不满意"] < -2.0
    assert lexicon_sentiment("有点失望").label == "negative"


def test_classifier_beats_chance_on_held_out_split(
    split: tuple[list[str], list[str], list[str], list[str]], model: Model
) -> None:
    _, _, test_texts, test_labels = split
    ev = evaluate(model, test_texts, test_labels)
    baseline = evaluate(LexiconSentiment(), test_texts, test_labels)
    print(f"\n{ev.summary()}\n{baseline.summary()}")
    assert ev.model == model.version
    assert ev.accuracy > 0.6
    assert ev.macro_f1 > 0.6
    assert sum(map(sum, ev.confusion)) == len(test_texts) == ev.n


def test_scores_carry_the_model_version(model: Model) -> None:
    scores = model.predict(["核酸排队太乱了", "谢谢志愿者"])
    assert all(s.model == model.version for s in scores)
    assert all(s.probabilities and abs(sum(s.probabilities.values()) - 1) < 1e-9 for s in scores)
    assert model.version.startswith("logreg-") and len(model.version) == len("logreg-") + 12
    assert model.created_at.endswith("+00:00")


def test_version_depends_on_data_and_hyper_parameters_only(
    split: tuple[list[str], list[str], list[str], list[str]], model: Model
) -> None:
    texts, labels = split[0], split[1]
    shuffled = train(list(reversed(texts)), list(reversed(labels)))
    assert shuffled.version == model.version
    assert train(texts, labels, l2=1e-2).version != model.version
    assert train(texts[1:], labels[1:]).version != model.version
    nb = train(texts, labels, algorithm="nb")
    assert nb.version.startswith("nb-")
    assert evaluate(nb, split[2], split[3]).accuracy > 0.6


def test_save_load_round_trip_gives_identical_predictions(
    tmp_path: Path, split: tuple[list[str], list[str], list[str], list[str]], model: Model
) -> None:
    path = tmp_path / "model.json"
    model.save(path)
    loaded = Model.load(path)
    assert loaded.version == model.version and loaded.created_at == model.created_at
    assert loaded.predict(split[2]) == model.predict(split[2])
    assert json.loads(path.read_text(encoding="utf-8"))["format"] == "fugong.opinion.sentiment/1"
    assert loaded.top_features("negative", 5)


def test_load_refuses_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"format": "something-else"}', encoding="utf-8")
    with pytest.raises(ValueError, match="not a"):
        Model.load(bad)


def test_train_refuses_bad_labels() -> None:
    with pytest.raises(ValueError, match="unknown labels"):
        train(["a", "b", "c"], ["negative", "neutral", "happy"])
    with pytest.raises(ValueError, match="no examples"):
        train(["a", "b"], ["negative", "positive"])


class _Fixed:
    """A predictor whose answers are given, to check the metric arithmetic by hand."""

    name = "fixed"

    def __init__(self, answers: Sequence[str]) -> None:
        self.answers = answers

    def predict(self, texts: Sequence[str]) -> list[SentimentScore]:
        return [SentimentScore(a, 0.0, self.name) for a in self.answers]  # type: ignore[arg-type]


def test_evaluate_metrics_by_hand() -> None:
    truth = ["negative", "negative", "neutral", "positive", "positive", "positive"]
    guess = ["negative", "neutral", "neutral", "positive", "positive", "negative"]
    ev = evaluate(_Fixed(guess), ["x"] * 6, truth)
    assert ev.accuracy == pytest.approx(4 / 6)
    assert ev.confusion == ((1, 1, 0), (0, 1, 0), (1, 0, 2))
    assert ev.precision == pytest.approx({"negative": 0.5, "neutral": 0.5, "positive": 1.0})
    assert ev.recall == pytest.approx({"negative": 0.5, "neutral": 1.0, "positive": 2 / 3})
    f1 = {"negative": 0.5, "neutral": 2 / 3, "positive": 0.8}
    assert ev.macro_f1 == pytest.approx(sum(f1.values()) / 3)


def test_load_labelled_csv_names_the_bad_line(tmp_path: Path) -> None:
    good = tmp_path / "ok.csv"
    good.write_text("\ufefftext,label\n很好,Positive\n一般,neutral\n", encoding="utf-8")
    assert load_labelled_csv(good) == (["很好", "一般"], ["positive", "neutral"])
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\n很好,positive\n太差,angry\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.csv:3: unknown label"):
        load_labelled_csv(bad)
