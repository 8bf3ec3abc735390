"""Who may trace: the ``cdc`` role only, for every query and page; every refused attempt is
audited (the caller commits the row before raising the returned error)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from fugong.core import audit
from fugong.core.models import User
from fugong.errors import PermissionDenied

CDC_ROLE = "cdc"


def deny(session: Session, *, actor: User, what: str) -> PermissionDenied:
    """Record a refused attempt and return the error to raise once the row is committed."""
    audit.record(
        session, actor=actor, action="tracing.denied", target_type="tracing", detail=what[:200]
    )
    return PermissionDenied("轨迹追踪仅限疾控分析员使用，本次访问已记录")


def require_cdc(session: Session, actor: User, what: str) -> None:
    if not actor.has_role(CDC_ROLE):
        raise deny(session, actor=actor, what=what)
