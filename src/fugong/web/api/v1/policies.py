"""API for relief policies: eligibility with explanations, claims (apply, list, read, review).
The same services and SQL scoping as the pages: an enterprise sees only itself and its claims."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from fugong.policies import queries, services
from fugong.policies.schemas import (
    ClaimCreate,
    ClaimRead,
    ClaimReview,
    MeasureEligibilityRead,
)
from fugong.web.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/policies", tags=["惠企政策"])
PeriodQuery = Annotated[str, Query(pattern=r"^20[0-9]{2}$")]


@router.get("/enterprises/{enterprise_id}/eligibility", response_model=list[MeasureEligibilityRead])
def eligibility(
    enterprise_id: int, session: SessionDep, user: CurrentUser, period: PeriodQuery = "2020"
) -> list[MeasureEligibilityRead]:
    elig = queries.eligibility(session, actor=user, enterprise_id=enterprise_id, period=period)
    return [
        MeasureEligibilityRead(
            measure=m.measure.id,
            title=m.measure.title,
            mode=m.measure.mode,
            status=m.status,
            amount_cents=m.cents,
            stand_in=m.stand_in,
            missing=m.missing,
            claim_id=m.claim.id if m.claim else None,
            explanation=m.explanation,
        )
        for m in elig.measures
    ]


@router.get("/claims", response_model=list[ClaimRead])
def list_claims(
    session: SessionDep, user: CurrentUser, status: str | None = None
) -> list[ClaimRead]:
    return [
        ClaimRead.model_validate(c) for c in queries.list_claims(session, actor=user, status=status)
    ]


@router.post("/claims", response_model=ClaimRead, status_code=status.HTTP_201_CREATED)
def apply(data: ClaimCreate, session: SessionDep, user: CurrentUser) -> ClaimRead:
    """409 when the enterprise already claimed this measure for this period."""
    return ClaimRead.model_validate(services.apply_claim(session, data=data, actor=user))


@router.get("/claims/{claim_id}", response_model=ClaimRead)
def get_claim(claim_id: int, session: SessionDep, user: CurrentUser) -> ClaimRead:
    return ClaimRead.model_validate(queries.get_claim(session, actor=user, claim_id=claim_id))


@router.post("/claims/{claim_id}/review", response_model=ClaimRead)
def review(claim_id: int, data: ClaimReview, session: SessionDep, user: CurrentUser) -> ClaimRead:
    return ClaimRead.model_validate(
        services.review_claim(session, claim_id=claim_id, data=data, actor=user)
    )
