"""API shapes of the opinion domain. Push items stay loosely typed at the edge (a mapping per
item) so one malformed item is answered with its own error instead of failing the batch;
:func:`fugong.opinion.ingest.item_from_mapping` validates each."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_PUSH_ITEMS = 1000


class PushBatch(BaseModel):
    """A batch pushed by a crawler or a partner system."""

    source: str = Field(min_length=1, max_length=100, description="来源名称，如“微博”")
    items: list[dict[str, Any]] = Field(
        max_length=MAX_PUSH_ITEMS,
        description="每条：id、time（ISO 8601，无时区按北京时间）、text，可选 url、author",
    )


class PushItemResult(BaseModel):
    id: str | None
    status: str = Field(description="accepted | duplicate | error")
    post_id: int | None = None
    error: str | None = None


class PushResult(BaseModel):
    accepted: int
    duplicate: int
    errors: int
    items: list[PushItemResult]


class PostRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    source_id: int
    external_id: str
    url: str | None
    posted_at: datetime
    text_norm: str
    sentiment: str | None
    sentiment_score: float | None
    sentiment_model: str | None
    dup_group_id: int | None
    is_duplicate: bool


class AlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    subject: str
    day: date
    method: str
    statistic: float
    threshold: float
    detail: dict[str, Any]
    status: str
    annotation: str | None
    acknowledged_at: datetime | None


class AlertDetail(AlertRead):
    posts: list[PostRead]


class AcknowledgeIn(BaseModel):
    annotation: str | None = Field(default=None, max_length=2000)
