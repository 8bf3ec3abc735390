"""Who sees and changes which screening records. Scoping is a SQL condition, as elsewhere.

- admin: every site; manages sites and devices, may work alarms
- official: sites in their organisation's district (a city-level body: all); manages sites and
  devices, reads statistics; does not work alarms (the site's nurse or guard does)
- site: their own organisation's sites; manages them and works their alarms
- cdc: every site, read-only; receives the daily summary
- the person of a confirmed case: the site's own organisation and the CDC only
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_, true

from fugong.core.models import User
from fugong.screening.models import ScreeningSite

READERS = ("admin", "official", "site", "cdc")
MANAGERS = ("admin", "official", "site")
WORKERS = ("admin", "site")
SUMMARY_READERS = ("admin", "official", "cdc")


def site_scope(actor: User) -> ColumnElement[bool]:
    if actor.has_role("admin", "cdc"):
        return true()
    terms: list[ColumnElement[bool]] = []
    if actor.has_role("official"):
        district = actor.organisation.district
        if district is None:
            return true()
        terms.append(ScreeningSite.district == district)
    if actor.has_role("site"):
        terms.append(ScreeningSite.organisation_id == actor.organisation_id)
    return or_(*terms) if terms else false()


def can_manage(actor: User, site: ScreeningSite) -> bool:
    if actor.has_role("admin"):
        return True
    if actor.has_role("official") and actor.organisation.district in (None, site.district):
        return True
    return actor.has_role("site") and site.organisation_id == actor.organisation_id


def can_work(actor: User, site: ScreeningSite) -> bool:
    """May the actor record re-checks, dispositions and cases at this site?"""
    if actor.has_role("admin"):
        return True
    return actor.has_role("site") and site.organisation_id == actor.organisation_id


def can_see_person(actor: User, site: ScreeningSite) -> bool:
    if actor.has_role("cdc"):
        return True
    return actor.has_role("site") and site.organisation_id == actor.organisation_id
