"""A school gate with one camera, for the tests that feed readings in over MQTT."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from fugong.core.schemas import OrganisationCreate, UserCreate
from fugong.core.services import create_organisation, create_user
from fugong.db import unit_of_work
from fugong.screening import services
from fugong.screening.schemas import DeviceCreate, SiteCreate
from tests.conftest import PASSWORD


def school_gate(factory: sessionmaker[Session], *, school: str, nurse: str, site: str) -> None:
    """A school (organisation ``school``), its site user ``nurse`` and site ``site`` with the
    camera ``cam-1``."""
    with unit_of_work(factory) as s:
        org = create_organisation(
            s,
            actor=None,
            data=OrganisationCreate(
                kind="institution", institution_type="school", name=school, district="黄埔区"
            ),
        )
        user = create_user(
            s,
            actor=None,
            data=UserCreate(
                username=nurse,
                display_name="保健老师",
                password=PASSWORD,
                organisation_id=org.id,
                roles=["site"],
            ),
        )
        gate = services.create_site(
            s, data=SiteCreate(code=site, name="正门", kind="school"), actor=user
        )
        services.create_device(s, site=gate, data=DeviceCreate(code="cam-1", name="1"), actor=user)
