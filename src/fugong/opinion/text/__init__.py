"""Offline Chinese text pipeline for public-opinion monitoring (pure: no database, web or CLI).

Normalisation (:mod:`.normalise`), duplicate grouping (:mod:`.dedup`), segmentation with the
epidemic-domain dictionary (:mod:`.segment`), keywords and topics (:mod:`.keywords`), sentiment
(:mod:`.sentiment`) and alert rules (:mod:`.alerts`). Every resource ships in ``data/``; nothing
is downloaded at run time.
"""

from fugong.opinion.text.alerts import (
    Alert,
    EarsConfig,
    EarsPoint,
    Post,
    RumourWatchlist,
    daily_counts,
    ears,
    negative_share_alerts,
    negative_share_z,
    volume_alerts,
)
from fugong.opinion.text.dedup import DuplicateGroup, fingerprint, group_duplicates
from fugong.opinion.text.keywords import (
    Keyword,
    TfidfVectorizer,
    Topic,
    bucket_by_period,
    cluster_topics,
    keywords_by_period,
    period_key,
    textrank_keywords,
    tfidf_keywords,
    topics_by_period,
)
from fugong.opinion.text.normalise import (
    analysis_text,
    author_hash,
    compact_key,
    fullwidth_to_halfwidth,
    normalise,
    to_simplified,
)
from fugong.opinion.text.segment import content_tokens, cut, domain_terms, stopwords, tokens
from fugong.opinion.text.sentiment import (
    LABELS,
    LEXICON_MODEL,
    Evaluation,
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

__all__ = [
    "LABELS",
    "LEXICON_MODEL",
    "Alert",
    "DuplicateGroup",
    "EarsConfig",
    "EarsPoint",
    "Evaluation",
    "Keyword",
    "LexiconSentiment",
    "Model",
    "Post",
    "RumourWatchlist",
    "SentimentScore",
    "TfidfVectorizer",
    "Topic",
    "analysis_text",
    "author_hash",
    "bucket_by_period",
    "cluster_topics",
    "compact_key",
    "content_tokens",
    "cut",
    "daily_counts",
    "domain_terms",
    "ears",
    "evaluate",
    "fingerprint",
    "fullwidth_to_halfwidth",
    "group_duplicates",
    "keywords_by_period",
    "lexicon_sentiment",
    "load_labelled_csv",
    "negative_share_alerts",
    "negative_share_z",
    "normalise",
    "period_key",
    "sample_labelled",
    "split_train_test",
    "stopwords",
    "textrank_keywords",
    "tfidf_keywords",
    "to_simplified",
    "tokens",
    "topics_by_period",
    "train",
    "volume_alerts",
]
