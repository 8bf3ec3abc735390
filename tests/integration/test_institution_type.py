"""Public institutions say which kind they are (issue #2): court, CDC, school, hospital or
other. Required for institutions and absent for every other kind, at the edge (the schema), in
the database (``ck_organisations_institution_type``), through migration 0009's backfill, the
admin form and the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from fugong.core import services
from fugong.core.demo import load_demo
from fugong.core.models import AuditLog, Organisation
from fugong.core.schemas import OrganisationCreate
from fugong.db import make_engine, migrate
from fugong.settings import Settings
from fugong.web.app import create_app
from tests.api.conftest import login
from tests.conftest import pg_engine

# -- the schema ----------------------------------------------------------------------------


def _error(**data: Any) -> dict[str, Any]:
    with pytest.raises(ValidationError) as e:
        OrganisationCreate(name="测试机构", **data)
    (err,) = e.value.errors()
    return dict(err)


def test_an_institution_without_a_type_is_refused_naming_the_field() -> None:
    for missing in ({}, {"institution_type": ""}, {"institution_type": None}):
        err = _error(kind="institution", **missing)
        assert err["loc"] == ("institution_type",)
        assert "公共机构类别" in err["msg"] and "institution_type" in err["msg"]


def test_a_type_on_any_other_kind_is_refused() -> None:
    for kind in ("government", "supplier", "hr_agency", "enterprise"):
        err = _error(kind=kind, institution_type="court")
        assert err["loc"] == ("institution_type",)
        assert "只有公共机构" in err["msg"]


def test_codes_and_chinese_labels_are_accepted_and_nonsense_is_not() -> None:
    assert OrganisationCreate(kind="institution", name="某中学", institution_type="school")
    by_label = OrganisationCreate(kind="公共机构", name="某区法院", institution_type="法院")
    assert (by_label.kind, by_label.institution_type) == ("institution", "court")
    assert (
        OrganisationCreate(kind="supplier", name="某供应商", institution_type="").model_dump()[
            "institution_type"
        ]
        is None
    )
    err = _error(kind="institution", institution_type="警察局")
    assert err["loc"] == ("institution_type",) and "“警察局”不是有效的公共机构类别" in err["msg"]


# -- the database --------------------------------------------------------------------------

INSERT = text(
    "INSERT INTO organisations (kind, institution_type, name, created_at, updated_at) "
    "VALUES (:kind, :type, :name, :now, :now)"
)
NOW = "2026-12-07 00:00:00"


@pytest.mark.parametrize(
    ("kind", "type_"),
    [("institution", None), ("institution", "police"), ("government", "court")],
)
def test_the_database_refuses_a_raw_row_that_breaks_the_rule(
    session: Session, kind: str, type_: str | None
) -> None:
    with pytest.raises(IntegrityError) as e, session.begin_nested():
        session.execute(INSERT, {"kind": kind, "type": type_, "name": "原始插入", "now": NOW})
    assert "institution_type" in str(e.value)


def test_the_database_takes_a_raw_row_that_keeps_the_rule(session: Session) -> None:
    session.execute(INSERT, {"kind": "institution", "type": "cdc", "name": "疾控甲", "now": NOW})
    session.execute(INSERT, {"kind": "government", "type": None, "name": "某局", "now": NOW})
    kinds = session.execute(
        text("SELECT name, institution_type FROM organisations WHERE name IN ('疾控甲', '某局')")
    ).all()
    assert sorted(kinds) == [("某局", None), ("疾控甲", "cdc")]


# -- the service and its audit row ---------------------------------------------------------


def test_create_stores_the_type_and_audits_it(session: Session, make: Any) -> None:
    admin = make.user("admin")
    org = services.create_organisation(
        session,
        actor=admin,
        data=OrganisationCreate(kind="institution", name="黄埔区人民医院", institution_type="医院"),
    )
    assert org.institution_type == "hospital"
    row = session.scalar(
        select(AuditLog).where(
            AuditLog.action == "organisation.create", AuditLog.target_id == str(org.id)
        )
    )
    assert row is not None and row.after is not None
    assert row.after["kind"] == "institution" and row.after["institution_type"] == "hospital"
    supplier = services.create_organisation(
        session, actor=admin, data=OrganisationCreate(kind="supplier", name="某口罩供应商")
    )
    row = session.scalar(
        select(AuditLog).where(
            AuditLog.action == "organisation.create", AuditLog.target_id == str(supplier.id)
        )
    )
    assert row is not None and row.after is not None
    assert row.after["kind"] == "supplier" and "institution_type" not in row.after


# -- the admin form ------------------------------------------------------------------------


@pytest.fixture
def client(session_factory: sessionmaker[Session]) -> Iterator[TestClient]:
    settings = Settings(secret_key="t" * 40, database_url="sqlite://")
    app = create_app(settings, session_factory=session_factory)
    with TestClient(app, base_url="http://testserver") as c:
        yield c


def test_admin_form_round_trip(client: TestClient, session: Session, make: Any) -> None:
    csrf = login(client, make.user("admin").username)
    page = client.get("/admin/organisations").text
    assert 'name="institution_type"' in page
    for label in ("法院", "疾控中心", "学校", "医院", "其他"):
        assert f">{label}</option>" in page

    r = client.post(
        "/admin/organisations",
        data={"kind": "institution", "name": "表单测试法院", "csrf_token": csrf},
    )
    assert r.status_code == 422
    assert "公共机构须选择公共机构类别" in r.text
    assert 'value="institution" selected' in r.text  # what was typed comes back
    assert session.scalar(select(Organisation).where(Organisation.name == "表单测试法院")) is None

    r = client.post(
        "/admin/organisations",
        data={
            "kind": "supplier",
            "institution_type": "school",
            "name": "表单测试供应商",
            "csrf_token": csrf,
        },
    )
    assert r.status_code == 422 and "只有公共机构才填写" in r.text
    assert 'value="school" selected' in r.text

    r = client.post(
        "/admin/organisations",
        data={
            "kind": "institution",
            "institution_type": "court",
            "name": "表单测试法院",
            "district": "南沙区",
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    org = session.scalar(select(Organisation).where(Organisation.name == "表单测试法院"))
    assert org is not None and (org.kind, org.institution_type) == ("institution", "court")
    listing = client.get("/admin/organisations").text
    assert '表单测试法院</td><td data-label="类型">公共机构（法院）</td>' in listing


def test_the_demo_types_its_institutions(session: Session) -> None:
    load_demo(session, enterprises=5)
    institutions = dict(
        session.execute(
            select(Organisation.name, Organisation.institution_type).where(
                Organisation.kind == "institution"
            )
        ).all()
    )
    assert institutions["广州市疾病预防控制中心"] == "cdc"
    assert institutions["黄埔区示范小学"] == "school"
    assert institutions["广州市南沙区人民法院"] == "court"
    assert None not in institutions.values()


# -- migration 0009 ------------------------------------------------------------------------

ROWS_AT_0008 = {
    # name: (kind, the type 0009 gives it)
    "广州市南沙区人民法院": ("institution", "court"),
    "广州市疾病预防控制中心": ("institution", "cdc"),
    "黄埔区疾控站": ("institution", "cdc"),
    "黄埔区示范小学": ("institution", "school"),
    "广州市第八中学": ("institution", "school"),
    "黄埔职业学校": ("institution", "school"),
    "中山大学附属第一医院": ("institution", "hospital"),
    "华南理工大学": ("institution", "school"),
    "黄埔区档案馆": ("institution", "other"),
    "黄埔区人民法院食堂供应商": ("supplier", None),
    "黄埔区卫生健康局": ("government", None),
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of its own: the shared one is already at head."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'upgrade.db'}")
        yield eng
        eng.dispose()
        return
    with pg_engine("fugong_mig") as eng:
        yield eng


def _types(engine: Engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name, institution_type FROM organisations")).all()
    return dict(rows)


def test_upgrade_from_0008_backfills_and_downgrade_goes_back(fresh_engine: Engine) -> None:
    migrate.upgrade(fresh_engine, "0008")
    with fresh_engine.begin() as conn:
        for name, (kind, _) in ROWS_AT_0008.items():
            conn.execute(
                text(
                    "INSERT INTO organisations (kind, name, created_at, updated_at) "
                    "VALUES (:kind, :name, :now, :now)"
                ),
                {"kind": kind, "name": name, "now": NOW},
            )
        court_id = conn.execute(
            text("SELECT id FROM organisations WHERE name = '广州市南沙区人民法院'")
        ).scalar_one()
        conn.execute(
            text("INSERT INTO contacts (organisation_id, name) VALUES (:id, '书记员')"),
            {"id": court_id},
        )

    migrate.upgrade(fresh_engine, "0009")
    assert _types(fresh_engine) == {name: t for name, (_, t) in ROWS_AT_0008.items()}
    with fresh_engine.connect() as conn:
        # The table was altered in place: its children are still there.
        assert conn.execute(text("SELECT count(*) FROM contacts")).scalar_one() == 1
    with pytest.raises(IntegrityError), fresh_engine.begin() as conn:
        conn.execute(INSERT, {"kind": "institution", "type": None, "name": "无类别", "now": NOW})
    if fresh_engine.dialect.name == "sqlite":
        # 0008's name-search triggers survived: new and old names reach the trigram index.
        with fresh_engine.begin() as conn:
            conn.execute(
                INSERT,
                {"kind": "institution", "type": "school", "name": "新建实验学校", "now": NOW},
            )
            hits = conn.execute(
                text(
                    "SELECT o.name FROM organisations_name_fts f JOIN organisations o "
                    "ON o.id = f.rowid WHERE organisations_name_fts MATCH :q ORDER BY o.name"
                ),
                {"q": '"实验学校" OR "人民法院"'},
            ).scalars()
            assert sorted(hits) == sorted(
                ["新建实验学校", "广州市南沙区人民法院", "黄埔区人民法院食堂供应商"]
            )

    migrate.downgrade(fresh_engine, "0008")
    columns = {c["name"] for c in inspect(fresh_engine).get_columns("organisations")}
    assert "institution_type" not in columns and "kind" in columns
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM contacts")).scalar_one() == 1
    migrate.upgrade(fresh_engine)
    expected = {name: t for name, (_, t) in ROWS_AT_0008.items()}
    if fresh_engine.dialect.name == "sqlite":
        expected["新建实验学校"] = "school"
    assert _types(fresh_engine) == expected
