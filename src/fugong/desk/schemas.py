"""Desk inputs."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fugong.desk.rules import NEED_TYPES, URGENCIES


class NeedCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    organisation_id: int
    need_type: str
    urgency: str = "normal"
    description: Annotated[str, Field(min_length=2, max_length=4000)]
    owner: str | None = None  # a manager's username; default: the enterprise's manager
    source: Literal["call", "survey", "meeting", "self", "other"] = "call"

    @field_validator("need_type")
    @classmethod
    def _type(cls, v: str) -> str:
        if v not in NEED_TYPES:
            raise ValueError(f"需求类型应为：{'、'.join(NEED_TYPES.values())}")
        return v

    @field_validator("urgency")
    @classmethod
    def _urgency(cls, v: str) -> str:
        if v not in URGENCIES:
            raise ValueError(f"紧急程度应为：{'、'.join(URGENCIES.values())}")
        return v


class CampaignCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    title: Annotated[str, Field(min_length=2, max_length=200)]
    deadline: date
    # The target: a manager's portfolio (manager username), or filters over the registry.
    portfolio: str | None = None
    street: str | None = None
    industry: str | None = None
    key_only: bool = False


class MeetingCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    organisation_id: int
    kind: Literal["meeting", "visit", "call"]
    held_on: date
    participants: Annotated[str, Field(min_length=2, max_length=500)]
    notes: Annotated[str | None, Field(max_length=8000)] = None
    outcome: Annotated[str | None, Field(max_length=500)] = None
