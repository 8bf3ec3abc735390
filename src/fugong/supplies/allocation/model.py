"""Records of an allocation round, their validation, and the plan's JSON shape.

The engine takes a :class:`Problem` (offers and requests) and returns a :class:`Plan`. A problem
read from a file goes through :func:`parse_problem`, which checks every field and raises
:class:`ProblemError` naming the record (``requests[3] (id R7)``) and the field; a problem built
in code is checked by :func:`validate_problem` (the engine calls it) for the value rules that the
type checker cannot see (ranges, duplicate ids).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

__all__ = [
    "Offer",
    "Plan",
    "PlanLine",
    "Problem",
    "ProblemError",
    "Request",
    "RequestResult",
    "TierResult",
    "parse_problem",
    "plan_to_dict",
    "validate_problem",
]


class ProblemError(ValueError):
    """A malformed problem; the message names the record and the field."""


@dataclass(frozen=True, slots=True)
class Offer:
    """A supplier's stock of one item for this round, at one unit price, for some regions."""

    id: str
    supplier: str
    item: str
    quantity: int
    unit_price: float
    regions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Request:
    """An enterprise's need for one item in one region; ``max_unit_price`` None means no cap."""

    id: str
    enterprise: str
    item: str
    quantity: int
    tier: int
    region: str
    max_unit_price: float | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """One allocation round's input, in file order (error messages cite positions)."""

    offers: tuple[Offer, ...]
    requests: tuple[Request, ...]


@dataclass(frozen=True, slots=True)
class PlanLine:
    """``quantity`` units of ``offer`` go to ``request``."""

    request: str
    offer: str
    quantity: int


@dataclass(frozen=True, slots=True)
class RequestResult:
    """What a request receives.

    ``fair_fill`` is the exact fill ratio of the fractional fair share (max-min fair within the
    tier, given the earlier tiers); ``share`` = ``fair_fill * requested``, and ``allocated`` is
    its floor or its ceiling; ``fill`` = ``allocated / requested``.
    """

    id: str
    requested: int
    allocated: int
    fill: float
    fair_fill: Fraction

    @property
    def share(self) -> Fraction:
        # Derived, not stored: requests of one class share one Fraction object for the fill,
        # which keeps a 200,000-request plan from building 200,000 fractions.
        return self.fair_fill * self.requested


@dataclass(frozen=True, slots=True)
class TierResult:
    """Units requested by and allocated to one tier."""

    tier: int
    requested: int
    allocated: int


@dataclass(frozen=True, slots=True)
class Plan:
    """A round's result: routed lines (by request, then offer, in input order), every request
    in input order, tiers ascending, and ``cost`` = sum of line quantity x offer unit price."""

    lines: tuple[PlanLine, ...]
    requests: tuple[RequestResult, ...]
    tiers: tuple[TierResult, ...]
    cost: float


_OFFER_FIELDS = ("id", "supplier", "item", "quantity", "unit_price", "regions")
_REQUEST_FIELDS = ("id", "enterprise", "item", "quantity", "tier", "region", "max_unit_price")


def _where(kind: str, index: int, record: Mapping[str, Any] | Offer | Request) -> str:
    """``requests[3] (id R7)``: the position finds it in the file, the id in the platform."""
    rid = record.get("id") if isinstance(record, Mapping) else record.id
    return f"{kind}[{index}] (id {rid})" if isinstance(rid, str) else f"{kind}[{index}]"


def _is_int(value: object) -> bool:
    # bool is an int subclass, but `true` for a quantity is a mistake, not 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _field(where: str, record: Mapping[str, Any], name: str) -> Any:
    if name not in record:
        raise ProblemError(f"{where}: missing field '{name}'")
    return record[name]


def _text(where: str, record: Mapping[str, Any], name: str) -> str:
    value = _field(where, record, name)
    if not isinstance(value, str):
        raise ProblemError(f"{where}: field '{name}' must be a string, got {value!r}")
    return value


def _integer(where: str, record: Mapping[str, Any], name: str) -> int:
    value = _field(where, record, name)
    if not _is_int(value):
        raise ProblemError(f"{where}: field '{name}' must be an integer, got {value!r}")
    return int(value)


def _number(where: str, value: object, name: str) -> float:
    if _is_int(value) or isinstance(value, float):
        try:
            number = float(value)  # type: ignore[arg-type]
        except OverflowError:  # an integer beyond the float range
            number = math.inf
        if math.isfinite(number):
            return number
    raise ProblemError(f"{where}: field '{name}' must be a finite number, got {value!r}")


def _records(obj: Mapping[str, Any], kind: str) -> Sequence[Any]:
    if kind not in obj:
        raise ProblemError(f"problem: missing field '{kind}'")
    value = obj[kind]
    if not isinstance(value, list):
        raise ProblemError(f"problem: field '{kind}' must be a list, got {type(value).__name__}")
    return value


