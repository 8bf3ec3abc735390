"""The one error hierarchy of the platform. The web layer maps it to HTTP in one place.

    FugongError
    ├── ConfigError            refuses to start (bad or missing setting)
    ├── AuthenticationError    401: no or bad credentials
    ├── PermissionDenied       403: authenticated, but the role may not do this
    ├── NotFound               404: absent, or outside the actor's scope (we never tell which)
    ├── Conflict               409: a unique fact already taken, a stale state transition
    ├── RateLimited            429: too many attempts
    └── ValidationFailed       422: bad input; carries FieldError(row, field, message) items

Third-party errors (SQLAlchemy integrity errors, pydantic validation errors) are translated
into these at the service boundary, so callers never see a driver's message.
"""

from __future__ import annotations

from dataclasses import dataclass


class FugongError(Exception):
    status_code = 500
    title = "服务器错误"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.title)
        self.message = message or self.title


class ConfigError(FugongError):
    title = "配置错误"


class AuthenticationError(FugongError):
    status_code = 401
    title = "请先登录"


class PermissionDenied(FugongError):
    status_code = 403
    title = "没有权限"


class NotFound(FugongError):
    status_code = 404
    title = "未找到"


class Conflict(FugongError):
    status_code = 409
    title = "冲突"


class RateLimited(FugongError):
    status_code = 429
    title = "尝试次数过多"

    def __init__(self, message: str = "", retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class FieldError:
    """One thing wrong with the input: ``row`` is 1-based in the file (header = row 1), or None."""

    field: str
    message: str
    row: int | None = None

    def __str__(self) -> str:
        where = f"第{self.row}行 " if self.row is not None else ""
        return f"{where}{self.field}: {self.message}"


class ValidationFailed(FugongError):
    status_code = 422
    title = "输入有误"

    def __init__(self, errors: list[FieldError], message: str = "") -> None:
        self.errors = errors
        super().__init__(message or "；".join(str(e) for e in errors[:5]))
