"""Emergency supplies: catalogue, supplier vetting, offers, requests with tier and cap,
allocation rounds (the pure engine in :mod:`.allocation`), orders and response times."""

from fugong.supplies.models import (
    AllocationRound,
    Offer,
    PreEpidemicPrice,
    PriceCap,
    SupplierVetting,
    SupplyItem,
    SupplyOrder,
    SupplyPolicy,
    SupplyRequest,
)

__all__ = [
    "AllocationRound",
    "Offer",
    "PreEpidemicPrice",
    "PriceCap",
    "SupplierVetting",
    "SupplyItem",
    "SupplyOrder",
    "SupplyPolicy",
    "SupplyRequest",
]
