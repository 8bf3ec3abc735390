"""Writes of the core domain. Each takes the acting user, validates, changes the rows, writes
the audit row in the same transaction and flushes; the caller commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fugong.core import audit
from fugong.core.models import (
    ApiToken,
    Contact,
    Enterprise,
    LoginThrottle,
    Organisation,
    ResumptionEvent,
    User,
    UserRole,
)
from fugong.core.permissions import (
    ENTERPRISE_SELF_FIELDS,
    REGISTRY_CREATORS,
    REGISTRY_IMPORTERS,
    USER_ADMINS,
    can_edit_enterprise,
    require_role,
)
from fugong.core.schemas import (
    ContactCreate,
    EnterpriseCreate,
    EnterpriseFacts,
    EnterpriseUpdate,
    OrganisationCreate,
    UserCreate,
)
from fugong.core.security import (
    hash_password,
    needs_rehash,
    new_api_token,
    password_problem,
    token_digest,
    verify_password,
)
from fugong.errors import (
    AuthenticationError,
    Conflict,
    FieldError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ValidationFailed,
)

ENTERPRISE_FIELDS = [
    "street", "industry", "size", "key_category", "headcount", "insured_employees",
    "resumption_status", "resumption_date", "staff_back_pct", "manager_id",
]  # fmt: skip
ORG_FIELDS = ["name", "uscc", "district", "street", "address"]


def field_errors(exc: ValidationError, row: int | None = None) -> list[FieldError]:
    """Translate pydantic's errors into ours, naming the field (and row) in plain words."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(整行)"
        msg = err["msg"].removeprefix("Value error, ")
        out.append(FieldError(field=loc, message=msg, row=row))
    return out


def _enterprise_snapshot(org: Organisation) -> dict[str, Any]:
    snap = audit.snapshot(org, ORG_FIELDS)
    if org.enterprise is not None:
        snap.update(audit.snapshot(org.enterprise, ENTERPRISE_FIELDS))
    return snap


def _manager_id(session: Session, username: str | None) -> int | None:
    if username is None:
        return None
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.has_role("manager"):
        raise ValidationFailed([FieldError("manager", f"客户经理“{username}”不存在")])
    return user.id


# -- enterprises ---------------------------------------------------------------------------


def create_enterprise(
    session: Session, *, data: EnterpriseCreate, actor: User | None
) -> Organisation:
    if actor is not None:
        require_role(actor, *REGISTRY_CREATORS)
        if (
            actor.has_role("official")
            and not actor.has_role("admin")
            and actor.organisation.district not in (None, data.district)
        ):
            raise PermissionDenied(f"您只能登记{actor.organisation.district}的企业")
    if session.scalar(select(Organisation.id).where(Organisation.uscc == data.uscc)):
        raise ValidationFailed([FieldError("uscc", f"统一社会信用代码{data.uscc}已登记")])
    manager_id = _manager_id(session, data.manager)
    if (
        manager_id is None
        and actor is not None
        and actor.has_role("manager")
        and not actor.has_role("admin", "official")
    ):
        manager_id = actor.id  # a manager registering a firm takes it into their portfolio
    org = _new_enterprise(data, manager_id, actor)
    session.add(org)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="enterprise.create",
        target_type="enterprise",
        target_id=org.id,
        after=_enterprise_snapshot(org),
    )
    return org


def _new_enterprise(
    data: EnterpriseCreate, manager_id: int | None, actor: User | None
) -> Organisation:
    org = Organisation(
        kind="enterprise",
        name=data.name,
        uscc=data.uscc,
        district=data.district,
        street=data.street,
        address=data.address,
    )
    org.enterprise = Enterprise(
        district=data.district,
        street=data.street,
        industry=data.industry,
        size=data.size,
        key_category=data.key_category,
        headcount=data.headcount,
        insured_employees=data.insured_employees,
        resumption_status=data.resumption_status,
        resumption_date=data.resumption_date,
        staff_back_pct=data.staff_back_pct,
        manager_id=manager_id,
    )
    org.enterprise.history.append(
        ResumptionEvent(
            status=data.resumption_status,
            effective_date=data.resumption_date,
            staff_back_pct=data.staff_back_pct,
            note="登记",
            recorded_by_id=actor.id if actor is not None else None,
        )
    )
    if data.contact_name:
        org.contacts.append(
            Contact(name=data.contact_name, phone=data.contact_phone, title=data.contact_title)
        )
    return org


