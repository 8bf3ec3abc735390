"""API for public-opinion monitoring (role ``cdc``): a token-authenticated push endpoint that
answers accepted / duplicate / error per item with its id, and reads of posts, alerts and
reports. A refused caller gets 403 and leaves an audit row, like the pages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fugong.errors import FugongError
from fugong.opinion import queries, services
from fugong.opinion.ingest import ItemError, ItemInvalid, RawItem, item_from_mapping
from fugong.opinion.permissions import require_cdc
from fugong.opinion.schemas import (
    AcknowledgeIn,
    AlertDetail,
    AlertRead,
    PostRead,
    PushBatch,
    PushItemResult,
    PushResult,
)
from fugong.web.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/opinion", tags=["舆情"])


def _cdc(request: Request, session: Session, user: Any) -> None:
    """Refuse non-CDC callers, keeping the refusal's audit row despite the error."""
    try:
        require_cdc(session, user, f"{request.method} {request.url.path}")
    except FugongError:
        session.commit()
        raise


@router.post("/push", response_model=PushResult)
def push(request: Request, batch: PushBatch, session: SessionDep, user: CurrentUser) -> PushResult:
    """Push a batch of posts (at most 1,000). Each item is answered on its own: a malformed
    item is an ``error`` naming the field and never blocks the others."""
    _cdc(request, session, user)
    items: list[RawItem] = []
    errors: list[ItemError] = []
    for n, raw in enumerate(batch.items, start=1):
        try:
            items.append(item_from_mapping(raw))
        except ItemInvalid as e:
            item_id = str(raw.get("id") or "") or None
            errors.append(ItemError(f"第{n}项", e.field, e.message, item_id))
    key = services.load_author_key(Path(request.app.state.settings.opinion_author_key_file))
    source = services.get_or_create_source(session, name=batch.source, kind="push")
    report = services.ingest_items(
        session, actor=user, source=source, items=items, key=key, errors=errors
    )
    return PushResult(
        accepted=report.count("accepted"),
        duplicate=report.count("duplicate"),
        errors=report.count("error"),
        items=[
            PushItemResult(
                id=o.id,
                status=o.status,
                post_id=o.post_id,
                error=f"{o.where} {o.message}" if o.status == "error" else None,
            )
            for o in report.outcomes
        ],
    )


@router.get("/posts", response_model=list[PostRead])
def posts(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    q: str = "",
    sentiment: Annotated[str | None, Query(pattern="^(negative|neutral|positive)$")] = None,
    page: int = 1,
) -> list[Any]:
    """Full-text search over posts (one per duplicate group), newest first, 30 a page."""
    _cdc(request, session, user)
    f = queries.PostFilter(q=q, sentiment=sentiment, page=page)
    return list(queries.search_posts(session, actor=user, f=f).posts)


@router.get("/alerts", response_model=list[AlertRead])
def alerts(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    status: Annotated[str | None, Query(pattern="^(new|acknowledged)$")] = None,
) -> list[Any]:
    _cdc(request, session, user)
    return list(queries.list_alerts(session, actor=user, status=status))


@router.get("/alerts/{alert_id}", response_model=AlertDetail)
def alert(request: Request, alert_id: int, session: SessionDep, user: CurrentUser) -> Any:
    _cdc(request, session, user)
    row, alert_posts = queries.get_alert(session, actor=user, alert_id=alert_id)
    return AlertDetail.model_validate(
        {**AlertRead.model_validate(row).model_dump(), "posts": alert_posts}
    )


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertRead)
def acknowledge(
    request: Request, alert_id: int, body: AcknowledgeIn, session: SessionDep, user: CurrentUser
) -> Any:
    _cdc(request, session, user)
    return services.acknowledge_alert(
        session, actor=user, alert_id=alert_id, annotation=body.annotation
    )


@router.get("/reports/{week}.pdf")
def report_pdf(request: Request, week: str, session: SessionDep, user: CurrentUser) -> Response:
    _cdc(request, session, user)
    row = queries.get_report(session, actor=user, week=week)
    return Response(
        row.pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="opinion-{row.week}.pdf"'},
    )
