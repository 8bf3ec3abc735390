"""A synthetic Huangpu district for the demo and the benchmarks: valid USCCs, realistic mixes of
industries, sizes and resumption states, managers with portfolios, one login per role.

Deterministic for a given seed, so a screenshot or a benchmark can be reproduced."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fugong.core import uscc
from fugong.core.models import Organisation, User
from fugong.core.reference import DISTRICTS, HUANGPU_STREETS, INDUSTRIES, KEY_CATEGORIES
from fugong.core.schemas import OrganisationCreate, UserCreate
from fugong.core.services import create_organisation, create_user, import_enterprises

DEMO_PASSWORD = "fugong-demo-2020"  # noqa: S105 - printed on purpose: demo mode only

_WORDS = (
    "光宝",
    "华美",
    "黄埔",
    "科学城",
    "萝岗",
    "云埔",
    "开发",
    "知识城",
    "珠江",
    "南岗",
    "长洲",
    "鱼珠",
    "联和",
    "永和",
    "东区",
    "穗东",
    "红山",
    "文冲",
    "夏港",
    "龙湖",
    "九佛",
    "新龙",
    "长岭",
    "大沙",
    "丰乐",
    "香雪",
    "凤凰",
    "玉树",
    "天鹿",
    "金坑",
)
_TRADES = {
    "manufacturing": ("精密制造", "电子", "新材料", "汽车零部件", "医疗器械", "塑胶", "机械"),
    "it": ("信息科技", "软件", "网络技术", "数据科技", "智能科技"),
    "wholesale_retail": ("贸易", "商贸", "供应链", "百货"),
    "hospitality": ("餐饮管理", "酒店管理", "食品"),
    "logistics": ("物流", "运输", "仓储"),
    "construction": ("建设工程", "装饰工程", "建筑"),
    "research": ("生物技术", "检测技术", "研究院"),
    "health": ("医疗", "健康管理", "药业"),
    "business_services": ("企业管理咨询", "人力资源", "广告"),
    "real_estate": ("置业", "物业管理"),
    "finance": ("融资租赁", "投资"),
    "other": ("文化传播", "教育科技"),
}
_INDUSTRY_WEIGHTS = (30, 14, 14, 6, 6, 5, 8, 4, 6, 2, 2, 3)
_SIZE_WEIGHTS = {"large": 2, "medium": 10, "small": 38, "micro": 50}
_HEAD = {"large": (300, 5000), "medium": (100, 300), "small": (10, 100), "micro": (1, 10)}
# The district's vetted suppliers of epidemic-prevention goods (name, district, registering
# authority's division code), the first holding the demo's ``supplier`` login. The supplies
# demo vets each and posts its offers (``fugong.supplies.demo``).
DEMO_SUPPLIERS: tuple[tuple[str, str, str], ...] = (
    ("广州黄埔防疫物资供应有限公司", "黄埔区", "440112"),
    ("广州科学城医用防护用品有限公司", "黄埔区", "440112"),
    ("广东穗康口罩制品有限公司", "增城区", "440118"),
    ("广州南岗消毒用品有限公司", "黄埔区", "440112"),
    ("广州洁盾消毒科技有限公司", "天河区", "440106"),
    ("广州睿视红外热成像科技有限公司", "黄埔区", "440112"),
)
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华美思华如海西孝"


def org_code(rng: random.Random) -> str:
    """A 9-character organisation code (GB 11714) with a valid check character."""
    body = [rng.randrange(10) for _ in range(8)]
    c = 11 - sum(d * w for d, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    check = {10: "X", 11: "0"}.get(c, str(c))
    return "".join(map(str, body)) + check


def make_uscc(rng: random.Random, division: str = uscc.HUANGPU_DIVISION) -> str:
    return uscc.make("91" + division + org_code(rng))


def person_name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))


def enterprise_rows(
    n: int,
    *,
    seed: int = 2020,
    managers: list[str] | None = None,
    district: str = "黄埔区",
    extra_districts: bool = False,
) -> list[dict[str, Any]]:
    """``n`` enterprise records as import rows (field-name keys)."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    used: set[str] = set()
    names: set[str] = set()
    sizes = list(_SIZE_WEIGHTS)
    for i in range(n):
        code = make_uscc(rng)
        while code in used:
            code = make_uscc(rng)
        used.add(code)
        industry = rng.choices(list(INDUSTRIES), _INDUSTRY_WEIGHTS)[0]
        size = rng.choices(sizes, list(_SIZE_WEIGHTS.values()))[0]
        name = (
            f"广州{rng.choice(_WORDS)}{rng.choice(_WORDS)}{rng.choice(_TRADES[industry])}有限公司"
        )
        if name in names:
            name = name.replace("有限公司", f"{i}号有限公司")
        names.add(name)
        lo, hi = _HEAD[size]
        headcount = rng.randint(lo, hi)
        status = rng.choices(["not_resumed", "approved", "partial", "full"], (15, 20, 35, 30))[0]
        rdate = date(2020, 2, 10) + timedelta(days=rng.randrange(0, 40))
        key = rng.choice(list(KEY_CATEGORIES)) if rng.random() < 0.12 else None
        d = rng.choice(DISTRICTS) if extra_districts and rng.random() < 0.1 else district
        rows.append(
            {
                "uscc": code,
                "name": name,
                "district": d,
                "street": rng.choice(HUANGPU_STREETS) if d == "黄埔区" else None,
                "address": None,
                "industry": industry,
                "size": size,
                "key_category": key,
                "headcount": headcount,
                "insured_employees": max(0, headcount - rng.randint(0, max(1, headcount // 10))),
                "resumption_status": status,
                "resumption_date": rdate if status != "not_resumed" else None,
                "staff_back_pct": {"partial": rng.randint(10, 90), "full": 100}.get(status),
                "manager": rng.choice(managers) if managers and rng.random() < 0.9 else None,
                "contact_name": person_name(rng),
                "contact_phone": f"13{rng.randint(100000000, 999999999)}",
            }
        )
    return rows


@dataclass
class DemoLogin:
    role: str
    username: str
    organisation: str


def load_demo(
    session: Session, *, enterprises: int = 2000, seed: int = 2020, managers: int = 10
) -> list[DemoLogin]:
    """Load the demo district into an empty database. Refuses if it already holds users."""
    if session.scalar(select(func.count()).select_from(User)):
        raise RuntimeError("数据库中已有用户，演示数据只能载入空库")
    rng = random.Random(seed + 1)  # apart from the enterprise generator's stream

    def org(
        kind: str,
        name: str,
        district: str | None = "黄埔区",
        code: bool = False,
        institution_type: str | None = None,
    ) -> Organisation:
        return create_organisation(
            session,
            actor=None,
            data=OrganisationCreate(
                kind=kind,
                institution_type=institution_type,
                name=name,
                district=district,
                uscc=make_uscc(rng, "440112") if code else None,
            ),
        )

    gov = org("government", "黄埔区工业和信息化局")
    desk = org("government", "黄埔区复工复产服务专班")
    city = org("government", "广州市审计局", district=None)
    admin_org = org("government", "黄埔区政务服务数据管理局")
    supplier = org("supplier", DEMO_SUPPLIERS[0][0], code=True)
    cdc = org("institution", "广州市疾病预防控制中心", district=None, institution_type="cdc")
    school = org("institution", "黄埔区示范小学", institution_type="school")
    court = org("institution", "广州市南沙区人民法院", district="南沙区", institution_type="court")
    org("hr_agency", "广州开发区人力资源服务有限公司", code=True)
    del court
    # The other suppliers draw their codes from a stream of their own, so adding one changes
    # no other generated name or code (a string seed: ``seed + 2`` would be the enterprise
    # stream of another seed).
    supplier_rng = random.Random(f"suppliers-{seed}")
    for name, district, division in DEMO_SUPPLIERS[1:]:
        create_organisation(
            session,
            actor=None,
            data=OrganisationCreate(
                kind="supplier",
                name=name,
                district=district,
                uscc=make_uscc(supplier_rng, division),
            ),
        )

    def user(username: str, display: str, organisation: Organisation, roles: list[str]) -> User:
        return create_user(
            session,
            actor=None,
            data=UserCreate(
                username=username,
                display_name=display,
                password=DEMO_PASSWORD,
                organisation_id=organisation.id,
                roles=roles,
            ),
        )

    logins: list[DemoLogin] = []
    for role, display, o in (
        ("admin", "系统管理员", admin_org),
        ("official", "工信局科员", gov),
        ("supplier", "供应商业务员", supplier),
        ("cdc", "疾控分析员", cdc),
        ("site", "学校保健老师", school),
        ("auditor", "审计员", city),
    ):
        user(role, display, o, [role])
        logins.append(DemoLogin(role, role, o.name))
    manager_names = ["manager"] + [f"manager{i:02d}" for i in range(2, managers + 1)]
    for i, m in enumerate(manager_names):
        user(m, "客户经理" + (person_name(rng) if i else "雷华美"), desk, ["manager"])
    logins.insert(2, DemoLogin("manager", "manager", desk.name))

    rows = enterprise_rows(enterprises, seed=seed, managers=manager_names)
    rows[0].update(
        name="广州光宝示范科技有限公司",
        industry="manufacturing",
        size="medium",
        key_category="epidemic",
        resumption_status="full",
        staff_back_pct=100,
        resumption_date=date(2020, 3, 28),
        manager="manager",
    )
    report = import_enterprises(session, rows=rows, actor=None)
    if report.errors:  # the generator makes valid rows; anything else is a bug worth seeing
        raise RuntimeError(f"demo data invalid: {report.errors[:3]}")
    first = session.scalar(select(Organisation).where(Organisation.uscc == rows[0]["uscc"]))
    assert first is not None
    user("enterprise", "光宝科技行政", first, ["enterprise"])
    logins.insert(3, DemoLogin("enterprise", "enterprise", first.name))
    return logins