def update_enterprise(
    session: Session, *, enterprise_id: int, data: EnterpriseUpdate, actor: User
) -> Organisation:
    org = session.get(Organisation, enterprise_id)
    if org is None or org.enterprise is None:
        raise NotFound("企业不存在")
    ent = org.enterprise
    if not can_edit_enterprise(actor, ent):
        # Out of scope looks exactly like absent: never confirm another firm exists.
        raise NotFound("企业不存在")
    changes = data.model_dump(exclude_unset=True)
    if actor.has_role("enterprise") and not actor.has_role("admin", "official", "manager"):
        forbidden = sorted(set(changes) - ENTERPRISE_SELF_FIELDS)
        if forbidden:
            raise PermissionDenied(f"企业用户不能修改：{', '.join(forbidden)}")
    before = _enterprise_snapshot(org)
    note = changes.pop("note", None)
    set_manager = "manager" in changes
    manager_id = _manager_id(session, changes.pop("manager")) if set_manager else None
    # Merge the edit with the stored facts and check the cross-field rules (approved needs a
    # date, a street of the right district...) before touching any row: a refused edit must
    # leave nothing half-applied in the session.
    nullable = ("key_category", "resumption_date", "staff_back_pct", "street", "address")
    current = {
        "name": org.name, "district": org.district, "address": org.address,
        "street": ent.street, "industry": ent.industry, "size": ent.size,
        "key_category": ent.key_category, "headcount": ent.headcount,
        "insured_employees": ent.insured_employees, "resumption_status": ent.resumption_status,
        "resumption_date": ent.resumption_date, "staff_back_pct": ent.staff_back_pct,
    }  # fmt: skip
    merged = dict(current)
    for key, value in changes.items():
        if key in merged and (value is not None or key in nullable):
            merged[key] = value
    try:
        EnterpriseFacts.model_validate({k: v for k, v in merged.items() if k != "name"})
    except ValidationError as e:
        raise ValidationFailed(field_errors(e)) from None
    if set_manager:
        ent.manager_id = manager_id
    for key in ("name", "district", "address", "street"):
        setattr(org, key, merged[key])
    for key in (
        "district",
        "street",
        "industry",
        "size",
        "key_category",
        "headcount",
        "insured_employees",
        "resumption_status",
        "resumption_date",
        "staff_back_pct",
    ):
        setattr(ent, key, merged[key])
    if ent.resumption_status == "full" and ent.staff_back_pct is None:
        ent.staff_back_pct = 100
    after = _enterprise_snapshot(org)
    if any(
        before.get(k) != after.get(k)
        for k in ("resumption_status", "resumption_date", "staff_back_pct")
    ):
        ent.history.insert(
            0,
            ResumptionEvent(
                status=ent.resumption_status,
                effective_date=ent.resumption_date,
                staff_back_pct=ent.staff_back_pct,
                note=note,
                recorded_by_id=actor.id,
            ),
        )
    b, a = audit.diff(before, after)
    if a:
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="enterprise.update",
            target_type="enterprise",
            target_id=org.id,
            before=b,
            after=a,
            detail=note,
        )
    return org


@dataclass
class ImportReport:
    created: int
    errors: list[FieldError]


def import_enterprises(
    session: Session, *, rows: list[dict[str, Any]], actor: User | None, first_row: int = 2
) -> ImportReport:
    """All or nothing: every row is validated (fields, check characters, duplicates in the file
    and in the registry) before any is written. ``first_row`` is the file row of ``rows[0]``."""
    if actor is not None:
        require_role(actor, *REGISTRY_IMPORTERS)
    errors: list[FieldError] = []
    valid: list[tuple[int, EnterpriseCreate]] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(rows):
        rownum = first_row + i
        try:
            data = EnterpriseCreate.model_validate(raw)
        except ValidationError as e:
            errors.extend(field_errors(e, rownum))
            continue
        if data.uscc in seen:
            errors.append(FieldError("uscc", f"与第{seen[data.uscc]}行重复", rownum))
            continue
        seen[data.uscc] = rownum
        if (
            actor is not None
            and actor.has_role("official")
            and not actor.has_role("admin")
            and actor.organisation.district not in (None, data.district)
        ):
            errors.append(
                FieldError("district", f"您只能导入{actor.organisation.district}的企业", rownum)
            )
            continue
        valid.append((rownum, data))
    if not rows:
        errors.append(FieldError("(文件)", "文件中没有数据行"))
    # One query for all codes already registered, not one per row.
    codes = list(seen)
    taken: set[str] = set()
    for start in range(0, len(codes), 900):
        taken.update(
            session.scalars(
                select(Organisation.uscc).where(Organisation.uscc.in_(codes[start : start + 900]))
            )
        )
    managers = {
        u.username: u.id
        for u in session.scalars(select(User).join(UserRole).where(UserRole.role == "manager"))
    }
    for rownum, data in valid:
        if data.uscc in taken:
            errors.append(FieldError("uscc", f"统一社会信用代码{data.uscc}已登记", rownum))
        if data.manager is not None and data.manager not in managers:
            errors.append(FieldError("manager", f"客户经理“{data.manager}”不存在", rownum))
    if errors:
        errors.sort(key=lambda e: (e.row or 0, e.field))
        return ImportReport(created=0, errors=errors)
    orgs = [_new_enterprise(data, managers.get(data.manager or ""), actor) for _, data in valid]
    session.add_all(orgs)
    session.flush()
    for org in orgs:
        audit.record(
            session,
            actor=actor,
            action="enterprise.import",
            target_type="enterprise",
            target_id=org.id,
            after=_enterprise_snapshot(org),
        )
    audit.record(
        session,
        actor=actor,
        action="enterprise.import_batch",
        target_type="enterprise",
        after={"created": len(valid)},
    )
    return ImportReport(created=len(valid), errors=[])


