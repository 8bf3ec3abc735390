"""Pure supplies rules: the catalogue, the district's tiering and need-cap policy, the price
cap and the order state machine. No database here, so every rule is unit-tested on its own and
the services only gather facts and store the results (with the explanation the enterprise sees).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

# code, name, unit, reference price (yuan, early-2020 list prices), needs a medical-device
# registration
CATALOGUE: tuple[tuple[str, str, str, float, bool], ...] = (
    ("mask_surgical", "医用外科口罩", "个", 0.8, True),
    ("mask_kn95", "KN95/N95 口罩", "个", 3.5, True),
    ("protective_suit", "医用防护服", "套", 60.0, True),
    ("goggles", "护目镜", "副", 25.0, True),
    ("ir_thermometer", "红外额温枪", "台", 150.0, True),
    ("thermal_camera", "红外热成像测温仪", "台", 30000.0, True),
    ("disinfectant_84", "84 消毒液", "升", 8.0, False),
    ("alcohol_75", "75% 酒精", "升", 20.0, False),
    ("hand_sanitizer", "免洗洗手液", "瓶", 15.0, False),
    ("gloves", "一次性手套", "副", 0.5, False),
)
ITEM_CODES = tuple(c[0] for c in CATALOGUE)

VETTING_STATUSES = {"pending": "待审核", "approved": "已通过", "refused": "未通过"}
DOCUMENT_TYPES = {"licence": "营业执照", "medical_device": "医疗器械注册证/备案凭证"}
OFFER_STATUSES = {"active": "有效", "flagged": "价格超限待核", "withdrawn": "已撤回"}
REQUEST_STATUSES = {
    "open": "待分配",
    "partly": "部分分配",
    "allocated": "已分配",
    "fulfilled": "已送达",
    "withdrawn": "已撤回",
}
ORDER_STATUSES = {
    "allocated": "已分配",
    "confirmed": "供应商已确认",
    "shipped": "已发货",
    "delivered": "已收货",
    "cancelled": "已取消",
}
ROUND_STATUSES = {"draft": "预览", "committed": "已提交"}
# Requests still waiting for (more) supply: a round takes them, carrying the unmet part forward.
WAITING = ("open", "partly")

# Who may move an order, and from where. Delivery is confirmed by the receiver, never the sender.
ORDER_TRANSITIONS: dict[str, dict[str, str]] = {
    "confirm": {"allocated": "confirmed"},
    "ship": {"allocated": "shipped", "confirmed": "shipped"},
    "deliver": {"shipped": "delivered"},
    "cancel": {"allocated": "cancelled", "confirmed": "cancelled"},
}
ORDER_ACTORS: dict[str, str] = {
    "confirm": "supplier",
    "ship": "supplier",
    "deliver": "enterprise",
    "cancel": "any",
}
SHIP_WITHIN_HOURS = 24  # the article's bar: shipped within 24 hours of asking


class RuleError(ValueError):
    """A rule refuses the input; the message is shown to the user as is."""


def next_order_status(action: str, status: str) -> str:
    if action not in ORDER_TRANSITIONS:
        raise RuleError(f"未知操作：{action}")
    to = ORDER_TRANSITIONS[action].get(status)
    if to is None:
        raise RuleError(f"订单状态为“{ORDER_STATUSES.get(status, status)}”，不能执行该操作")
    return to


def price_cap(reference_price: float, factor: float) -> float:
    return round(reference_price * factor, 2)


def over_cap(unit_price: float, reference_price: float, factor: float | None) -> bool:
    """An offer above reference x factor is flagged; no factor set means no cap."""
    return factor is not None and unit_price > price_cap(reference_price, factor) + 1e-9


CAP_MODES = {"factor": "参考价 × 倍数", "margin": "疫情前价格 × (1 + 加价率)"}
# Guangdong declared its first-level public-health emergency response on 2020-01-23: an invoice
# dated on or after it does not show a pre-epidemic price.
EPIDEMIC_START = date(2020, 1, 23)


@dataclass(frozen=True)
class CapRule:
    """An item's price cap as the official set it (see ``models.PriceCap``)."""

    mode: str = "factor"
    factor: float | None = None
    margin: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in CAP_MODES:
            raise RuleError(f"限价方式应为：{'、'.join(CAP_MODES)}")
        if self.factor is not None and not self.factor >= 1:
            raise RuleError("限价倍数不能小于 1")
        if self.margin is not None and not (0 <= self.margin < math.inf):
            raise RuleError("加价率不能为负数")
        if self.mode == "factor" and self.factor is None:
            raise RuleError("按参考价倍数限价时必须填写倍数")
        if self.mode == "margin" and self.margin is None:
            raise RuleError("按疫情前价格加价率限价时必须填写加价率")


