"""Public-opinion monitoring for the CDC: ingest (files, feeds, push), analysis with the pure
offline text pipeline (:mod:`.text`), alerts, labelling and trained sentiment models, and the
weekly report (每周舆情分析报告)."""

from fugong.opinion.models import (
    OpinionAlert,
    OpinionAlertPost,
    OpinionDuplicateGroup,
    OpinionLabel,
    OpinionModel,
    OpinionPost,
    OpinionReport,
    OpinionSource,
    OpinionWatchPhrase,
)

__all__ = [
    "OpinionAlert",
    "OpinionAlertPost",
    "OpinionDuplicateGroup",
    "OpinionLabel",
    "OpinionModel",
    "OpinionPost",
    "OpinionReport",
    "OpinionSource",
    "OpinionWatchPhrase",
]
