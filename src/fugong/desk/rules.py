"""Pure rules of the desk: need types, urgencies, due times, the status machine, and the
default impact questionnaire. No framework imports: unit-tested on their own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

NEED_TYPES: dict[str, str] = {
    "supplies": "防疫物资",
    "policy": "政策咨询",
    "financing": "融资",
    "hiring": "招工用工",
    "network": "网络/远程办公服务",
    "other": "其他",
}
URGENCIES: dict[str, str] = {"urgent": "紧急", "high": "较急", "normal": "一般"}
STATUSES: dict[str, str] = {
    "new": "新建",
    "acknowledged": "已受理",
    "in_progress": "处理中",
    "resolved": "已解决",
    "cannot_help": "无法协助",
}
CLOSED = frozenset({"resolved", "cannot_help"})
# new → acknowledged → in progress → resolved / cannot help. Skipping "in progress" is allowed
# (a quick answer on the phone), going back is not: the history must read forwards.
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"acknowledged", "cannot_help"}),
    "acknowledged": frozenset({"in_progress", "resolved", "cannot_help"}),
    "in_progress": frozenset({"resolved", "cannot_help"}),
    "resolved": frozenset(),
    "cannot_help": frozenset(),
}


class TransitionError(ValueError):
    """A status change the machine does not allow; the message says which ones are."""


def check_transition(current: str, target: str, reason: str | None) -> None:
    if target not in STATUSES:
        raise TransitionError(f"未知状态“{target}”")
    allowed = TRANSITIONS[current]
    if target not in allowed:
        if not allowed:
            raise TransitionError(f"需求已{STATUSES[current]}，不能再变更")
        names = "、".join(STATUSES[s] for s in sorted(allowed, key=list(STATUSES).index))
        raise TransitionError(
            f"不能从“{STATUSES[current]}”变为“{STATUSES[target]}”，只能变为：{names}"
        )
    if target == "cannot_help" and not (reason and reason.strip()):
        raise TransitionError("选择“无法协助”时必须填写原因")


@dataclass(frozen=True)
class DueRule:
    acknowledge: timedelta
    resolve: timedelta


DEFAULT_DUE: dict[str, DueRule] = {
    "urgent": DueRule(timedelta(hours=4), timedelta(hours=24)),
    "high": DueRule(timedelta(hours=8), timedelta(hours=72)),
    "normal": DueRule(timedelta(hours=24), timedelta(days=7)),
}


def parse_due_rules(spec: str) -> dict[str, DueRule]:
    """``"urgent=4/24,high=8/72,normal=24/168"`` (hours to acknowledge / to resolve)."""
    rules = dict(DEFAULT_DUE)
    for part in filter(None, (p.strip() for p in spec.split(","))):
        try:
            name, hours = part.split("=")
            ack, res = (float(h) for h in hours.split("/"))
        except ValueError:
            raise ValueError(f"期限规则格式应为 urgency=确认小时/解决小时：{part!r}") from None
        if name not in URGENCIES or ack <= 0 or res < ack:
            raise ValueError(f"期限规则无效：{part!r}")
        rules[name] = DueRule(timedelta(hours=ack), timedelta(hours=res))
    return rules


def due_times(
    urgency: str, created_at: datetime, rules: dict[str, DueRule] | None = None
) -> tuple[datetime, datetime]:
    """When a need must be acknowledged and resolved, from its urgency."""
    rule = (rules or DEFAULT_DUE)[urgency]
    return created_at + rule.acknowledge, created_at + rule.resolve


def overdue(
    status: str,
    ack_due: datetime,
    resolve_due: datetime,
    acknowledged_at: datetime | None,
    now: datetime,
) -> str | None:
    """Which deadline a need has missed, if any: "acknowledge" or "resolve"."""
    if status in CLOSED:
        return None
    if acknowledged_at is None and now > ack_due:
        return "acknowledge"
    if now > resolve_due:
        return "resolve"
    return None


# -- questionnaires ------------------------------------------------------------------------

QUESTION_TYPES = ("single", "multi", "number", "date", "text")


def default_questionnaire() -> list[dict[str, Any]]:
    """The impact questionnaire of desk.md. ``maps_to`` names the enterprise fact an answer
    updates; ``creates_needs`` marks the question whose choices become needs."""
    return [
        {
            "key": "resumption_status",
            "label": "复工状态",
            "type": "single",
            "required": True,
            "options": {
                "not_resumed": "未复工",
                "approved": "已批准复工",
                "partial": "部分复工",
                "full": "全面复工",
            },
            "maps_to": "resumption_status",
        },
        {
            "key": "resumption_date",
            "label": "复工（批准）日期",
            "type": "date",
            "required": False,
            "maps_to": "resumption_date",
        },
        {
            "key": "staff_back_pct",
            "label": "员工返岗比例（%）",
            "type": "number",
            "min": 0,
            "max": 100,
            "required": False,
            "maps_to": "staff_back_pct",
        },
        {
            "key": "staff_stuck",
            "label": "滞留外地员工人数",
            "type": "number",
            "min": 0,
            "required": False,
        },
        {
            "key": "mask_days",
            "label": "口罩库存可用天数",
            "type": "number",
            "min": 0,
            "required": False,
        },
        {
            "key": "thermometer_days",
            "label": "测温设备可用天数",
            "type": "number",
            "min": 0,
            "required": False,
        },
        {
            "key": "disinfectant_days",
            "label": "消毒液可用天数",
            "type": "number",
            "min": 0,
            "required": False,
        },
        {
            "key": "orders_lost",
            "label": "订单流失情况",
            "type": "single",
            "required": False,
            "options": {"none": "无", "some": "少量", "many": "大量"},
        },
        {
            "key": "cash_months",
            "label": "现金流可支撑月数",
            "type": "number",
            "min": 0,
            "required": False,
        },
        {
            "key": "supply_chain",
            "label": "供应链是否中断",
            "type": "single",
            "required": False,
            "options": {"no": "否", "partly": "部分中断", "yes": "严重中断"},
        },
        {
            "key": "measures_known",
            "label": "已了解的惠企政策",
            "type": "multi",
            "required": False,
            "options": {
                "nuanqi8": "暖企8条",
                "wenqi6": "稳企6条",
                "si": "社保减免",
                "ui_refund": "稳岗返还",
                "city15": "市中小企业15条",
            },
        },
        {
            "key": "help_needed",
            "label": "需要的帮助",
            "type": "multi",
            "required": False,
            "options": dict(NEED_TYPES),
            "creates_needs": True,
        },
        {
            "key": "help_urgency",
            "label": "紧急程度",
            "type": "single",
            "required": False,
            "options": dict(URGENCIES),
        },
        {"key": "help_detail", "label": "需求说明", "type": "text", "required": False},
    ]


def validate_answers(
    questions: list[dict[str, Any]], raw: dict[str, Any], *, final: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    """Clean a form's answers against the questionnaire. Drafts skip the ``required`` check.
    Returns (answers, errors by question key)."""
    answers: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for q in questions:
        key, kind = q["key"], q["type"]
        value = raw.get(key)
        if kind == "multi":
            values = [v for v in (value or []) if v]
            bad = [v for v in values if v not in q.get("options", {})]
            if bad:
                errors[key] = f"无效选项：{'、'.join(bad)}"
            elif values:
                answers[key] = values
        else:
            text = (value or "").strip() if isinstance(value, str) else value
            if text in (None, ""):
                pass
            elif kind == "single":
                if text not in q.get("options", {}):
                    errors[key] = f"无效选项：{text}"
                else:
                    answers[key] = text
            elif kind == "number":
                try:
                    num = float(text)
                except (TypeError, ValueError):
                    errors[key] = f"应为数字：{text}"
                    continue
                if ("min" in q and num < q["min"]) or ("max" in q and num > q["max"]):
                    errors[key] = f"应在 {q.get('min', '-∞')}–{q.get('max', '∞')} 之间"
                    continue
                answers[key] = int(num) if num.is_integer() else num
            elif kind == "date":
                try:
                    answers[key] = datetime.strptime(str(text), "%Y-%m-%d").date().isoformat()
                except ValueError:
                    errors[key] = f"日期格式应为 YYYY-MM-DD：{text}"
            else:
                answers[key] = str(text)[:2000]
        if final and q.get("required") and key not in answers and key not in errors:
            errors[key] = "必填"
    if final and answers.get("help_needed") and "help_urgency" not in answers:
        errors["help_urgency"] = "有需求时请选择紧急程度"
    return answers, errors


def check_questionnaire(questions: Any) -> list[str]:
    """Problems with an edited questionnaire (empty list when it is usable)."""
    problems: list[str] = []
    if not isinstance(questions, list) or not questions:
        return ["问卷至少需要一个问题"]
    seen: set[str] = set()
    for i, q in enumerate(questions, start=1):
        if not isinstance(q, dict):
            problems.append(f"第{i}题格式错误")
            continue
        key = q.get("key")
        if not isinstance(key, str) or not key.isidentifier():
            problems.append(f"第{i}题的 key 无效")
        elif key in seen:
            problems.append(f"第{i}题的 key “{key}”重复")
        else:
            seen.add(key)
        if q.get("type") not in QUESTION_TYPES:
            problems.append(f"第{i}题的类型应为 {'/'.join(QUESTION_TYPES)}")
        if q.get("type") in ("single", "multi") and not q.get("options"):
            problems.append(f"第{i}题缺少选项")
        if not q.get("label"):
            problems.append(f"第{i}题缺少题目")
    return problems
