"""The sparse prediction path gives the probabilities of the dense transform used in training."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from fugong.opinion.text import sample_labelled, split_train_test, train
from fugong.opinion.text.sentiment import features


def _dense_proba(model, texts: list[str]) -> np.ndarray:  # type: ignore[no-untyped-def]
    x = np.zeros((len(texts), len(model.vocabulary)))
    for r, t in enumerate(texts):
        for f, c in Counter(features(t)).items():
            if f in model.vocabulary:
                x[r, model.vocabulary[f]] = c
    if model.algorithm == "logreg":
        x = np.log1p(x) * model.idf
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    z = x @ model.coef.T + model.intercept
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("algorithm", ["logreg", "nb"])
def test_sparse_prediction_equals_the_dense_product(algorithm: str) -> None:
    texts, labels = sample_labelled()
    tr_x, tr_y, te_x, _ = split_train_test(texts, labels, seed=3)
    model = train(tr_x, tr_y, algorithm=algorithm)  # type: ignore[arg-type]
    probe = [*te_x, "", "🙂🙂", "完全没见过的词语组合"]
    np.testing.assert_allclose(model.predict_proba(probe), _dense_proba(model, probe), atol=1e-12)