# -- organisations and users ---------------------------------------------------------------


def create_organisation(
    session: Session, *, data: OrganisationCreate, actor: User | None
) -> Organisation:
    if actor is not None:
        require_role(actor, *USER_ADMINS)
    if data.kind == "enterprise":
        raise ValidationFailed([FieldError("kind", "企业请通过企业登记创建")])
    if data.uscc and session.scalar(select(Organisation.id).where(Organisation.uscc == data.uscc)):
        raise ValidationFailed([FieldError("uscc", f"统一社会信用代码{data.uscc}已登记")])
    org = Organisation(
        kind=data.kind,
        institution_type=data.institution_type,
        name=data.name,
        uscc=data.uscc,
        district=data.district,
        street=data.street,
    )
    session.add(org)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="organisation.create",
        target_type="organisation",
        target_id=org.id,
        after=audit.snapshot(org, _org_audit_fields(org)),
    )
    return org


def _org_audit_fields(org: Organisation) -> list[str]:
    # Only an institution has a type; for every other kind it is always NULL and would say
    # nothing, so their audit documents keep the shape they had before the column existed.
    if org.kind == "institution":
        return ["kind", "institution_type", *ORG_FIELDS]
    return ["kind", *ORG_FIELDS]


def create_user(session: Session, *, data: UserCreate, actor: User | None) -> User:
    if actor is not None:
        require_role(actor, *USER_ADMINS)
    problem = password_problem(data.password, data.username)
    if problem:
        raise ValidationFailed([FieldError("password", problem)])
    if session.scalar(select(User.id).where(func.lower(User.username) == data.username.lower())):
        raise Conflict(f"用户名“{data.username}”已被使用")
    org = session.get(Organisation, data.organisation_id)
    if org is None:
        raise ValidationFailed([FieldError("organisation_id", "机构不存在")])
    user = User(
        username=data.username,
        display_name=data.display_name,
        password_hash=hash_password(data.password),
        organisation_id=org.id,
    )
    user.role_rows = [UserRole(role=r) for r in data.roles]
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.create",
        target_type="user",
        target_id=user.id,
        after={"username": user.username, "organisation_id": org.id, "roles": data.roles},
    )
    return user


def change_password(session: Session, *, user: User, old: str, new: str) -> None:
    if not verify_password(user.password_hash, old):
        raise ValidationFailed([FieldError("old_password", "原密码不正确")])
    problem = password_problem(new, user.username)
    if problem:
        raise ValidationFailed([FieldError("new_password", problem)])
    if old == new:
        raise ValidationFailed([FieldError("new_password", "新密码不能与原密码相同")])
    user.password_hash = hash_password(new)
    user.session_epoch += 1  # log out every other session of this user
    session.flush()
    audit.record(
        session, actor=user, action="user.password_change", target_type="user", target_id=user.id
    )


def _throttle_row(session: Session, key: str) -> LoginThrottle:
    row = session.get(LoginThrottle, key)
    if row is None:
        row = LoginThrottle(key=key, failures=0, first_failure_at=datetime.now(UTC))
        session.add(row)
    return row


def authenticate(
    session: Session,
    *,
    username: str,
    password: str,
    ip: str | None,
    max_failures: int = 5,
    lockout_s: int = 300,
) -> User:
    """Check a password login. Failures are counted per account and per client address; past
    ``max_failures`` within the lock-out window, further attempts are refused without checking
    the password, so guessing costs the attacker the whole window."""
    now = datetime.now(UTC)
    keys = [f"user:{username.strip().lower()}"] + ([f"ip:{ip}"] if ip else [])
    for key in keys:
        row = session.get(LoginThrottle, key)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            retry = int((row.locked_until - now).total_seconds()) + 1
            raise RateLimited(f"登录失败次数过多，请{retry}秒后再试", retry_after=retry)
    user = session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        for key in keys:
            row = _throttle_row(session, key)
            if row.first_failure_at + timedelta(seconds=lockout_s) < now:
                row.failures, row.first_failure_at = 0, now
            row.failures += 1
            if row.failures >= max_failures:
                row.locked_until = now + timedelta(seconds=lockout_s)
        audit.record(
            session,
            actor=None,
            action="auth.login_failed",
            target_type="user",
            target_id=user.id if user else None,
            detail=username[:50],
        )
        session.flush()
        raise AuthenticationError("用户名或密码错误")
    for key in keys:
        row = session.get(LoginThrottle, key)
        if row is not None:
            session.delete(row)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now
    audit.record(session, actor=user, action="auth.login", target_type="user", target_id=user.id)
    session.flush()
    return user


