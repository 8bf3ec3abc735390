"""Supplies inputs and outputs. Inputs accept what a person types into a form or a
spreadsheet: blanks mean "not given"; item names are accepted for item codes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from fugong.core.reference import DISTRICTS
from fugong.supplies.rules import CATALOGUE, DOCUMENT_TYPES, EPIDEMIC_START

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
OptionalPrice = Annotated[
    Annotated[float, Field(ge=0, le=10_000_000)] | None, BeforeValidator(_blank_none)
]
OptionalText = Annotated[
    Annotated[str, Field(min_length=2, max_length=60)] | None, BeforeValidator(_blank_none)
]
OptionalDate = Annotated[date | None, BeforeValidator(_blank_none)]


class OfferCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    item: ItemCode
    stock: Annotated[int, Field(ge=0, le=100_000_000)]
    daily_capacity: Annotated[int, Field(ge=0, le=100_000_000)] = 0
    unit_price: Annotated[float, Field(ge=0, le=10_000_000)]
    lead_time_days: Annotated[int, Field(ge=0, le=365)] = 1
    districts: Annotated[list[str], BeforeValidator(_districts)]
    # Optional: the supplier's pre-epidemic price for this item with its invoice, recorded
    # for review (see PreEpidemicPriceCreate); all three or none.
    pre_epidemic_price: OptionalPrice = None
    pre_epidemic_invoice_no: OptionalText = None
    pre_epidemic_invoice_date: OptionalDate = None

    @model_validator(mode="after")
    def _pre_price_complete(self) -> OfferCreate:
        given = [
            self.pre_epidemic_price is not None,
            self.pre_epidemic_invoice_no is not None,
            self.pre_epidemic_invoice_date is not None,
        ]
        if any(given) and not all(given):
            raise ValueError("疫情前单价、发票号、发票日期须一并填写")
        if self.pre_epidemic_invoice_date is not None:
            _before_epidemic(self.pre_epidemic_invoice_date)
        return self

    def pre_price(self) -> PreEpidemicPriceCreate | None:
        if self.pre_epidemic_price is None:
            return None
        assert self.pre_epidemic_invoice_no is not None
        assert self.pre_epidemic_invoice_date is not None  # all three or none: validated
        return PreEpidemicPriceCreate(
            item=self.item,
            unit_price=self.pre_epidemic_price,
            invoice_no=self.pre_epidemic_invoice_no,
            invoice_date=self.pre_epidemic_invoice_date,
        )


def _before_epidemic(d: date) -> date:
    if d >= EPIDEMIC_START:
        raise ValueError(f"发票日期应早于 {EPIDEMIC_START.isoformat()}（疫情响应启动日）")
    return d


class PreEpidemicPriceCreate(BaseModel):
    """A supplier's pre-epidemic unit price for an item and the dated invoice that shows it."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    item: ItemCode
    unit_price: Annotated[float, Field(ge=0, le=10_000_000)]
    invoice_no: Annotated[str, Field(min_length=2, max_length=60)]
    invoice_date: Annotated[date, AfterValidator(_before_epidemic)]


class PreEpidemicPriceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    supplier_id: int
    item_code: str
    unit_price: float
    invoice_no: str
    invoice_date: date
    status: str
    reason: str | None
    submitted_at: datetime
    reviewed_at: datetime | None


class PriceCapSet(BaseModel):
    """``factor``: reference x factor; ``margin``: approved pre-epidemic price x (1 + margin),
    falling back to reference x factor (when given) for suppliers without one."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["factor", "margin"] = "factor"
    factor: Annotated[float, Field(ge=1, le=1000)] | None = None
    margin: Annotated[float, Field(ge=0, le=1000)] | None = None


class PriceCapRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    item_code: str
    mode: str
    factor: float | None
    margin: float | None
    set_at: datetime


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


class VettingSubmit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[VettingDocument]


class VettingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    organisation_id: int
    status: str
    documents: list[dict[str, Any]]
    submitted_at: datetime
    reviewed_at: datetime | None
    reason: str | None


class ReviewDecision(BaseModel):
    """An official's decision; refusing needs a reason."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    approve: bool
    reason: Annotated[str, Field(max_length=500)] | None = None


class OfferClear(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=300)]
