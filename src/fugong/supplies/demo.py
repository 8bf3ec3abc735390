"""Demo supplies: the demo suppliers are vetted and approved, with offers in stock spread among
them, so a fresh demo shows the whole flow (request → round → order → shipment → delivery) and
a round that splits an item across suppliers by price."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fugong.core import audit
from fugong.core.demo import DEMO_SUPPLIERS
from fugong.core.models import Organisation, User, UserRole
from fugong.supplies.models import Offer, PreEpidemicPrice, PriceCap, SupplierVetting
from fugong.supplies.rules import CATALOGUE

# supplier (index into core.demo.DEMO_SUPPLIERS, 0 holds the login), item, stock, daily
# capacity, unit price, lead time (days). Prices sit under the demo's caps. Every infrared
# thermometer on offer costs more than 150 yuan, so one posted at 150 (as in the browser test)
# is the cheapest and a round gives its order to whoever posted it.
DEMO_OFFERS: tuple[tuple[int, str, int, int, float, int], ...] = (
    (0, "mask_surgical", 20000, 5000, 0.9, 1),
    (0, "mask_kn95", 3000, 1000, 3.8, 1),
    (0, "ir_thermometer", 40, 20, 160.0, 2),
    (1, "mask_surgical", 50000, 20000, 0.85, 2),
    (1, "protective_suit", 800, 300, 72.0, 2),
    (1, "goggles", 1200, 500, 28.0, 2),
    (2, "mask_kn95", 8000, 3000, 4.5, 2),
    (2, "mask_surgical", 30000, 10000, 1.0, 1),
    (2, "gloves", 20000, 8000, 0.6, 1),
    (3, "disinfectant_84", 500, 200, 8.5, 1),
    (3, "alcohol_75", 300, 100, 21.0, 1),
    (4, "disinfectant_84", 1200, 400, 9.2, 2),
    (4, "alcohol_75", 600, 200, 22.5, 2),
    (4, "hand_sanitizer", 2000, 600, 16.0, 1),
    (5, "thermal_camera", 3, 1, 32000.0, 1),
    (5, "ir_thermometer", 120, 50, 168.0, 1),
)
_MEDICAL = {code for code, _name, _unit, _price, registration in CATALOGUE if registration}


def load_supplies_demo(session: Session) -> None:
    """Approve the demo suppliers (licence on file, and the medical-device registration for
    those that sell devices), post their offers for Huangpu and its neighbours, and cap masks:
    surgical masks at 1.5x the reference price, KN95 at 30% over the supplier's reviewed
    pre-epidemic price (the login supplier has one; 1.5x the reference for the others)."""
    by_name = {
        o.name: o
        for o in session.scalars(select(Organisation).where(Organisation.kind == "supplier"))
    }
    suppliers = [by_name.get(name) for name, _district, _division in DEMO_SUPPLIERS]
    supplier = suppliers[0]
    official = session.scalar(
        select(User).join(UserRole).where(UserRole.role == "official").order_by(User.id)
    )
    if supplier is None or official is None:
        return
    now = datetime.now(UTC)
    for i, org in enumerate(suppliers):
        if org is None:
            continue
        documents = [{"type": "licence", "name": "营业执照", "number": org.uscc or "demo"}]
        # Masks, suits and thermometers are medical devices: without the registration on file
        # the allocation passes a supplier's offers of them by.
        if any(j == i and item in _MEDICAL for j, item, *_ in DEMO_OFFERS):
            documents.append(
                {
                    "type": "medical_device",
                    "name": "医疗器械经营备案凭证",
                    "number": f"粤穗食药监械经营备2020{i + 1:04d}",
                }
            )
        session.add(
            SupplierVetting(
                organisation_id=org.id,
                status="approved",
                documents=documents,
                submitted_at=now,
                reviewed_by_id=official.id,
                reviewed_at=now,
            )
        )
    session.add(PriceCap(item_code="mask_surgical", factor=1.5, set_by_id=official.id, set_at=now))
    session.add(
        PriceCap(
            item_code="mask_kn95",
            mode="margin",
            margin=0.3,
            factor=1.5,
            set_by_id=official.id,
            set_at=now,
        )
    )
    session.add(
        PreEpidemicPrice(
            supplier_id=supplier.id,
            item_code="mask_kn95",
            unit_price=3.2,
            invoice_no="4400191130012345",
            invoice_date=date(2019, 12, 10),
            status="approved",
            submitted_at=now,
            reviewed_by_id=official.id,
            reviewed_at=now,
        )
    )
    posted: dict[int, int] = {}
    for i, code, stock, capacity, price, lead in DEMO_OFFERS:
        org = suppliers[i]
        if org is None:
            continue
        session.add(
            Offer(
                supplier_id=org.id,
                item_code=code,
                stock=stock,
                daily_capacity=capacity,
                unit_price=price,
                lead_time_days=lead,
                districts=["黄埔区", "天河区", "增城区"],
                created_at=now,
            )
        )
        posted[org.id] = posted.get(org.id, 0) + 1
    session.flush()
    for org_id, count in posted.items():
        audit.record(
            session,
            actor=None,
            action="supplies.demo",
            target_type="organisation",
            target_id=org_id,
            after={"offers": count},
        )
