"""The audit trail: one row per write (and per read of personal data), added to the caller's
session so it commits or rolls back together with the change it describes.

A row names its actor: the user who acted, or, when no user did, ``default_actor`` — ``system``
for unattended work (a failed login, a camera's reading, the web server's own jobs) and ``cli``
for what an operator runs with the ``fugong`` command, which sets it (``fugong.cli.core``)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from fugong.core.models import AuditLog, User

# Re-exported: the labels are audit's vocabulary; they live in reference so that the schemas
# can refuse them as usernames without importing the database layer.
from fugong.core.reference import CLI_LABEL as CLI_LABEL
from fugong.core.reference import SYSTEM_LABEL as SYSTEM_LABEL
from fugong.db import jsonable

#: The client address of the request being served; the web layer sets it per request.
current_ip: ContextVar[str | None] = ContextVar("current_ip", default=None)
#: Who acts when no user does: ``system`` unless the CLI on the host has set ``cli``.
default_actor: ContextVar[str] = ContextVar("default_actor", default=SYSTEM_LABEL)


def snapshot(obj: Any, fields: list[str] | None = None) -> dict[str, Any]:
    """The column values of a mapped object, JSON-ready, for before/after documents."""
    mapper = inspect(obj).mapper
    names = fields or [c.key for c in mapper.column_attrs]
    return {n: jsonable(getattr(obj, n)) for n in names if n != "password_hash"}


def diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keep only the keys that changed, so an audit row shows what the edit did."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def record(
    session: Session,
    *,
    actor: User | None,
    action: str,
    target_type: str,
    target_id: Any = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    detail: str | None = None,
) -> AuditLog:
    row = AuditLog(
        actor_id=actor.id if actor is not None else None,
        actor_label=actor.username if actor is not None else default_actor.get(),
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        before=jsonable(before) if before is not None else None,
        after=jsonable(after) if after is not None else None,
        detail=detail,
        ip=current_ip.get(),
    )
    session.add(row)
    return row
