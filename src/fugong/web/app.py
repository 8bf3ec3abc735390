"""The ASGI application: UI pages, the REST API under /api/v1 (OpenAPI at /docs), static files."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fugong import __version__
from fugong.core.reference import (
    INDUSTRIES,
    KEY_CATEGORIES,
    ORG_KINDS,
    RESUMPTION_STATUSES,
    ROLES,
    SIZES,
    label,
)
from fugong.db import make_engine, make_session_factory
from fugong.settings import Settings, get_settings
from fugong.web import errors
from fugong.web.auth import CookieSigner

HERE = Path(__file__).parent

# Pages are served from the intranet and must not pull anything from elsewhere.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


class SecurityHeaders:
    """Adds the security headers to every response. A plain ASGI middleware: Starlette's
    BaseHTTPMiddleware costs a task and a stream per request, measurable on the list page."""

    HEADERS: ClassVar[list[tuple[bytes, bytes]]] = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
    ]
    PAGE_HEADERS: ClassVar[list[tuple[bytes, bytes]]] = [
        (b"content-security-policy", CSP.encode()),
        (b"x-frame-options", b"DENY"),
    ]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Swagger UI (/docs) runs an inline script, so it alone goes without the CSP.
        extra = self.HEADERS + ([] if scope["path"].startswith("/docs") else self.PAGE_HEADERS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(
    settings: Settings | None = None, session_factory: sessionmaker[Session] | None = None
) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="复工 Fugong API",
        version=__version__,
        description="企业复工复产服务平台 REST API v1。认证：`Authorization: Bearer <token>`"
        "（在“账户设置”或 `fugong tokens create` 生成）。",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.settings = settings
    if session_factory is None:
        session_factory = make_session_factory(make_engine(settings.database_url))
    app.state.session_factory = session_factory
    app.state.signer = CookieSigner(settings)
    from fugong.core import notify
    from fugong.desk.rules import parse_due_rules

    app.state.due_rules = parse_due_rules(settings.desk_due_hours)
    notify.configure(settings.outbound)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    # Outside demo mode templates do not change under a running server: skip the stat() of
    # every template file on every page.
    templates.env.auto_reload = settings.demo
    templates.env.globals.update(
        RESUMPTION_STATUSES=RESUMPTION_STATUSES,
        INDUSTRIES=INDUSTRIES,
        SIZES=SIZES,
        KEY_CATEGORIES=KEY_CATEGORIES,
        ROLES=ROLES,
        ORG_KINDS=ORG_KINDS,
        label=label,
        version=__version__,
    )
    app.state.templates = templates
    errors.install(app)

    app.add_middleware(SecurityHeaders)

    from fugong.web.api.v1 import router as api_router
    from fugong.web.ui import router as ui_router

    app.include_router(api_router, prefix="/api/v1")
    app.include_router(ui_router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    # Swagger UI from the installed swagger-ui-bundle package, not a CDN (intranets are offline).
    from fastapi.openapi.docs import get_swagger_ui_html
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-static", StaticFiles(directory=str(swagger_ui_path)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/api/v1/openapi.json",
            title="复工 Fugong API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
