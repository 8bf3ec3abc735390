"""Supplies inputs and outputs. Inputs accept what a person types into a form or a
spreadsheet: blanks mean "not given"; item names are accepted for item codes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from fugong.core.reference import DISTRICTS
from fugong.supplies.rules import CATALOGUE, DOCUMENT_TYPES

_ITEM_BY_NAME = {name: code for code, name, *_ in CATALOGUE} | {c[0]: c[0] for c in CATALOGUE}


def _item(v: Any) -> Any:
    if isinstance(v, str):
        v = v.strip()
        if v in _ITEM_BY_NAME:
            return _ITEM_BY_NAME[v]
        raise ValueError(f"未知物资“{v}”")
    return v


def _districts(v: Any) -> Any:
    if isinstance(v, str):
        v = [p.strip() for p in v.replace("，", ",").replace("、", ",").split(",") if p.strip()]
    if isinstance(v, list):
        bad = [d for d in v if d not in DISTRICTS]
        if bad:
            raise ValueError(f"未知的区：{'、'.join(map(str, bad))}")
        if not v:
            raise ValueError("至少填写一个供货区")
    return v


def _blank_none(v: Any) -> Any:
    return None if isinstance(v, str) and not v.strip() else v


ItemCode = Annotated[str, BeforeValidator(_item)]


class OfferCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    item: ItemCode
    stock: Annotated[int, Field(ge=0, le=100_000_000)]
    daily_capacity: Annotated[int, Field(ge=0, le=100_000_000)] = 0
    unit_price: Annotated[float, Field(ge=0, le=10_000_000)]
    lead_time_days: Annotated[int, Field(ge=0, le=365)] = 1
    districts: Annotated[list[str], BeforeValidator(_districts)]


class RequestCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    enterprise_id: int
    item: ItemCode
    quantity: Annotated[int, Field(gt=0, le=100_000_000)]
    needed_by: date
    purpose: Annotated[str, Field(min_length=2, max_length=500)]
    max_unit_price: Annotated[
        Annotated[float, Field(ge=0)] | None, BeforeValidator(_blank_none)
    ] = None


class DirectPurchase(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    offer_id: int
    enterprise_id: int
    quantity: Annotated[int, Field(gt=0, le=100_000_000)]
    idempotency_key: Annotated[str, Field(min_length=8, max_length=80)]


class VettingDocument(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    type: str
    name: Annotated[str, Field(min_length=2, max_length=100)]
    number: Annotated[str, Field(min_length=2, max_length=60)]

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        if v not in DOCUMENT_TYPES:
            raise ValueError(f"证件类型应为：{'、'.join(DOCUMENT_TYPES.values())}")
        return v


class OfferRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    supplier_id: int
    item_code: str
    stock: int
    daily_capacity: int
    unit_price: float
    lead_time_days: int
    districts: list[str]
    status: str
    flag_reason: str | None
    created_at: datetime


class RequestRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    enterprise_id: int
    item_code: str
    district: str
    requested_qty: int
    approved_qty: int
    allocated_qty: int
    carried_forward: int
    needed_by: date
    purpose: str
    tier: int
    cap: int | None
    explanation: str
    status: str
    created_at: datetime
    allocated_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None


class OrderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    round_id: int | None
    request_id: int | None
    offer_id: int
    supplier_id: int
    enterprise_id: int
    item_code: str
    quantity: int
    unit_price: float
    status: str
    tracking_no: str | None
    cancel_reason: str | None
    created_at: datetime
    confirmed_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None


class OrderAction(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    tracking_no: str | None = None
    reason: str | None = None
