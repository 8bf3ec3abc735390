"""Demo policy facts for 2020: the demo enterprise (光宝) with the facts of the article's case,
and a seeded sample of other enterprises, so eligibility, claims and "policy finds the
enterprise" have something to show on a fresh demo."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fugong.core import audit
from fugong.core.models import Enterprise, Organisation
from fugong.policies.models import EnterpriseFacts
from fugong.policies.queries import DEFAULT_PACK

DEMO_ENTERPRISE = "广州光宝示范科技有限公司"
#: A medium manufacturer of masks that restarted on 2020-02-08 and kept its staff.
DEMO_FACTS: dict[str, Any] = {
    "ui_months": 36,
    "ui_premiums_last_year": 36000,
    "avg_insured_last_year": 180,
    "layoffs_last_year": 3,
    "serious_default": False,
    "zombie": False,
    "emergency_products": True,
    "restart_date": "2020-02-08",
    "equipment_spend": 0,
    "emergency_retailer": False,
    "soe_tenant": True,
    "monthly_rent": 42000,
    "epidemic_hires": 12,
    "hr_agency": False,
    "above_scale_industrial": True,
    "first_job_hires": 0,
    "monthly_employer_si": 26000,
}


def _sample(rng: random.Random) -> dict[str, Any]:
    insured = rng.randint(5, 300)
    return {
        "ui_months": rng.choice((6, 12, 24, 60)),
        "ui_premiums_last_year": rng.randint(20, 600) * 100,
        "avg_insured_last_year": insured,
        "layoffs_last_year": rng.choice((0, 0, 1, 2, 5, 20)),
        "serious_default": rng.random() < 0.03,
        "zombie": False,
        "emergency_products": rng.random() < 0.1,
        "restart_date": f"2020-02-{rng.randint(3, 28):02d}",
        "equipment_spend": rng.choice((0, 0, 0, 150000, 800000)),
        "soe_tenant": rng.random() < 0.15,
        "monthly_rent": rng.randint(5, 80) * 1000,
        "epidemic_hires": rng.choice((0, 0, 3, 8)),
        "above_scale_industrial": rng.random() < 0.2,
        "first_job_hires": rng.choice((0, 0, 2, 6)),
        "monthly_employer_si": rng.randint(2, 60) * 1000,
    }


def load_policies_demo(session: Session, *, sample: int = 40, seed: int = 2020) -> None:
    """Enter 2020 facts for the demo enterprise and ``sample`` others (deterministic)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, nothing secret
    demo = session.scalar(select(Organisation).where(Organisation.name == DEMO_ENTERPRISE))
    ids = list(session.scalars(select(Enterprise.id).order_by(Enterprise.id).limit(sample + 1)))
    rows: list[tuple[int, dict[str, Any]]] = []
    for ent_id in ids:
        if demo is not None and ent_id == demo.id:
            continue
        rows.append((ent_id, _sample(rng)))
    if demo is not None:
        rows.insert(0, (demo.id, DEMO_FACTS))
    for ent_id, facts in rows[: sample + 1]:
        session.add(
            EnterpriseFacts(
                enterprise_id=ent_id, period="2020", version=1, pack=DEFAULT_PACK, facts=facts
            )
        )
    session.flush()
    audit.record(
        session,
        actor=None,
        action="policy.demo",
        target_type="enterprise",
        after={"facts": len(rows[: sample + 1])},
    )
