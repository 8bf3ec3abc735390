"""Request dependencies: the database session (one transaction per request), the current
user (bearer token for machines, session cookie for people) and CSRF checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, joinedload
from starlette.concurrency import run_in_threadpool

from fugong.core import audit
from fugong.core.models import User
from fugong.core.notify import unread_count
from fugong.core.security import same
from fugong.core.services import user_for_token
from fugong.errors import AuthenticationError, PermissionDenied
from fugong.settings import Settings
from fugong.web.auth import CookieSigner, SessionData

# Marks a session that has sent a write to the database, so that ``get_db`` knows whether
# ending it may have to wait (see there). Unflushed changes show in ``session.new`` etc.
_WROTE = "fugong.wrote"


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _ctx: Any) -> None:
    session.info[_WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    if not state.is_select:
        state.session.info[_WROTE] = True


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_db(request: Request) -> AsyncIterator[Session]:
    """The request owns the transaction: commit when the handler returns, roll back on error.
    ``scope="function"`` (below) makes the commit happen before the response is sent, so a
    redirect never races the write it follows.

    An async dependency, so opening the session costs no trip to the thread pool. Ending it
    costs one only when the request wrote: committing a write may wait for the disk (or, on
    SQLite, a checkpoint) and must not stall the event loop, while ending a read-only
    transaction is a few microseconds. Under 8 concurrent clients each thread hop also waits
    for the GIL, which is what made the list page's p95 (bench/web.py)."""
    session: Session = request.app.state.session_factory()
    # Set in the request's own context, which the thread-pool calls of its dependencies and
    # handler copy; no other request sees it.
    audit.current_ip.set(request.client.host if request.client else None)
    try:
        yield session
    except BaseException:
        # Inline, also for writes: a rollback waits for nothing, and an await here could be
        # cancelled with the request and leave the connection checked out.
        _end(session, commit=False)
        raise
    if session.info.get(_WROTE) or session.new or session.dirty or session.deleted:
        await run_in_threadpool(_end, session, True)
    else:
        _end(session, commit=True)


def _end(session: Session, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_db, scope="function")]


def session_data(request: Request) -> SessionData:
    cached: SessionData | None = getattr(request.state, "session_data", None)
    if cached is None:
        signer: CookieSigner = request.app.state.signer
        cached = signer.load(request)
        request.state.session_data = cached
    return cached


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None


def optional_user(request: Request, session: SessionDep) -> User | None:
    token = _bearer(request)
    if token:
        request.state.via_token = True
        return user_for_token(session, token)
    data = session_data(request)
    if data.user_id is None:
        return None
    # One query: the organisation is joined by the model, the roles here (not a second SELECT).
    user = session.get(User, data.user_id, options=[joinedload(User.role_rows)])
    if user is None or not user.is_active or user.session_epoch != data.epoch:
        return None
    # The navigation bar shows unread notifications on every page a person sees.
    request.state.unread = unread_count(session, user)
    return user


OptionalUser = Annotated[User | None, Depends(optional_user)]


async def current_user(user: OptionalUser) -> User:
    # Async: it does no I/O, so it need not cost a trip to the thread pool.
    if user is None:
        raise AuthenticationError()
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def api_write_guard(request: Request) -> None:
    """Cookie-authenticated API writes need the CSRF header; bearer tokens do not (a browser
    never attaches them by itself). A request with no signed-in session has nothing a forged
    request could ride on, so it passes here and the endpoint answers 401 for the missing
    credentials (a camera that forgot its token should hear that, not "CSRF")."""
    if request.method in ("GET", "HEAD", "OPTIONS") or _bearer(request):
        return
    if session_data(request).user_id is None:
        return
    expected = session_data(request).csrf
    got = request.headers.get("x-csrf-token", "")
    if not expected or not same(expected, got):
        raise PermissionDenied("缺少或错误的 CSRF 令牌 (X-CSRF-Token)")


async def form_csrf_guard(request: Request) -> None:
    """Every UI form post carries ``csrf_token``; a mismatch is refused before any work."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    form = await request.form()
    got = str(form.get("csrf_token", ""))
    expected = session_data(request).csrf
    if not expected or not same(expected, got):
        raise PermissionDenied("表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试")
