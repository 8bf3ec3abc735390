"""Who may see and change what. Scoping is a SQL condition applied inside the queries, so no
page or API route can forget it: an enterprise user's query simply returns no other enterprise.

- admin, auditor: every enterprise (auditors read only)
- official: the enterprises of their organisation's district (a city-level body: all)
- manager: their portfolio (enterprises assigned to them)
- enterprise: their own organisation
- everyone else: none
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_, true

from fugong.core.models import Enterprise, User
from fugong.errors import PermissionDenied

REGISTRY_READERS = ("admin", "auditor", "official", "manager", "enterprise")
REGISTRY_CREATORS = ("admin", "official", "manager")
REGISTRY_IMPORTERS = ("admin", "official")
AUDIT_READERS = ("admin", "auditor")
USER_ADMINS = ("admin",)


def require_role(actor: User, *roles: str) -> None:
    if not actor.has_role(*roles):
        raise PermissionDenied("您的角色无权执行此操作")


def enterprise_scope(actor: User) -> ColumnElement[bool]:
    """The SQL condition that limits enterprises to those the actor may see.

    It reads only the ``enterprises`` table, so counts need no join."""
    if actor.has_role("admin", "auditor"):
        return true()
    conditions: list[ColumnElement[bool]] = []
    if actor.has_role("official"):
        district = actor.organisation.district
        conditions.append(true() if district is None else Enterprise.district == district)
    if actor.has_role("manager"):
        conditions.append(Enterprise.manager_id == actor.id)
    if actor.has_role("enterprise"):
        conditions.append(Enterprise.id == actor.organisation_id)
    if not conditions:
        return false()
    if len(conditions) == 1:
        return conditions[0]
    return or_(*conditions)


def can_edit_enterprise(actor: User, ent: Enterprise) -> bool:
    """Edits need a writing role over an enterprise already in the actor's scope."""
    if actor.has_role("admin"):
        return True
    if actor.has_role("official") and (
        actor.organisation.district is None or actor.organisation.district == ent.district
    ):
        return True
    if actor.has_role("manager") and ent.manager_id == actor.id:
        return True
    return actor.has_role("enterprise") and ent.id == actor.organisation_id


# Fields an enterprise user may change about itself; the rest (USCC, manager, district)
# are the district's records.
ENTERPRISE_SELF_FIELDS = frozenset(
    {
        "address",
        "headcount",
        "insured_employees",
        "resumption_status",
        "resumption_date",
        "staff_back_pct",
        "note",
    }
)
