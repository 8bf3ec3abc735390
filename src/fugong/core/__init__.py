"""Core domain: organisations, enterprises, users and roles, API tokens, the audit trail."""

from fugong.core.models import (
    ApiToken,
    AuditLog,
    Contact,
    Enterprise,
    LoginThrottle,
    Organisation,
    ResumptionEvent,
    User,
    UserRole,
)

__all__ = [
    "ApiToken",
    "AuditLog",
    "Contact",
    "Enterprise",
    "LoginThrottle",
    "Organisation",
    "ResumptionEvent",
    "User",
    "UserRole",
]
