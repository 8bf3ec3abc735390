"""Policy writes: facts per period (a new version per edit), officials' parameter values,
claims (apply, upload documents, review, payout). Each takes the actor, checks scope, writes
its audit row in the same transaction and flushes; notifications go out after the commit."""

from __future__ import annotations

import hashlib
import io
import math
import re
import secrets
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fugong.core import audit, storage
from fugong.core.models import Enterprise, Organisation, User, UserRole
from fugong.core.notify import notify
from fugong.core.permissions import require_role
from fugong.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from fugong.policies.engine import Pack, format_cents
from fugong.policies.engine.table import parse_cell
from fugong.policies.models import (
    CLAIM_STATUSES,
    DOCUMENT_TYPES,
    MAX_DOCUMENT_BYTES,
    Claim,
    ClaimDocument,
    EnterpriseFacts,
    ParameterValue,
)
from fugong.policies.permissions import (
    PARAMETER_EDITORS,
    REVIEWERS,
    can_apply,
    can_enter_facts,
    can_review,
)
from fugong.policies.queries import (
    DEFAULT_PACK,
    REGISTRY_FACTS,
    amount_stand_in,
    base_pack,
    current_pack,
    evaluate_one,
    get_claim,
    pack_label,
    visible_enterprise,
)
from fugong.policies.schemas import ClaimCreate, ClaimReview, ParameterValueCreate, PayoutCreate

_PERIOD_RE = re.compile(r"20[0-9]{2}")
_STORED_RE = re.compile(r"[0-9a-f]{32}\.(pdf|jpg|png|xlsx)")
#: File-name endings accepted for each detected type (the name must agree with the bytes).
_EXTENSIONS = {"pdf": (".pdf",), "jpg": (".jpg", ".jpeg"), "png": (".png",), "xlsx": (".xlsx",)}


def _now() -> datetime:
    return datetime.now(UTC)


def to_cents(yuan: float) -> int:
    """Yuan to whole fen, half-up, without binary noise (0.285 yuan -> 29 fen)."""
    return math.floor(round(yuan * 100, 6) + 0.5)


def _check_period(period: str) -> None:
    if not _PERIOD_RE.fullmatch(period):
        raise ValidationFailed([FieldError("period", "年度应为四位数字，如 2020")])


# -- facts ---------------------------------------------------------------------------------


def entered_facts(pack: Pack) -> list[str]:
    """The pack's facts an enterprise enters (the registry keeps the rest)."""
    return [name for name in pack.facts if name not in REGISTRY_FACTS and name != pack.id_fact]


def validate_facts(pack: Pack, values: Mapping[str, Any]) -> dict[str, Any]:
    """Check form values against facts.yaml and return the JSON document to store.

    Empty means unknown and is left out. Raises ValidationFailed naming every bad field."""
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    for name in entered_facts(pack):
        raw = values.get(name)
        if raw is None:
            continue
        spec = pack.facts[name]
        try:
            value = parse_cell(spec, str(raw))
        except ValueError as e:
            errors.append(FieldError(name, f"{spec.label or name}：{e}"))
            continue
        if value is None:
            continue
        if spec.kind == "date":
            value = value.isoformat()
        elif spec.kind == "number" and spec.integer:
            value = int(value)
        out[name] = value
    unknown = sorted(set(values) - set(pack.facts))
    if unknown:
        errors.append(FieldError(unknown[0], "不是本政策包的数据项"))
    if errors:
        raise ValidationFailed(errors)
    return out


def save_facts(
    session: Session,
    *,
    enterprise_id: int,
    period: str,
    values: Mapping[str, Any],
    actor: User,
    pack_name: str = DEFAULT_PACK,
) -> EnterpriseFacts:
    """Store a new version of the enterprise's facts for ``period`` (older versions stay)."""
    _check_period(period)
    ent = visible_enterprise(session, actor=actor, enterprise_id=enterprise_id)
    if not can_enter_facts(actor, ent):
        raise PermissionDenied("您无权填报该企业的政策数据")
    pack = base_pack(pack_name)
    facts = validate_facts(pack, values)
    latest = session.scalar(
        select(func.max(EnterpriseFacts.version)).where(
            EnterpriseFacts.enterprise_id == ent.id, EnterpriseFacts.period == period
        )
    )
    previous = None
    if latest:
        previous = session.scalar(
            select(EnterpriseFacts).where(
                EnterpriseFacts.enterprise_id == ent.id,
                EnterpriseFacts.period == period,
                EnterpriseFacts.version == latest,
            )
        )
    row = EnterpriseFacts(
        enterprise_id=ent.id,
        period=period,
        version=(latest or 0) + 1,
        pack=pack.id,
        facts=facts,
        entered_by_id=actor.id,
        entered_at=_now(),
    )
    session.add(row)
    session.flush()
    old = previous.facts if previous else {}
    changed = sorted(k for k in set(old) | set(facts) if old.get(k) != facts.get(k))
    audit.record(
        session,
        actor=actor,
        action="policy.facts",
        target_type="enterprise",
        target_id=ent.id,
        before={k: old.get(k) for k in changed} if previous else None,
        after={k: facts.get(k) for k in changed} | {"period": period, "version": row.version},
    )
    return row


