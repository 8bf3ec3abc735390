"""Session cookies and CSRF tokens.

The session cookie is a signed, timestamped payload ``{u: user id, e: session epoch, c: csrf}``:
HttpOnly (scripts cannot read it), SameSite=Lax (not sent on cross-site form posts), Secure
behind TLS. Changing the password bumps the user's epoch, which voids every older cookie.
Forms carry the CSRF token from the payload; before login a short-lived signed pre-session
cookie holds it, so the login form is protected too."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from fugong.settings import Settings

SESSION_COOKIE = "fugong_session"
PRE_COOKIE = "fugong_pre"


@dataclass
class SessionData:
    user_id: int | None
    epoch: int
    csrf: str


class CookieSigner:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._s = URLSafeTimedSerializer(settings.resolved_secret(), salt="fugong.session")

    def load(self, request: Request) -> SessionData:
        for name, max_age in ((SESSION_COOKIE, self.settings.session_max_age), (PRE_COOKIE, 3600)):
            raw = request.cookies.get(name)
            if not raw:
                continue
            try:
                data: dict[str, Any] = self._s.loads(raw, max_age=max_age)
            except BadSignature:
                continue
            if name == SESSION_COOKIE and isinstance(data.get("u"), int):
                return SessionData(
                    user_id=data["u"], epoch=int(data.get("e", 0)), csrf=str(data.get("c", ""))
                )
            if name == PRE_COOKIE and data.get("c"):
                return SessionData(user_id=None, epoch=0, csrf=str(data["c"]))
        return SessionData(user_id=None, epoch=0, csrf="")

    def _set(self, response: Response, name: str, payload: dict[str, Any], max_age: int) -> None:
        response.set_cookie(
            name,
            self._s.dumps(payload),
            max_age=max_age,
            httponly=True,
            samesite="lax",
            secure=self.settings.cookie_secure,
            path="/",
        )

    def login(self, response: Response, user_id: int, epoch: int) -> None:
        self._set(
            response,
            SESSION_COOKIE,
            {"u": user_id, "e": epoch, "c": secrets.token_urlsafe(24)},
            self.settings.session_max_age,
        )
        response.delete_cookie(PRE_COOKIE, path="/")

    def ensure_pre_session(self, response: Response, csrf: str) -> None:
        self._set(response, PRE_COOKIE, {"c": csrf}, 3600)

    def logout(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(PRE_COOKIE, path="/")


def new_csrf() -> str:
    return secrets.token_urlsafe(24)