def margin_cap(pre_price: float, margin: float) -> float:
    return round(pre_price * (1 + margin), 2)


def cap_flag(
    unit_price: float, reference_price: float, rule: CapRule | None, pre_price: float | None
) -> str | None:
    """Why an offer at ``unit_price`` is flagged under ``rule`` (None: it is not). The reason
    names the rule that applied and the cap value.

    ``pre_price`` is the supplier's approved pre-epidemic price for the item, if any. Under a
    margin cap an offer without one falls back to reference x factor when a factor is set, and
    is otherwise flagged for review: there is nothing to measure its price against.
    """
    if rule is None:
        return None
    if rule.mode == "margin" and rule.margin is not None:
        pct = f"{rule.margin * 100:g}%"
        if pre_price is not None:
            limit = margin_cap(pre_price, rule.margin)
            if unit_price > limit + 1e-9:
                return (
                    f"单价 {unit_price:g} 元超过限价 {limit:g} 元"
                    f"（疫情前价格 {pre_price:g} 元 × (1 + 加价率 {pct})）"
                )
            return None
        if rule.factor is None:
            return (
                f"未登记经审核的疫情前价格，无法按加价率 {pct} 核定限价，"
                "且该物资未设参考价倍数，待人工核查"
            )
        if over_cap(unit_price, reference_price, rule.factor):
            limit = price_cap(reference_price, rule.factor)
            return (
                f"单价 {unit_price:g} 元超过限价 {limit:g} 元（未登记经审核的疫情前价格，"
                f"按参考价 {reference_price:g} × {rule.factor:g}）"
            )
        return None
    if over_cap(unit_price, reference_price, rule.factor):
        limit = price_cap(reference_price, rule.factor or 1)
        return (
            f"单价 {unit_price:g} 元超过限价 {limit:g} 元"
            f"（参考价 {reference_price:g} × {rule.factor:g}）"
        )
    return None


@dataclass(frozen=True)
class ItemCap:
    """A need cap for one item: ``per_employee_per_day`` x headcount x working days until the
    next round, and/or a ``fixed`` maximum per request."""

    per_employee_per_day: float | None = None
    fixed: int | None = None


@dataclass(frozen=True)
class Policy:
    """The district's supplies policy, edited by officials and stored as JSON."""

    tier1_key_categories: bool = True
    tier1_institutions: bool = True
    tier2_within_days: int = 7
    working_days_until_next_round: int = 5
    frequency_days: int = 7
    caps: dict[str, ItemCap] = field(
        default_factory=lambda: {
            "mask_surgical": ItemCap(per_employee_per_day=2),
            "mask_kn95": ItemCap(per_employee_per_day=2),
            "gloves": ItemCap(per_employee_per_day=2),
            "ir_thermometer": ItemCap(fixed=20),
            "thermal_camera": ItemCap(fixed=2),
        }
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "tier1_key_categories": self.tier1_key_categories,
            "tier1_institutions": self.tier1_institutions,
            "tier2_within_days": self.tier2_within_days,
            "working_days_until_next_round": self.working_days_until_next_round,
            "frequency_days": self.frequency_days,
            "caps": {
                k: {"per_employee_per_day": v.per_employee_per_day, "fixed": v.fixed}
                for k, v in sorted(self.caps.items())
            },
        }


def _nonneg_int(doc: dict[str, Any], key: str, default: int) -> int:
    v = doc.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise RuleError(f"{key} 应为非负整数")
    return v


