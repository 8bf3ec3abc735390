"""Tracing for the CDC inside the platform: every query is for a case, by a ``cdc`` analyst,
and leaves an audit row with the analyst, the case reference and the counts returned; every
refused attempt leaves one too. Phone numbers are hashed on the fly and never stored."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from fugong.core import audit
from fugong.core.models import User
from fugong.errors import FieldError, ValidationFailed
from fugong.tracing.common import CompanionQuery, TracingDataError
from fugong.tracing.ingest import pseudonymise
from fugong.tracing.permissions import require_cdc

QUERY_KINDS: dict[str, str] = {
    "trajectory": "轨迹",
    "companions": "时空伴随者",
    "second_order": "次密接候选",
    "itinerary": "行程（城市）",
}
_UID = re.compile(r"[0-9a-f]{64}")
_CASE = re.compile(r"[\w\-()（）/#]{3,60}")


@dataclass
class TracingResult:
    kind: str
    uid: str
    case_ref: str
    at: datetime
    days: int
    engine: str
    rows: list[Any] = field(default_factory=list)
    seconds: float = 0.0


def resolve_uid(subject: str, key: bytes) -> str:
    """A pseudonym as typed, or the pseudonym of a phone number (hashed here, never kept)."""
    text = subject.strip().lower()
    if _UID.fullmatch(text):
        return text
    try:
        return pseudonymise(subject, key)
    except ValueError:
        raise ValidationFailed([FieldError("subject", "请输入11位手机号或64位假名标识")]) from None


def run_query(
    session: Session,
    *,
    actor: User,
    case_ref: str,
    subject: str,
    kind: str,
    at: datetime,
    days: int,
    data_dir: Path,
    key: bytes,
    engine: Any,
    min_overlap_s: int = 600,
    min_total_stay_s: int | None = None,
) -> TracingResult:
    require_cdc(session, actor, f"query {kind}")
    errors = []
    if not _CASE.fullmatch(case_ref.strip()):
        errors.append(FieldError("case_ref", "请填写病例编号（3–60个字符，如 GZ-2020-0128）"))
    if kind not in QUERY_KINDS:
        errors.append(FieldError("kind", "未知的查询类型"))
    if not 1 <= days <= 28:
        errors.append(FieldError("days", "回溯天数应在 1–28 之间（数据保留期为 28 天）"))
    if errors:
        raise ValidationFailed(errors)
    uid = resolve_uid(subject, key)
    started = time.perf_counter()
    try:
        if kind == "trajectory":
            rows: list[Any] = engine.trajectory(data_dir, uid, at, days)
        elif kind == "itinerary":
            rows = engine.itinerary(data_dir, uid, at, days)
        else:
            q = CompanionQuery(
                case=uid,
                at=at,
                days=days,
                min_overlap_s=min_overlap_s,
                min_total_stay_s=min_total_stay_s,
            )
            rows = (
                engine.companions(data_dir, q)
                if kind == "companions"
                else engine.second_order(data_dir, q)
            )
    except TracingDataError as e:
        raise ValidationFailed([FieldError("data", f"轨迹数据不可用：{e}")]) from None
    result = TracingResult(
        kind=kind,
        uid=uid,
        case_ref=case_ref.strip(),
        at=at,
        days=days,
        engine=getattr(engine, "name", type(engine).__name__),
        rows=rows,
        seconds=time.perf_counter() - started,
    )
    audit.record(
        session,
        actor=actor,
        action="tracing.query",
        target_type="tracing_case",
        target_id=result.case_ref,
        after={
            "kind": kind,
            "uid": uid,
            "at": at,
            "days": days,
            "count": len(rows),
            "engine": result.engine,
        },
        detail=f"{QUERY_KINDS[kind]} {len(rows)} 条",
    )
    return result
