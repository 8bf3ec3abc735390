"""Input and output shapes of the core domain. Input models accept what a person types into a
form or a spreadsheet: blanks mean "not given", Chinese labels are accepted for coded fields."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from fugong.core import uscc as uscc_rules
from fugong.core.reference import (
    CLI_LABEL,
    DISTRICTS,
    INDUSTRIES,
    INSTITUTION_TYPES,
    KEY_CATEGORIES,
    ORG_KINDS,
    RESUMPTION_STATUSES,
    ROLES,
    SIZES,
    STREETS_BY_DISTRICT,
    SYSTEM_LABEL,
)


def _blank_to_none(v: Any) -> Any:
    if isinstance(v, str):
        v = v.strip()
        return v or None
    return v


def _coded(table: dict[str, str], what: str) -> Any:
    by_label = {label: code for code, label in table.items()}

    def convert(v: Any) -> Any:
        v = _blank_to_none(v)
        if v is None:
            return None
        if not isinstance(v, str):
            raise ValueError(f"{what}应为文字")
        if v in table:
            return v
        if v in by_label:
            return by_label[v]
        allowed = "、".join(table.values())
        raise ValueError(f"“{v}”不是有效的{what}，可选：{allowed}")

    return BeforeValidator(convert)


def _percent(v: Any) -> Any:
    v = _blank_to_none(v)
    if isinstance(v, str) and v.endswith("%"):
        v = v[:-1].strip()
    return v


OptStr = Annotated[str | None, BeforeValidator(_blank_to_none)]
OptInt = Annotated[
    Annotated[int, Field(ge=0, le=1_000_000)] | None, BeforeValidator(_blank_to_none)
]
OptDate = Annotated[date | None, BeforeValidator(_blank_to_none)]
Industry = Annotated[str, _coded(INDUSTRIES, "行业")]
Size = Annotated[str, _coded(SIZES, "企业规模")]
KeyCategory = Annotated[str | None, _coded(KEY_CATEGORIES, "重点类别")]
ResumptionStatus = Annotated[str, _coded(RESUMPTION_STATUSES, "复工状态")]
Pct = Annotated[Annotated[int, Field(ge=0, le=100)] | None, BeforeValidator(_percent)]


def _check_uscc(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError("统一社会信用代码不能为空")
    try:
        return uscc_rules.validate(v)
    except uscc_rules.USCCError as e:
        raise ValueError(str(e)) from None


USCC = Annotated[str, BeforeValidator(_check_uscc)]


class _Input(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")


class EnterpriseFacts(_Input):
    """The facts shared by create and update, with their cross-field rules."""

    district: Annotated[str, BeforeValidator(_blank_to_none)]
    street: OptStr = None
    address: OptStr = Field(default=None, max_length=300)
    industry: Industry
    size: Size
    key_category: KeyCategory = None
    headcount: Annotated[int, BeforeValidator(_blank_to_none), Field(ge=0, le=1_000_000)] = 0
    insured_employees: Annotated[
        int, BeforeValidator(_blank_to_none), Field(ge=0, le=1_000_000)
    ] = 0
    resumption_status: ResumptionStatus = "not_resumed"
    resumption_date: OptDate = None
    staff_back_pct: Pct = None
    manager: OptStr = None  # the account manager's username

    @field_validator("district")
    @classmethod
    def _district(cls, v: str) -> str:
        if v not in DISTRICTS:
            raise ValueError(f"“{v}”不是广州市的区，可选：{'、'.join(DISTRICTS)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> EnterpriseFacts:
        streets = STREETS_BY_DISTRICT.get(self.district)
        if self.street and streets is not None and self.street not in streets:
            raise ValueError(f"街道“{self.street}”不属于{self.district}")
        if self.resumption_status == "approved" and self.resumption_date is None:
            raise ValueError("已批准复工时须填写复工日期 (resumption_date)")
        if self.resumption_status == "partial" and self.staff_back_pct is None:
            raise ValueError("部分复工时须填写返岗比例 (staff_back_pct)")
        if self.resumption_status == "full" and self.staff_back_pct is None:
            self.staff_back_pct = 100
        return self


class EnterpriseCreate(EnterpriseFacts):
    uscc: USCC
    name: Annotated[str, BeforeValidator(_blank_to_none), Field(min_length=2, max_length=200)]
    contact_name: OptStr = Field(default=None, max_length=50)
    contact_phone: OptStr = Field(default=None, max_length=30, pattern=r"^[0-9+\-() ]{5,30}$")
    contact_title: OptStr = Field(default=None, max_length=50)


class EnterpriseUpdate(_Input):
    """A partial edit: only the fields given change."""

    name: Annotated[
        str | None, BeforeValidator(_blank_to_none), Field(min_length=2, max_length=200)
    ] = None
    district: OptStr = None
    street: OptStr = None
    address: OptStr = Field(default=None, max_length=300)
    industry: Annotated[str | None, _coded(INDUSTRIES, "行业")] = None
    size: Annotated[str | None, _coded(SIZES, "企业规模")] = None
    key_category: KeyCategory = None
    headcount: OptInt = None
    insured_employees: OptInt = None
    resumption_status: Annotated[str | None, _coded(RESUMPTION_STATUSES, "复工状态")] = None
    resumption_date: OptDate = None
    staff_back_pct: Pct = None
    manager: OptStr = None
    note: OptStr = Field(default=None, max_length=500)


class ContactCreate(_Input):
    name: Annotated[str, BeforeValidator(_blank_to_none), Field(min_length=1, max_length=50)]
    phone: OptStr = Field(default=None, max_length=30, pattern=r"^[0-9+\-() ]{5,30}$")
    title: OptStr = Field(default=None, max_length=50)


class ContactRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    phone: str | None
    title: str | None


class ResumptionEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    status: str
    effective_date: date | None
    staff_back_pct: int | None
    note: str | None
    recorded_at: datetime
    recorded_by: str | None = None


class EnterpriseRead(BaseModel):
    id: int
    uscc: str | None
    name: str
    district: str | None
    street: str | None
    address: str | None
    industry: str
    size: str
    key_category: str | None
    headcount: int
    insured_employees: int
    resumption_status: str
    resumption_date: date | None
    staff_back_pct: int | None
    manager: str | None


class EnterprisePage(BaseModel):
    total: int
    page: int
    per_page: int
    items: list[EnterpriseRead]


#: Names the audit trail uses for rows written with no user (``fugong.core.audit``).
RESERVED_USERNAMES = frozenset({SYSTEM_LABEL, CLI_LABEL})


class UserCreate(_Input):
    username: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_.-]{3,50}$")]
    display_name: Annotated[str, Field(min_length=1, max_length=50)]
    password: Annotated[str, Field(min_length=1, max_length=200)]
    organisation_id: int
    roles: list[str]

    @field_validator("username")
    @classmethod
    def _not_an_audit_label(cls, v: str) -> str:
        # The audit trail names rows written with no user "system" or "cli": a person with
        # either name would be indistinguishable from them.
        if v.lower() in RESERVED_USERNAMES:
            raise ValueError(f"用户名“{v}”为系统保留，请换一个")
        return v

    @field_validator("roles")
    @classmethod
    def _roles(cls, v: list[str]) -> list[str]:
        bad = [r for r in v if r not in ROLES]
        if bad or not v:
            raise ValueError(f"角色无效：{bad or '空'}；可选：{', '.join(ROLES)}")
        return sorted(set(v))


class OrganisationCreate(_Input):
    kind: Annotated[str, _coded(ORG_KINDS, "机构类型")]
    # Declared right after ``kind``, so its check below can read it; validated even when not
    # given, because an institution must say which kind it is.
    institution_type: Annotated[
        str | None, _coded(INSTITUTION_TYPES, "公共机构类别"), Field(validate_default=True)
    ] = None
    name: Annotated[str, Field(min_length=2, max_length=200)]
    uscc: Annotated[
        str | None, BeforeValidator(lambda v: _check_uscc(v) if _blank_to_none(v) else None)
    ] = None
    district: OptStr = None
    street: OptStr = None

    @field_validator("institution_type")
    @classmethod
    def _institution_type(cls, v: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind == "institution" and v is None:
            choices = "、".join(INSTITUTION_TYPES.values())
            raise ValueError(f"公共机构须选择公共机构类别 (institution_type)，可选：{choices}")
        if kind is not None and kind != "institution" and v is not None:
            raise ValueError("只有公共机构才填写公共机构类别 (institution_type)")
        return v


class UserRead(BaseModel):
    id: int
    username: str
    display_name: str
    organisation: str
    organisation_id: int
    roles: list[str]


class AuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    actor_label: str
    action: str
    target_type: str
    target_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    detail: str | None
    ip: str | None


class TokenCreated(BaseModel):
    id: int
    name: str
    token: str = Field(description="Shown once; only its hash is stored.")
    expires_at: datetime | None