# -- parameter values ----------------------------------------------------------------------


def add_parameter_value(
    session: Session, *, data: ParameterValueCreate, actor: User
) -> ParameterValue:
    """Add a dated value for a pack parameter; evaluation picks it up from ``valid_from`` on."""
    require_role(actor, *PARAMETER_EDITORS)
    try:
        pack = base_pack(data.pack)
    except Exception:
        raise ValidationFailed([FieldError("pack", "没有这个政策包")]) from None
    param = pack.parameters.get(data.parameter)
    if param is None:
        raise ValidationFailed([FieldError("parameter", "本政策包没有这个参数")])
    if data.size_class is not None and param.split_by is None:
        raise ValidationFailed([FieldError("size_class", "该参数不按企业规模区分，请不要选择规模")])
    if data.valid_from < param.periods[0].start:
        raise ValidationFailed(
            [FieldError("valid_from", f"不能早于该参数的首个生效日 {param.periods[0].start}")]
        )
    if param.unit == "ratio" and data.value > 1:
        raise ValidationFailed([FieldError("value", "比例应填写小数，如 60% 填 0.6")])
    row = ParameterValue(
        pack=pack.id,
        parameter=param.name,
        valid_from=data.valid_from,
        value=data.value,
        size_class=data.size_class,
        source_text=data.source_text,
        stand_in=data.stand_in,
        added_by_id=actor.id,
        added_at=_now(),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="policy.parameter.add",
        target_type="policy_parameter",
        target_id=row.id,
        after=audit.snapshot(
            row,
            ["pack", "parameter", "valid_from", "value", "size_class", "source_text", "stand_in"],
        ),
    )
    return row


# -- claims --------------------------------------------------------------------------------


def _manager_of(session: Session, ent: Enterprise) -> User | None:
    return session.get(User, ent.manager_id) if ent.manager_id else None


def apply_claim(session: Session, *, data: ClaimCreate, actor: User) -> Claim:
    """The enterprise applies for an on-application measure it is eligible for.

    The estimate becomes the requested amount; the explanation and pack version are kept.
    A second claim for the same measure and period is a Conflict naming the first one."""
    _check_period(data.period)
    ent = visible_enterprise(session, actor=actor, enterprise_id=data.enterprise_id)
    if not can_apply(actor, ent):
        raise PermissionDenied("只有企业本身可以提交申请")
    pack = current_pack(session)
    try:
        measure = pack.measure(data.measure)
    except KeyError:
        raise NotFound("没有这项政策") from None
    if measure.mode != "application":
        raise ValidationFailed([FieldError("measure", f"“{measure.title}”自动享受，无需申请")])
    existing = session.scalar(
        select(Claim).where(
            Claim.enterprise_id == ent.id,
            Claim.measure == measure.id,
            Claim.period == data.period,
        )
    )
    if existing is not None:
        raise Conflict(_duplicate_message(measure.title, data.period, existing.id))
    results, facts = evaluate_one(session, pack, ent, data.period)
    assert results.explanations is not None
    k = [m.id for m in pack.measures].index(measure.id)
    explanation = results.explanations[k]
    if explanation["status"] != "eligible":
        why = (
            "缺少数据：" + "、".join(_label(pack, f) for f in explanation["missing"])
            if explanation["status"] == "unknown"
            else "不符合条件："
            + "、".join(c["label"] for c in explanation["conditions"] if c["held"] is False)
        )
        raise ValidationFailed([FieldError("measure", f"暂不能申请“{measure.title}”（{why}）")])
    claim = Claim(
        enterprise_id=ent.id,
        pack=pack.id,
        measure=measure.id,
        period=data.period,
        status="applied",
        requested_cents=int(results.measures[k].cents[0]),
        stand_in=amount_stand_in(measure, explanation["stand_in_parameters"]),
        applied_pack=pack_label(pack),
        explanation=explanation,
        facts_version=facts.version if facts else None,
        applied_by_id=actor.id,
        applied_at=_now(),
    )
    session.add(claim)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # Two submissions raced past the check above; the unique constraint decided.
        raise Conflict(_duplicate_message(measure.title, data.period, None)) from None
    audit.record(
        session,
        actor=actor,
        action="policy.claim.apply",
        target_type="policy_claim",
        target_id=claim.id,
        after=audit.snapshot(
            claim, ["enterprise_id", "measure", "period", "requested_cents", "applied_pack"]
        ),
    )
    text = f"{ent.organisation.name} 申请“{measure.title}”{format_cents(claim.requested_cents)} 元"
    for user in [_manager_of(session, ent), *_reviewers_of(session, ent)]:
        notify(session, user, text, f"/policies/claims/{claim.id}")
    return claim


