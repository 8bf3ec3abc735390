"""API for the core domain: the current user, enterprises, the audit trail, API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status

from fugong.core import queries, services
from fugong.core.schemas import (
    AuditRead,
    EnterpriseCreate,
    EnterprisePage,
    EnterpriseRead,
    EnterpriseUpdate,
    ResumptionEventRead,
    TokenCreated,
    UserRead,
)
from fugong.web.deps import CurrentUser, SessionDep

router = APIRouter()


@router.get("/me", response_model=UserRead, tags=["账户"])
def me(user: CurrentUser) -> UserRead:
    return UserRead(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        organisation=user.organisation.name,
        organisation_id=user.organisation_id,
        roles=sorted(user.roles),
    )


@router.get("/enterprises", response_model=EnterprisePage, tags=["企业"])
def list_enterprises(
    session: SessionDep,
    user: CurrentUser,
    q: str | None = None,
    district: str | None = None,
    street: str | None = None,
    industry: str | None = None,
    size: str | None = None,
    key_category: str | None = None,
    resumption_status: str | None = None,
    manager_id: int | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=queries.MAX_PER_PAGE)] = 50,
) -> EnterprisePage:
    flt = queries.EnterpriseFilter(
        q=q,
        district=district,
        street=street,
        industry=industry,
        size=size,
        key_category=key_category,
        resumption_status=resumption_status,
        manager_id=manager_id,
    )
    p = queries.list_enterprises(session, actor=user, flt=flt, page=page, per_page=per_page)
    return EnterprisePage(total=p.total, page=p.page, per_page=p.per_page, items=p.items)


@router.post(
    "/enterprises",
    response_model=EnterpriseRead,
    status_code=status.HTTP_201_CREATED,
    tags=["企业"],
)
def create_enterprise(
    data: EnterpriseCreate, session: SessionDep, user: CurrentUser
) -> EnterpriseRead:
    org = services.create_enterprise(session, data=data, actor=user)
    return queries.enterprise_read(session, org)


@router.get("/enterprises/{enterprise_id}", response_model=EnterpriseRead, tags=["企业"])
def get_enterprise(enterprise_id: int, session: SessionDep, user: CurrentUser) -> EnterpriseRead:
    org = queries.get_enterprise(session, actor=user, enterprise_id=enterprise_id)
    return queries.enterprise_read(session, org)


@router.patch("/enterprises/{enterprise_id}", response_model=EnterpriseRead, tags=["企业"])
def update_enterprise(
    enterprise_id: int, data: EnterpriseUpdate, session: SessionDep, user: CurrentUser
) -> EnterpriseRead:
    # Scope first: an enterprise outside the actor's view is "not found", never "forbidden".
    queries.get_enterprise(session, actor=user, enterprise_id=enterprise_id)
    org = services.update_enterprise(session, enterprise_id=enterprise_id, data=data, actor=user)
    return queries.enterprise_read(session, org)


@router.get(
    "/enterprises/{enterprise_id}/history", response_model=list[ResumptionEventRead], tags=["企业"]
)
def enterprise_history(
    enterprise_id: int, session: SessionDep, user: CurrentUser
) -> list[ResumptionEventRead]:
    org = queries.get_enterprise(session, actor=user, enterprise_id=enterprise_id)
    assert org.enterprise is not None
    return [
        ResumptionEventRead(
            status=h.status,
            effective_date=h.effective_date,
            staff_back_pct=h.staff_back_pct,
            note=h.note,
            recorded_at=h.recorded_at,
            recorded_by=h.recorded_by.username if h.recorded_by else None,
        )
        for h in org.enterprise.history
    ]


@router.get("/audit", response_model=list[AuditRead], tags=["审计"])
def audit_log(
    session: SessionDep,
    user: CurrentUser,
    actor: str | None = None,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=queries.MAX_PER_PAGE)] = 50,
) -> list[AuditRead]:
    rows, _ = queries.list_audit(
        session,
        actor=user,
        flt=queries.AuditFilter(
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            since=since,
            until=until,
        ),
        page=page,
        per_page=per_page,
    )
    return [AuditRead.model_validate(r) for r in rows]


@router.post(
    "/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED, tags=["账户"]
)
def create_token(
    name: Annotated[str, Query(min_length=1, max_length=100)],
    session: SessionDep,
    user: CurrentUser,
) -> TokenCreated:
    token, row = services.create_api_token(session, user=user, name=name, actor=user)
    return TokenCreated(id=row.id, name=row.name, token=token, expires_at=row.expires_at)