def _check_keys(where: str, record: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    # An unknown key is most often a misspelt one ("max_price"); ignoring it would silently
    # drop a price cap, so it is an error.
    for key in record:
        if key not in allowed:
            raise ProblemError(f"{where}: unknown field '{key}'")


def _parse_offer(index: int, raw: object) -> Offer:
    if not isinstance(raw, dict):
        raise ProblemError(f"offers[{index}]: must be an object, got {type(raw).__name__}")
    where = _where("offers", index, raw)
    _check_keys(where, raw, _OFFER_FIELDS)
    regions = _field(where, raw, "regions")
    if not isinstance(regions, list) or not all(isinstance(r, str) for r in regions):
        raise ProblemError(f"{where}: field 'regions' must be a list of strings, got {regions!r}")
    return Offer(
        id=_text(where, raw, "id"),
        supplier=_text(where, raw, "supplier"),
        item=_text(where, raw, "item"),
        quantity=_integer(where, raw, "quantity"),
        unit_price=_number(where, _field(where, raw, "unit_price"), "unit_price"),
        regions=tuple(regions),
    )


def _parse_request(index: int, raw: object) -> Request:
    if not isinstance(raw, dict):
        raise ProblemError(f"requests[{index}]: must be an object, got {type(raw).__name__}")
    where = _where("requests", index, raw)
    _check_keys(where, raw, _REQUEST_FIELDS)
    cap = raw.get("max_unit_price")
    return Request(
        id=_text(where, raw, "id"),
        enterprise=_text(where, raw, "enterprise"),
        item=_text(where, raw, "item"),
        quantity=_integer(where, raw, "quantity"),
        tier=_integer(where, raw, "tier"),
        region=_text(where, raw, "region"),
        max_unit_price=None if cap is None else _number(where, cap, "max_unit_price"),
    )


def _offer_fault(i: int, offer: Offer) -> str | None:
    where = _where("offers", i, offer)
    if offer.id == "":
        return f"{where}: field 'id' must not be empty"
    if offer.quantity < 0:
        return f"{where}: field 'quantity' must be >= 0, got {offer.quantity}"
    if not 0 <= offer.unit_price < math.inf:  # also false for NaN
        return f"{where}: field 'unit_price' must be >= 0, got {offer.unit_price}"
    return None


def _request_fault(i: int, request: Request) -> str | None:
    where = _where("requests", i, request)
    if request.id == "":
        return f"{where}: field 'id' must not be empty"
    if request.quantity <= 0:
        return f"{where}: field 'quantity' must be > 0, got {request.quantity}"
    if request.tier < 1:
        return f"{where}: field 'tier' must be >= 1, got {request.tier}"
    cap = request.max_unit_price
    if cap is not None and not 0 <= cap < math.inf:
        return f"{where}: field 'max_unit_price' must be >= 0 or null, got {cap}"
    return None


def _check_unique(kind: str, ids: list[str]) -> None:
    if len(set(ids)) == len(ids):
        return
    first: dict[str, int] = {}
    for i, rid in enumerate(ids):
        if rid in first:
            raise ProblemError(
                f"{kind}[{i}] (id {rid}): field 'id' duplicates {kind}[{first[rid]}]"
            )
        first[rid] = i


def validate_problem(problem: Problem) -> None:
    """Check the value rules: quantities, prices, tiers, ids. Raise :class:`ProblemError`."""
    # One cheap pass that only flags a record; messages are built for the faulty one alone
    # (this runs on every allocation, and a district has tens of thousands of requests).
    for i, o in enumerate(problem.offers):
        if not (o.quantity >= 0 and 0 <= o.unit_price < math.inf and o.id):
            raise ProblemError(_offer_fault(i, o))
    _check_unique("offers", [o.id for o in problem.offers])
    for i, r in enumerate(problem.requests):
        cap = r.max_unit_price
        if not (r.quantity > 0 and r.tier >= 1 and r.id and (cap is None or 0 <= cap < math.inf)):
            raise ProblemError(_request_fault(i, r))
    _check_unique("requests", [r.id for r in problem.requests])


def parse_problem(obj: object) -> Problem:
    """Build a :class:`Problem` from decoded JSON, checking every field (see the file contract)."""
    if not isinstance(obj, dict):
        raise ProblemError(f"problem: must be an object, got {type(obj).__name__}")
    _check_keys("problem", obj, ("offers", "requests"))
    offers = tuple(_parse_offer(i, raw) for i, raw in enumerate(_records(obj, "offers")))
    requests = tuple(_parse_request(i, raw) for i, raw in enumerate(_records(obj, "requests")))
    problem = Problem(offers=offers, requests=requests)
    validate_problem(problem)
    return problem


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan in the file contract's JSON shape (``lines``, ``requests``, ``tiers``, ``cost``)."""
    return {
        "lines": [
            {"request": ln.request, "offer": ln.offer, "quantity": ln.quantity} for ln in plan.lines
        ],
        "requests": [{"id": r.id, "allocated": r.allocated, "fill": r.fill} for r in plan.requests],
        "tiers": [
            {"tier": t.tier, "requested": t.requested, "allocated": t.allocated} for t in plan.tiers
        ],
        "cost": plan.cost,
    }
