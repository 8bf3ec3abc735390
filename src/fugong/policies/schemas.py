"""Policy inputs."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Period = Annotated[str, Field(pattern=r"^20[0-9]{2}$")]


class ParameterValueCreate(BaseModel):
    """A new dated value of one pack parameter, with the document it comes from."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    pack: Annotated[str, Field(min_length=1, max_length=60)] = "huangpu-2020"
    parameter: Annotated[str, Field(min_length=1, max_length=80)]
    valid_from: date
    value: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    size_class: Literal["large", "medium", "small", "micro", "default"] | None = None
    source_text: Annotated[str, Field(min_length=2, max_length=500)]
    stand_in: bool = False


class ClaimCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    enterprise_id: int
    measure: Annotated[str, Field(min_length=1, max_length=60)]
    period: Period = "2020"


class ClaimReview(BaseModel):
    """approve keeps the estimate, adjust sets ``amount`` (yuan), reject pays nothing; each
    needs a reason."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    decision: Literal["approve", "adjust", "reject"]
    amount: Annotated[float | None, Field(ge=0, allow_inf_nan=False)] = None
    reason: Annotated[str, Field(min_length=2, max_length=1000)]


class PayoutCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    amount: Annotated[float | None, Field(ge=0, allow_inf_nan=False)] = None
    paid_on: date
    reference: Annotated[str, Field(min_length=2, max_length=100)]


class ClaimRead(BaseModel):
    """A claim as the API returns it (money in fen, exact)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    enterprise_id: int
    pack: str
    measure: str
    period: str
    status: str
    requested_cents: int
    stand_in: bool
    applied_pack: str
    approved_cents: int | None
    reason: str | None
    decision_pack: str | None
    payout_cents: int | None
    payout_date: date | None
    payout_reference: str | None


class MeasureEligibilityRead(BaseModel):
    """One measure for one enterprise: status, amount in fen, what is missing, the explanation."""

    measure: str
    title: str
    mode: Literal["automatic", "application"]
    status: Literal["eligible", "ineligible", "unknown"]
    amount_cents: int
    stand_in: bool
    missing: list[str]
    claim_id: int | None
    explanation: dict[str, Any]
