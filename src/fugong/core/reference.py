"""Reference data with Chinese labels: districts, streets, industries, sizes, key categories,
resumption statuses, roles, organisation kinds and institution types. Codes are stored; labels
are shown."""

from __future__ import annotations

# Guangzhou's 11 districts.
DISTRICTS: tuple[str, ...] = (
    "越秀区", "海珠区", "荔湾区", "天河区", "白云区", "黄埔区",
    "番禺区", "花都区", "南沙区", "从化区", "增城区",
)  # fmt: skip

# Huangpu district's streets (街道) and town (镇), 2020.
HUANGPU_STREETS: tuple[str, ...] = (
    "黄埔街道", "红山街道", "鱼珠街道", "大沙街道", "文冲街道", "穗东街道",
    "南岗街道", "长洲街道", "夏港街道", "萝岗街道", "联和街道", "永和街道",
    "东区街道", "云埔街道", "长岭街道", "九佛街道", "龙湖街道", "新龙镇",
)  # fmt: skip

STREETS_BY_DISTRICT: dict[str, tuple[str, ...]] = {"黄埔区": HUANGPU_STREETS}

INDUSTRIES: dict[str, str] = {
    "manufacturing": "制造业",
    "it": "信息传输、软件和信息技术服务业",
    "wholesale_retail": "批发和零售业",
    "hospitality": "住宿和餐饮业",
    "logistics": "交通运输、仓储和邮政业",
    "construction": "建筑业",
    "research": "科学研究和技术服务业",
    "health": "卫生和社会工作",
    "business_services": "租赁和商务服务业",
    "real_estate": "房地产业",
    "finance": "金融业",
    "other": "其他",
}

SIZES: dict[str, str] = {"large": "大型", "medium": "中型", "small": "小型", "micro": "微型"}

# The five key categories of Guangdong, 2020 (重点企业五类).
KEY_CATEGORIES: dict[str, str] = {
    "epidemic": "防疫必需",
    "city_operation": "城市运行必需",
    "daily_life": "群众生活必需",
    "livelihood": "其他涉及重要国计民生",
    "hk_macao": "供港澳",
}

RESUMPTION_STATUSES: dict[str, str] = {
    "not_resumed": "未复工",
    "approved": "已批准复工",
    "partial": "部分复工",
    "full": "全面复工",
}

#: The audit trail's actor for rows written with no user: unattended work, and the ``fugong``
#: command run by an operator (``fugong.core.audit``). Neither may be a username.
SYSTEM_LABEL = "system"
CLI_LABEL = "cli"

ORG_KINDS: dict[str, str] = {
    "enterprise": "企业",
    "supplier": "供应商",
    "government": "政府部门",
    "institution": "公共机构",
    "hr_agency": "人力资源服务机构",
}

# What kind of public institution (公共机构) an organisation is: issue #2 names courts, CDCs
# and schools; hospitals are the other institutions the desk and the supplies rounds meet.
# Set for every institution and for nothing else.
INSTITUTION_TYPES: dict[str, str] = {
    "court": "法院",
    "cdc": "疾控中心",
    "school": "学校",
    "hospital": "医院",
    "other": "其他",
}

ROLES: dict[str, str] = {
    "admin": "系统管理员",
    "official": "区政府工作人员",
    "manager": "客户经理",
    "enterprise": "企业用户",
    "supplier": "供应商",
    "cdc": "疾控分析员",
    "site": "场所运营方",
    "auditor": "审计员",
}


def label(table: dict[str, str], code: str | None) -> str:
    if code is None:
        return "—"
    return table.get(code, code)