def create_api_token(
    session: Session, *, user: User, name: str, actor: User | None, days: int | None = 365
) -> tuple[str, ApiToken]:
    """Make a token for ``user``; returns the token in clear (shown once) and its row."""
    if actor is not None and actor.id != user.id:
        require_role(actor, *USER_ADMINS)
    if not name.strip():
        raise ValidationFailed([FieldError("name", "请填写令牌名称")])
    token = new_api_token()
    row = ApiToken(
        user_id=user.id,
        name=name.strip()[:100],
        token_hash=token_digest(token),
        prefix=token[:12],
        expires_at=datetime.now(UTC) + timedelta(days=days) if days else None,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="token.create",
        target_type="api_token",
        target_id=row.id,
        after={"user_id": user.id, "name": row.name, "prefix": row.prefix},
    )
    return token, row


def revoke_api_token(session: Session, *, token_id: int, actor: User) -> None:
    row = session.get(ApiToken, token_id)
    if row is None or (row.user_id != actor.id and not actor.has_role(*USER_ADMINS)):
        raise NotFound("令牌不存在")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        session.flush()
        audit.record(
            session, actor=actor, action="token.revoke", target_type="api_token", target_id=row.id
        )


def user_for_token(session: Session, token: str) -> User:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    now = datetime.now(UTC)
    if row is None or row.revoked_at is not None or (row.expires_at and row.expires_at < now):
        raise AuthenticationError("API 令牌无效或已过期")
    if not row.user.is_active:
        raise AuthenticationError("账户已停用")
    # Touch at most once a minute: a busy machine client should not write on every request.
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        row.last_used_at = now
    return row.user


def set_user_active(session: Session, *, user_id: int, active: bool, actor: User) -> User:
    """Deactivate or reactivate an account; deactivation ends its sessions and tokens at once
    (both are checked against ``is_active`` on every request)."""
    require_role(actor, *USER_ADMINS)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("用户不存在")
    if user.id == actor.id and not active:
        raise ValidationFailed([FieldError("is_active", "不能停用自己的账户")])
    if user.is_active != active:
        user.is_active = active
        user.session_epoch += 1
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="user.activate" if active else "user.deactivate",
            target_type="user",
            target_id=user.id,
            before={"is_active": not active},
            after={"is_active": active},
        )
    return user


def reset_password(session: Session, *, user_id: int, new: str, actor: User) -> None:
    """An administrator sets a new password (the user forgot theirs); other sessions end."""
    require_role(actor, *USER_ADMINS)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("用户不存在")
    problem = password_problem(new, user.username)
    if problem:
        raise ValidationFailed([FieldError("password", problem)])
    user.password_hash = hash_password(new)
    user.session_epoch += 1
    session.flush()
    audit.record(
        session, actor=actor, action="user.password_reset", target_type="user", target_id=user.id
    )


def add_contact(
    session: Session, *, enterprise_id: int, data: ContactCreate, actor: User
) -> Contact:
    org = session.get(Organisation, enterprise_id)
    if org is None or org.enterprise is None or not can_edit_enterprise(actor, org.enterprise):
        raise NotFound("企业不存在")
    contact = Contact(organisation_id=org.id, name=data.name, phone=data.phone, title=data.title)
    session.add(contact)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="contact.create",
        target_type="contacts",
        target_id=org.id,
        after={"id": contact.id, "name": contact.name, "title": contact.title},
    )
    return contact


def remove_contact(session: Session, *, contact_id: int, actor: User) -> None:
    contact = session.get(Contact, contact_id)
    ent = session.get(Enterprise, contact.organisation_id) if contact else None
    if contact is None or ent is None or not can_edit_enterprise(actor, ent):
        raise NotFound("联系人不存在")
    audit.record(
        session,
        actor=actor,
        action="contact.delete",
        target_type="contacts",
        target_id=contact.organisation_id,
        before={"id": contact.id, "name": contact.name, "title": contact.title},
    )
    session.delete(contact)
    session.flush()