def _reviewers_of(session: Session, ent: Enterprise) -> list[User]:
    """The officials who review this enterprise's claims (its district's, or city-level)."""
    return list(
        session.scalars(
            select(User)
            .join(UserRole)
            .join(Organisation, Organisation.id == User.organisation_id)
            .where(
                UserRole.role == "official",
                User.is_active.is_(True),
                or_(Organisation.district == ent.district, Organisation.district.is_(None)),
            )
            .order_by(User.id)
        )
    )


def _duplicate_message(title: str, period: str, claim_id: int | None) -> str:
    ref = f"（申请 #{claim_id}）" if claim_id else ""
    return f"本企业已申请过“{title}”（{period}年度）{ref}，同一政策同一年度只能申请一次"


def _label(pack: Pack, name: str) -> str:
    spec = pack.facts.get(name)
    return spec.label if spec and spec.label else name


def review_claim(session: Session, *, claim_id: int, data: ClaimReview, actor: User) -> Claim:
    """Approve (the estimate), adjust (another amount) or reject, always with a reason.

    The decision re-evaluates the enterprise with its current facts and stores that
    explanation and the pack version, so the decision can be read back as it was made."""
    require_role(actor, *REVIEWERS)
    claim = get_claim(session, actor=actor, claim_id=claim_id)
    ent = session.get(Enterprise, claim.enterprise_id)
    assert ent is not None
    if not can_review(actor, ent):
        raise PermissionDenied("您无权审核该申请")
    if claim.status != "applied":
        raise Conflict(f"该申请已{CLAIM_STATUSES[claim.status]}，不能再次审核")
    if data.decision == "adjust" and data.amount is None:
        raise ValidationFailed([FieldError("amount", "调整金额时请填写核定金额")])
    pack = current_pack(session)
    results, _ = evaluate_one(session, pack, ent, claim.period)
    assert results.explanations is not None
    k = [m.id for m in pack.measures].index(claim.measure)
    before = audit.snapshot(claim, ["status", "approved_cents"])
    claim.status = {"approve": "approved", "adjust": "adjusted", "reject": "rejected"}[
        data.decision
    ]
    if data.decision == "approve":
        claim.approved_cents = claim.requested_cents
    elif data.decision == "adjust":
        assert data.amount is not None
        claim.approved_cents = to_cents(data.amount)
    claim.reason = data.reason
    claim.decision_pack = pack_label(pack)
    claim.decision_explanation = results.explanations[k]
    claim.reviewed_by_id = actor.id
    claim.reviewed_at = _now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="policy.claim.review",
        target_type="policy_claim",
        target_id=claim.id,
        before=before,
        after=audit.snapshot(claim, ["status", "approved_cents", "decision_pack"]),
        detail=data.reason,
    )
    amount = (
        f"，核定 {format_cents(claim.approved_cents)} 元"
        if claim.approved_cents is not None
        else ""
    )
    notify(
        session,
        claim.applied_by,
        f"您的申请 #{claim.id} {CLAIM_STATUSES[claim.status]}{amount}：{data.reason}",
        f"/policies/claims/{claim.id}",
    )
    return claim