def policy_from_dict(doc: dict[str, Any]) -> Policy:
    """Parse a stored or edited policy; every value is checked, unknown items refused."""
    if not isinstance(doc, dict):
        raise RuleError("政策应为 JSON 对象")
    unknown = set(doc) - set(Policy().to_dict())
    if unknown:
        raise RuleError(f"未知的政策项：{'、'.join(sorted(unknown))}")
    caps: dict[str, ItemCap] = {}
    raw_caps = doc.get("caps", Policy().to_dict()["caps"])
    if not isinstance(raw_caps, dict):
        raise RuleError("caps 应为对象")
    for item, raw in raw_caps.items():
        if item not in ITEM_CODES:
            raise RuleError(f"caps：未知物资 {item}")
        if not isinstance(raw, dict) or set(raw) - {"per_employee_per_day", "fixed"}:
            raise RuleError(f"caps.{item} 只能包含 per_employee_per_day 和 fixed")
        per = raw.get("per_employee_per_day")
        fixed = raw.get("fixed")
        if per is not None and (
            isinstance(per, bool) or not isinstance(per, int | float) or per < 0
        ):
            raise RuleError(f"caps.{item}.per_employee_per_day 应为非负数")
        if fixed is not None and (
            isinstance(fixed, bool) or not isinstance(fixed, int) or fixed < 0
        ):
            raise RuleError(f"caps.{item}.fixed 应为非负整数")
        if per is not None or fixed is not None:
            caps[item] = ItemCap(per_employee_per_day=per, fixed=fixed)
    for key in ("tier1_key_categories", "tier1_institutions"):
        if not isinstance(doc.get(key, True), bool):
            raise RuleError(f"{key} 应为 true 或 false")
    return Policy(
        tier1_key_categories=doc.get("tier1_key_categories", True),
        tier1_institutions=doc.get("tier1_institutions", True),
        tier2_within_days=_nonneg_int(doc, "tier2_within_days", 7),
        working_days_until_next_round=_nonneg_int(doc, "working_days_until_next_round", 5),
        frequency_days=_nonneg_int(doc, "frequency_days", 7),
        caps=caps,
    )


@dataclass(frozen=True)
class Facts:
    """What the policy reads about the requesting organisation."""

    org_kind: str
    key_category: str | None = None
    key_category_label: str | None = None
    resumption_status: str | None = None
    resumption_date: date | None = None
    headcount: int = 0


def tier_for(facts: Facts, today: date, policy: Policy) -> tuple[int, str]:
    """The priority tier and the sentence that explains it."""
    if policy.tier1_key_categories and facts.key_category:
        return 1, f"第一档：重点企业（{facts.key_category_label or facts.key_category}）"
    if policy.tier1_institutions and facts.org_kind == "institution":
        return 1, "第一档：医疗卫生或公共机构"
    if (
        facts.resumption_status == "approved"
        and facts.resumption_date is not None
        and today <= facts.resumption_date <= today + timedelta(days=policy.tier2_within_days)
    ):
        return 2, (
            f"第二档：已批准于 {facts.resumption_date.isoformat()} 复工"
            f"（{policy.tier2_within_days} 天内）"
        )
    return 3, "第三档：其他企业"


def cap_for(item: str, unit: str, facts: Facts, policy: Policy) -> tuple[int | None, str]:
    """The need cap for one request (None: no cap) and its explanation."""
    rule = policy.caps.get(item)
    if rule is None:
        return None, "该物资不设需求上限"
    caps: list[tuple[int, str]] = []
    if rule.per_employee_per_day is not None:
        days = policy.working_days_until_next_round
        n = math.floor(rule.per_employee_per_day * facts.headcount * days)
        caps.append(
            (
                n,
                f"每人每工作日 {rule.per_employee_per_day:g} {unit} × {facts.headcount} 人 × "
                f"{days} 个工作日（至下一轮）= {n} {unit}",
            )
        )
    if rule.fixed is not None:
        caps.append((rule.fixed, f"每次申请最多 {rule.fixed} {unit}"))
    if not caps:
        return None, "该物资不设需求上限"
    cap, why = min(caps, key=lambda c: c[0])
    return cap, f"上限 {cap} {unit}：{why}"


def approved_quantity(requested: int, cap: int | None) -> int:
    return requested if cap is None else min(requested, cap)


def request_status(approved: int, allocated: int) -> str:
    """Status of a live request from its quantities (withdrawn/fulfilled are set explicitly)."""
    if allocated <= 0:
        return "open"
    return "allocated" if allocated >= approved else "partly"
