"""Demo on the shipped sample: ``python -m fugong.opinion.text [LABELLED.csv]``.

Trains the classifier on a stratified 70 % split, prints its held-out scores next to the lexicon
baseline's, then keywords and topics of the whole set. Offline; writes nothing.
"""

from __future__ import annotations

import sys

from fugong.opinion.text.keywords import cluster_topics, textrank_keywords, tfidf_keywords
from fugong.opinion.text.sentiment import (
    LexiconSentiment,
    evaluate,
    load_labelled_csv,
    sample_labelled,
    split_train_test,
    train,
)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    texts, labels = load_labelled_csv(args[0]) if args else sample_labelled()
    tr_x, tr_y, te_x, te_y = split_train_test(texts, labels, test_fraction=0.3, seed=0)
    model = train(tr_x, tr_y)
    print(f"trained {model.version} on {len(tr_x)} posts; held out {len(te_x)}")
    print(evaluate(model, te_x, te_y).summary())
    print(evaluate(LexiconSentiment(), te_x, te_y).summary())
    for label in ("negative", "positive"):
        feats = ", ".join(f for f, _ in model.top_features(label, 8))
        print(f"top {label} features: {feats}")
    print("TF-IDF:", " ".join(k.word for k in tfidf_keywords(texts, top_k=10)))
    print("TextRank:", " ".join(k.word for k in textrank_keywords(texts, top_k=10)))
    for topic in cluster_topics(texts, k=None, seed=0):
        print(f"topic {topic.topic_id} ({len(topic.members)} posts): {topic.label}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
