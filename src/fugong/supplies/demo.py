"""Demo supplies: the demo supplier is vetted and approved, with a few offers in stock, so a
fresh demo shows the whole flow (request → round → order → shipment → delivery)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fugong.core import audit
from fugong.core.models import Organisation, User, UserRole
from fugong.supplies.models import Offer, PreEpidemicPrice, PriceCap, SupplierVetting

# item, stock, daily capacity, unit price, lead time (days)
DEMO_OFFERS: tuple[tuple[str, int, int, float, int], ...] = (
    ("mask_surgical", 20000, 5000, 0.9, 1),
    ("mask_kn95", 3000, 1000, 3.8, 1),
    ("ir_thermometer", 40, 20, 160.0, 2),
    ("thermal_camera", 3, 1, 32000.0, 1),
    ("disinfectant_84", 500, 200, 8.5, 1),
    ("alcohol_75", 300, 100, 21.0, 1),
)


def load_supplies_demo(session: Session) -> None:
    """Approve the demo supplier (licence and medical-device registration on file), post its
    offers for Huangpu and its neighbours, and cap masks: surgical masks at 1.5x the reference
    price, KN95 at 30% over the supplier's reviewed pre-epidemic price (1.5x for others)."""
    supplier = session.scalar(
        select(Organisation).where(Organisation.kind == "supplier").order_by(Organisation.id)
    )
    official = session.scalar(
        select(User).join(UserRole).where(UserRole.role == "official").order_by(User.id)
    )
    if supplier is None or official is None:
        return
    now = datetime.now(UTC)
    session.add(
        SupplierVetting(
            organisation_id=supplier.id,
            status="approved",
            documents=[
                {"type": "licence", "name": "营业执照", "number": supplier.uscc or "demo"},
                {
                    "type": "medical_device",
                    "name": "医疗器械经营备案凭证",
                    "number": "粤穗食药监械经营备20200001",
                },
            ],
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
    for code, stock, capacity, price, lead in DEMO_OFFERS:
        session.add(
            Offer(
                supplier_id=supplier.id,
                item_code=code,
                stock=stock,
                daily_capacity=capacity,
                unit_price=price,
                lead_time_days=lead,
                districts=["黄埔区", "天河区", "增城区"],
                created_at=now,
            )
        )
    session.flush()
    audit.record(
        session,
        actor=None,
        action="supplies.demo",
        target_type="organisation",
        target_id=supplier.id,
        after={"offers": len(DEMO_OFFERS)},
    )