def record_payout(session: Session, *, claim_id: int, data: PayoutCreate, actor: User) -> Claim:
    """Record the payment of an approved claim (default: the approved amount)."""
    require_role(actor, *REVIEWERS)
    claim = get_claim(session, actor=actor, claim_id=claim_id)
    ent = session.get(Enterprise, claim.enterprise_id)
    assert ent is not None
    if not can_review(actor, ent):
        raise PermissionDenied("您无权登记该申请的拨付")
    if claim.status not in ("approved", "adjusted"):
        raise Conflict(f"该申请{CLAIM_STATUSES[claim.status]}，不能登记拨付")
    assert claim.approved_cents is not None
    cents = claim.approved_cents if data.amount is None else to_cents(data.amount)
    if cents > claim.approved_cents:
        raise ValidationFailed([FieldError("amount", "拨付金额不能超过核定金额")])
    claim.status = "paid"
    claim.payout_cents = cents
    claim.payout_date = data.paid_on
    claim.payout_reference = data.reference
    claim.paid_by_id = actor.id
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="policy.claim.payout",
        target_type="policy_claim",
        target_id=claim.id,
        after=audit.snapshot(claim, ["status", "payout_cents", "payout_date", "payout_reference"]),
    )
    notify(
        session,
        claim.applied_by,
        f"申请 #{claim.id} 已拨付 {format_cents(cents)} 元（{data.paid_on}）",
        f"/policies/claims/{claim.id}",
    )
    return claim


# -- documents -----------------------------------------------------------------------------


def sniff(content: bytes) -> str | None:
    """The document type from its first bytes (and, for xlsx, its zip directory)."""
    if content.startswith(b"%PDF-"):
        return "pdf"
    if content.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if content.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as z:
                names = set(z.namelist())
        except zipfile.BadZipFile:
            return None
        if "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names):
            return "xlsx"
    return None


def upload_document(
    session: Session,
    *,
    claim_id: int,
    doc_type: str,
    filename: str,
    content: bytes,
    actor: User,
    upload_dir: Path,
) -> ClaimDocument:
    """Store one document of the claim's checklist (pdf/jpg/png/xlsx, at most 10 MB, the
    type read from the bytes) under a random name in ``upload_dir``."""
    claim = get_claim(session, actor=actor, claim_id=claim_id)
    ent = session.get(Enterprise, claim.enterprise_id)
    assert ent is not None
    if not can_apply(actor, ent):
        raise PermissionDenied("只有申请企业可以上传材料")
    if claim.status != "applied":
        raise Conflict("申请已审核，不能再上传材料")
    measure = base_pack(claim.pack).measure(claim.measure)
    if doc_type not in measure.documents:
        raise ValidationFailed([FieldError("doc_type", "请选择材料清单中的一项")])
    if not content:
        raise ValidationFailed([FieldError("file", "文件为空")])
    if len(content) > MAX_DOCUMENT_BYTES:
        raise ValidationFailed([FieldError("file", "文件超过 10 MB 上限")])
    kind = sniff(content)
    name = Path(filename or "").name[:255] or "document"
    if kind is None or not name.lower().endswith(_EXTENSIONS[kind]):
        raise ValidationFailed(
            [FieldError("file", "只接受 PDF、JPG、PNG、XLSX 文件（按文件内容识别，扩展名须一致）")]
        )
    content_type = next(t for t, k in DOCUMENT_TYPES.items() if k == kind)
    stored = f"{secrets.token_hex(16)}.{kind}"
    path = upload_dir / stored
    storage.write_new_file(session, path, content)
    doc = ClaimDocument(
        claim_id=claim.id,
        doc_type=doc_type,
        filename=name,
        stored_name=stored,
        content_type=content_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        uploaded_by_id=actor.id,
        uploaded_at=_now(),
    )
    session.add(doc)
    try:
        session.flush()
    except Exception:
        path.unlink(missing_ok=True)  # no row, no file: nothing unreferenced stays behind
        raise
    audit.record(
        session,
        actor=actor,
        action="policy.document.upload",
        target_type="policy_claim",
        target_id=claim.id,
        after=audit.snapshot(doc, ["id", "doc_type", "filename", "content_type", "size", "sha256"]),
    )
    return doc


def read_document(
    session: Session, *, document_id: int, actor: User, upload_dir: Path
) -> tuple[ClaimDocument, bytes]:
    """An uploaded document's bytes, for someone who may see its claim; the read is audited
    (the documents are the enterprise's own)."""
    doc = session.get(ClaimDocument, document_id)
    if doc is None:
        raise NotFound("材料不存在")
    get_claim(session, actor=actor, claim_id=doc.claim_id)  # NotFound outside the scope
    if not _STORED_RE.fullmatch(doc.stored_name):
        raise NotFound("材料不存在")
    path = upload_dir / doc.stored_name
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise NotFound("材料文件已丢失，请联系管理员") from None
    audit.record(
        session,
        actor=actor,
        action="policy.document.read",
        target_type="policy_claim",
        target_id=doc.claim_id,
        detail=f"document={doc.id} {doc.filename}",
    )
    return doc, content
