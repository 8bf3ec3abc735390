"""Who sees which needs, campaigns and meetings. As in core, scoping is SQL.

- admin, auditor: all
- official: organisations of their district (a city-level body: all)
- manager: the enterprises of their portfolio, and any need they own
- enterprise: their own organisation's needs (they may raise needs too)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, or_, select, true

from fugong.core.models import Enterprise, Organisation, User
from fugong.desk.models import Need

DESK_STAFF = ("admin", "official", "manager")
DESK_READERS = (*DESK_STAFF, "auditor", "enterprise")
CAMPAIGN_CREATORS = ("admin", "official", "manager")


def org_scope(actor: User, org_id_column: Any) -> ColumnElement[bool]:
    """Organisations (by id column) whose desk records the actor may see."""
    if actor.has_role("admin", "auditor"):
        return true()
    terms: list[ColumnElement[bool]] = []
    if actor.has_role("official"):
        district = actor.organisation.district
        if district is None:
            return true()
        terms.append(
            org_id_column.in_(select(Organisation.id).where(Organisation.district == district))
        )
    if actor.has_role("manager"):
        terms.append(
            org_id_column.in_(select(Enterprise.id).where(Enterprise.manager_id == actor.id))
        )
    if actor.has_role("enterprise"):
        terms.append(org_id_column == actor.organisation_id)
    return or_(*terms) if terms else false()


def need_scope(actor: User) -> ColumnElement[bool]:
    scope = org_scope(actor, Need.organisation_id)
    if actor.has_role("manager"):
        return or_(scope, Need.owner_id == actor.id)
    return scope
