"""Rendering helpers shared by every page module."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from fugong.core.models import User
from fugong.errors import FieldError
from fugong.web.auth import CookieSigner, new_csrf
from fugong.web.deps import session_data


def render(
    request: Request, template: str, user: User | None, status_code: int = 200, **ctx: Any
) -> HTMLResponse:
    data = session_data(request)
    csrf = data.csrf
    fresh = not csrf
    if fresh:
        csrf = new_csrf()
        data.csrf = csrf
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request,
        template,
        {"user": user, "csrf_token": csrf, "unread": getattr(request.state, "unread", 0), **ctx},
        status_code=status_code,
    )
    if fresh:
        signer: CookieSigner = request.app.state.signer
        signer.ensure_pre_session(response, csrf)
    return response


def redirect(url: str, **flash: str) -> RedirectResponse:
    if flash:
        url += ("&" if "?" in url else "?") + urlencode(flash)
    return RedirectResponse(url, status_code=303)


def query_without(params: dict[str, Any], *drop: str) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "") and k not in drop})


def flash(request: Request, messages: dict[str, str]) -> str | None:
    """The message for the ``msg`` code a redirect carried. Only known codes are shown, so a
    crafted link cannot put words on the platform's pages."""
    return messages.get(request.query_params.get("msg", ""))


def errors_by_field(errors: list[FieldError]) -> dict[str, str]:
    """Form errors keyed by field (the first message per field); a row-level error goes under
    ``(整体)``."""
    out: dict[str, str] = {}
    for e in errors:
        out.setdefault(e.field or "(整体)", e.message)
    return out
