"""Who sees and does what with policy facts, claims and parameter values. Scoping is SQL, as in
core: a claim is visible exactly when its enterprise is (``core.permissions.enterprise_scope``).

- admin, auditor: everything (auditors read only)
- official: enterprises of their district; reviews claims, records payouts, adds parameter values
- manager: their portfolio; enters facts, uses "policy finds the enterprise"
- enterprise: its own facts, eligibility, claims and documents; applies for measures
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, select

from fugong.core.models import Enterprise, User
from fugong.core.permissions import can_edit_enterprise, enterprise_scope
from fugong.policies.models import Claim

POLICY_READERS = ("admin", "auditor", "official", "manager", "enterprise")
FINDERS = ("admin", "official", "manager", "auditor")
REVIEWERS = ("admin", "official")
PARAMETER_EDITORS = ("admin", "official")


def claim_scope(actor: User) -> ColumnElement[bool]:
    """Claims whose enterprise the actor may see."""
    return Claim.enterprise_id.in_(select(Enterprise.id).where(enterprise_scope(actor)))


def can_enter_facts(actor: User, ent: Enterprise) -> bool:
    """The enterprise itself, its manager, an official of its district, or an admin."""
    return can_edit_enterprise(actor, ent)


def can_review(actor: User, ent: Enterprise) -> bool:
    if actor.has_role("admin"):
        return True
    district = actor.organisation.district
    return actor.has_role("official") and (district is None or district == ent.district)


def can_apply(actor: User, ent: Enterprise) -> bool:
    """Only the enterprise's own users apply: the claim carries its pledge."""
    return actor.has_role("enterprise") and actor.organisation_id == ent.id
