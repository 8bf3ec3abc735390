"""The one place where errors become HTTP: problem+json for the API, a Chinese page for people."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from fugong.errors import AuthenticationError, FugongError, RateLimited, ValidationFailed


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def install(app: FastAPI) -> None:
    @app.exception_handler(FugongError)
    async def _fugong(request: Request, exc: FugongError) -> Response:
        headers = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        if _is_api(request):
            extra: dict[str, Any] = {}
            if isinstance(exc, ValidationFailed):
                extra["errors"] = [
                    {"row": e.row, "field": e.field, "message": e.message} for e in exc.errors
                ]
            problem = _problem(exc.status_code, exc.title, exc.message, **extra)
            problem.headers.update(headers)
            return problem
        if isinstance(exc, AuthenticationError):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        resp: Response = request.app.state.templates.TemplateResponse(
            request,
            "errors/error.html",
            {"status": exc.status_code, "title": exc.title, "message": exc.message},
            status_code=exc.status_code,
            headers=headers,
        )
        return resp

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {
                "field": ".".join(str(p) for p in e["loc"] if p != "body"),
                "message": str(e["msg"]).removeprefix("Value error, "),
                "row": None,
            }
            for e in exc.errors()
        ]
        if _is_api(request):
            return _problem(
                422,
                "输入有误",
                "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                errors=errors,
            )
        resp: Response = request.app.state.templates.TemplateResponse(
            request,
            "errors/error.html",
            {
                "status": 422,
                "title": "输入有误",
                "message": "; ".join(f"{e['field']}: {e['message']}" for e in errors),
            },
            status_code=422,
        )
        return resp

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        title = {404: "未找到", 405: "不允许的方法"}.get(exc.status_code, "错误")
        if _is_api(request):
            return _problem(exc.status_code, title, str(exc.detail))
        resp: Response = request.app.state.templates.TemplateResponse(
            request,
            "errors/error.html",
            {"status": exc.status_code, "title": title, "message": str(exc.detail)},
            status_code=exc.status_code,
        )
        return resp
