"""Who may use public-opinion monitoring: the CDC's analysts (role ``cdc``) only.

Opinion data is not scoped by organisation: the city CDC watches the whole city. Every other
role is refused, and the refusal itself leaves an audit row (like tracing), so probing the
pages is visible in the log.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from fugong.core import audit
from fugong.core.models import User
from fugong.errors import PermissionDenied

CDC_ROLE = "cdc"


def deny(session: Session, *, actor: User | None, what: str) -> PermissionDenied:
    """Record a refused attempt; the caller commits it before raising the returned error."""
    audit.record(
        session, actor=actor, action="opinion.denied", target_type="opinion", detail=what[:200]
    )
    return PermissionDenied("舆情监测仅限疾控分析员使用，本次访问已记录")


def require_cdc(session: Session, actor: User | None, what: str) -> None:
    """Raise (after auditing) unless ``actor`` is a CDC analyst. ``None`` is the host's CLI,
    which runs with the database owner's rights."""
    if actor is not None and not actor.has_role(CDC_ROLE):
        raise deny(session, actor=actor, what=what)
