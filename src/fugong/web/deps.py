"""Request dependencies: the database session (one transaction per request), the current
user (bearer token for machines, session cookie for people) and CSRF checks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from fugong.core import audit
from fugong.core.models import User
from fugong.core.notify import unread_count
from fugong.core.security import same
from fugong.core.services import user_for_token
from fugong.errors import AuthenticationError, PermissionDenied
from fugong.settings import Settings
from fugong.web.auth import CookieSigner, SessionData


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_db(request: Request) -> Iterator[Session]:
    """The request owns the transaction: commit when the handler returns, roll back on error.
    ``scope="function"`` (below) makes the commit happen before the response is sent, so a
    redirect never races the write it follows."""
    session: Session = request.app.state.session_factory()
    # Each request runs in its own copy of the context, so setting it leaks nowhere; the
    # generator's exit may run in another thread's context, so it is not reset there.
    audit.current_ip.set(request.client.host if request.client else None)
    try:
        yield session
        session.commit()
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
    user = session.get(User, data.user_id)
    if user is None or not user.is_active or user.session_epoch != data.epoch:
        return None
    # The navigation bar shows unread notifications on every page a person sees.
    request.state.unread = unread_count(session, user)
    return user


OptionalUser = Annotated[User | None, Depends(optional_user)]


def current_user(user: OptionalUser) -> User:
    if user is None:
        raise AuthenticationError()
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def api_write_guard(request: Request) -> None:
    """Cookie-authenticated API writes need the CSRF header; bearer tokens do not (a browser
    never attaches them by itself)."""
    if request.method in ("GET", "HEAD", "OPTIONS") or _bearer(request):
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
