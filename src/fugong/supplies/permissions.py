"""Who sees which supplies records. As in core and desk, scoping is a SQL condition.

- admin, auditor: all
- official: records of their district (a city-level body: all); offers: every offer, since a
  district official vets suppliers wherever they sit
- manager: requests and orders of the enterprises in their portfolio
- enterprise: their own organisation's requests and orders; offers: active ones (to buy)
- supplier: their own organisation's offers and orders
- rounds: officials of a district see that district's rounds (city level, admin, auditor: all)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, or_, select, true

from fugong.core.models import Enterprise, User
from fugong.supplies.models import AllocationRound, Offer, SupplyOrder, SupplyRequest

READERS = ("admin", "auditor", "official", "manager", "enterprise", "supplier")
OFFICIALS = ("admin", "official")
REQUESTERS = ("admin", "official", "manager", "enterprise")
BUYERS = ("manager", "enterprise")


def _buyer_scope(actor: User, org_col: Any, district_col: Any) -> list[ColumnElement[bool]]:
    terms: list[ColumnElement[bool]] = []
    if actor.has_role("official"):
        district = actor.organisation.district
        if district is None:
            return [true()]
        terms.append(district_col == district)
    if actor.has_role("manager"):
        terms.append(org_col.in_(select(Enterprise.id).where(Enterprise.manager_id == actor.id)))
    if actor.has_role("enterprise"):
        terms.append(org_col == actor.organisation_id)
    return terms


def request_scope(actor: User) -> ColumnElement[bool]:
    if actor.has_role("admin", "auditor"):
        return true()
    terms = _buyer_scope(actor, SupplyRequest.enterprise_id, SupplyRequest.district)
    return or_(*terms) if terms else false()


def order_scope(actor: User) -> ColumnElement[bool]:
    if actor.has_role("admin", "auditor"):
        return true()
    terms = _buyer_scope(actor, SupplyOrder.enterprise_id, SupplyOrder.district)
    if actor.has_role("supplier"):
        terms.append(SupplyOrder.supplier_id == actor.organisation_id)
    return or_(*terms) if terms else false()


def offer_scope(actor: User) -> ColumnElement[bool]:
    if actor.has_role("admin", "auditor", "official"):
        return true()
    terms: list[ColumnElement[bool]] = []
    if actor.has_role("supplier"):
        terms.append(Offer.supplier_id == actor.organisation_id)
    if actor.has_role(*BUYERS):
        # Buyers see what they could buy; the service also checks the supplier is approved.
        terms.append(Offer.status == "active")
    return or_(*terms) if terms else false()


def round_scope(actor: User) -> ColumnElement[bool]:
    """A district official sees the rounds of their district; admins, auditors and city-level
    officials see every round."""
    if actor.has_role("admin", "auditor"):
        return true()
    district = actor.organisation.district
    return true() if district is None else AllocationRound.district == district


def manages(actor: User, enterprise: Enterprise) -> bool:
    """May the actor act for this enterprise (request, buy, confirm delivery)?"""
    if actor.has_role("admin"):
        return True
    if actor.has_role("official") and actor.organisation.district in (None, enterprise.district):
        return True
    if actor.has_role("manager") and enterprise.manager_id == actor.id:
        return True
    return actor.has_role("enterprise") and actor.organisation_id == enterprise.id
