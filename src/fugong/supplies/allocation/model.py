"""Records of an allocation round, their validation, and the plan's JSON shape.

The engine takes a :class:`Problem` (offers and requests) and returns a :class:`Plan`. A problem
read from a file goes through :func:`parse_problem`, which checks every field and raises
:class:`ProblemError` naming the record (``requests[3] (id R7)``) and the field; a problem built
in code is checked by :func:`validate_problem` (the engine calls it) for the value rules that the
type checker cannot see (ranges, duplicate ids).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import repeat
from typing import Any, NamedTuple

__all__ = [
    "MAX_PRICE",
    "MAX_UNITS",
    "Offer",
    "Plan",
    "PlanColumns",
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


class PlanLine(NamedTuple):
    """``quantity`` units of ``offer`` go to ``request``.

    Records of a plan are named tuples: immutable, and built at C speed from the plan's
    columns (a district round has tens of thousands of them).
    """

    request: str
    offer: str
    quantity: int


class RequestResult(NamedTuple):
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
class PlanColumns:
    """A plan's per-record results as parallel columns, the way the engine computes them.

    Requests: ``ids``, ``requested``, ``allocated``, ``fill`` and ``fair_fill``, in input
    order. Lines: ``line_request`` and ``line_offer`` index ``ids`` and ``offer_ids``;
    ``line_quantity`` are the units; sorted by request, then offer (input positions).
    """

    ids: list[str]
    requested: list[int]
    # The numeric columns: lists, or the engine's numpy arrays (this module does not import
    # numpy, hence Any) until :meth:`lists` converts them.
    allocated: Any
    fill: Any
    fair_fill: Any
    offer_ids: list[str]
    line_request: Any
    line_offer: Any
    line_quantity: Any

    def lists(self) -> PlanColumns:
        """The columns as lists of Python numbers. The engine hands over numpy arrays, as it
        computed them; they are turned into lists once, when a caller first reads them."""
        if isinstance(self.allocated, list):
            return self

        def listed(column: Any) -> list[Any]:
            to_list = getattr(column, "tolist", None)
            return to_list() if to_list is not None else list(column)

        return PlanColumns(
            self.ids,
            self.requested,
            listed(self.allocated),
            listed(self.fill),
            listed(self.fair_fill),
            self.offer_ids,
            listed(self.line_request),
            listed(self.line_offer),
            listed(self.line_quantity),
        )


class Plan:
    """A round's result: routed lines (by request, then offer, in input order), every request
    in input order, tiers ascending, and ``cost`` = sum of line quantity x offer unit price
    (the engine multiplies once per group of equally priced offers and sums exactly, so the
    last digit may differ from a line-by-line float sum).

    Immutable. The engine hands over :class:`PlanColumns` and ``lines`` / ``requests`` become
    tuples of records on first access: a caller that only stores the plan (``plan_to_dict``)
    or reads totals never builds 20,000 record objects.
    """

    __slots__ = ("_columns", "_lines", "_requests", "cost", "tiers")

    _columns: PlanColumns | None
    _lines: tuple[PlanLine, ...] | None
    _requests: tuple[RequestResult, ...] | None
    tiers: tuple[TierResult, ...]
    cost: float

    def __init__(
        self,
        lines: tuple[PlanLine, ...],
        requests: tuple[RequestResult, ...],
        tiers: tuple[TierResult, ...],
        cost: float,
    ) -> None:
        object.__setattr__(self, "_lines", lines)
        object.__setattr__(self, "_requests", requests)
        object.__setattr__(self, "_columns", None)
        object.__setattr__(self, "tiers", tiers)
        object.__setattr__(self, "cost", cost)

    @classmethod
    def from_columns(cls, columns: PlanColumns, tiers: tuple[TierResult, ...], cost: float) -> Plan:
        plan = cls.__new__(cls)
        object.__setattr__(plan, "_lines", None)
        object.__setattr__(plan, "_requests", None)
        object.__setattr__(plan, "_columns", columns)
        object.__setattr__(plan, "tiers", tiers)
        object.__setattr__(plan, "cost", cost)
        return plan

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Plan is immutable: cannot set '{name}'")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Plan is immutable: cannot delete '{name}'")

    def _listed(self) -> PlanColumns | None:
        """The columns as lists (converted once), or None for a plan built from records."""
        c = self._columns
        if c is not None and (listed := c.lists()) is not c:
            object.__setattr__(self, "_columns", listed)
            return listed
        return c

    @property
    def lines(self) -> tuple[PlanLine, ...]:
        if self._lines is None:
            c = self._listed()
            assert c is not None
            rid, oid = c.ids, c.offer_ids
            rows = zip(
                map(rid.__getitem__, c.line_request),
                map(oid.__getitem__, c.line_offer),
                c.line_quantity,
                strict=True,
            )
            built = tuple(map(tuple.__new__, repeat(PlanLine), rows))
            object.__setattr__(self, "_lines", built)
            return built
        return self._lines

    @property
    def requests(self) -> tuple[RequestResult, ...]:
        if self._requests is None:
            c = self._listed()
            assert c is not None
            rows = zip(c.ids, c.requested, c.allocated, c.fill, c.fair_fill, strict=True)
            built = tuple(map(tuple.__new__, repeat(RequestResult), rows))
            object.__setattr__(self, "_requests", built)
            return built
        return self._requests

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Plan):
            return NotImplemented
        return (self.lines, self.requests, self.tiers, self.cost) == (
            other.lines,
            other.requests,
            other.tiers,
            other.cost,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Plan(lines={self.lines!r}, requests={self.requests!r}, tiers={self.tiers!r}, "
            f"cost={self.cost!r})"
        )


# The largest integer every JSON reader keeps exactly (RFC 7493, I-JSON); bounding each side's
# total by it also keeps the engine's unit counts exact in 64-bit integers and doubles.
MAX_UNITS = 2**53 - 1
# The largest unit price: every unit on offer at it still costs a finite double in total
# (about 2e292 yuan; a price beyond it is a typing error, not a market price).
MAX_PRICE = sys.float_info.max / MAX_UNITS

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
    if offer.quantity > MAX_UNITS:
        return f"{where}: field 'quantity' must be <= {MAX_UNITS}, got {offer.quantity}"
    if not 0 <= offer.unit_price <= MAX_PRICE:  # also false for NaN
        price = offer.unit_price
        return f"{where}: field 'unit_price' must be >= 0 and <= {MAX_PRICE:.3g}, got {price}"
    return None


def _request_fault(i: int, request: Request) -> str | None:
    where = _where("requests", i, request)
    if request.id == "":
        return f"{where}: field 'id' must not be empty"
    if request.quantity <= 0:
        return f"{where}: field 'quantity' must be > 0, got {request.quantity}"
    if request.quantity > MAX_UNITS:
        return f"{where}: field 'quantity' must be <= {MAX_UNITS}, got {request.quantity}"
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
    validate_offers(problem.offers)
    for i, r in enumerate(problem.requests):
        cap = r.max_unit_price
        if not (
            0 < r.quantity <= MAX_UNITS
            and r.tier >= 1
            and r.id
            and (cap is None or 0 <= cap < math.inf)
        ):
            raise ProblemError(_request_fault(i, r))
    _check_unique("requests", [r.id for r in problem.requests])
    _check_total("requests", [r.quantity for r in problem.requests])


def validate_offers(offers: tuple[Offer, ...]) -> None:
    """The offers' part of :func:`validate_problem` (the engine checks requests its own way)."""
    for i, o in enumerate(offers):
        if not (0 <= o.quantity <= MAX_UNITS and 0 <= o.unit_price <= MAX_PRICE and o.id):
            raise ProblemError(_offer_fault(i, o))
    _check_unique("offers", [o.id for o in offers])
    _check_total("offers", [o.quantity for o in offers])


def _check_total(kind: str, quantities: list[int]) -> None:
    total = sum(quantities)
    if total > MAX_UNITS:
        raise ProblemError(f"{kind}: total quantity must be <= {MAX_UNITS}, got {total}")


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
    c = plan._listed()  # the columns spare building the record objects
    if c is not None:
        rid, oid = c.ids, c.offer_ids
        lines = [
            {"request": rid[r], "offer": oid[o], "quantity": q}
            for r, o, q in zip(c.line_request, c.line_offer, c.line_quantity, strict=True)
        ]
        requests = [
            {"id": i, "allocated": a, "fill": f}
            for i, a, f in zip(c.ids, c.allocated, c.fill, strict=True)
        ]
    else:
        lines = [
            {"request": ln.request, "offer": ln.offer, "quantity": ln.quantity} for ln in plan.lines
        ]
        requests = [{"id": r.id, "allocated": r.allocated, "fill": r.fill} for r in plan.requests]
    return {
        "lines": lines,
        "requests": requests,
        "tiers": [
            {"tier": t.tier, "requested": t.requested, "allocated": t.allocated} for t in plan.tiers
        ],
        "cost": plan.cost,
    }
