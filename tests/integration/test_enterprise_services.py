"""Enterprise services on the real databases: audit rows, history, constraints, import."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fugong.core import queries, services
from fugong.core.demo import enterprise_rows
from fugong.core.models import AuditLog, Enterprise, Organisation
from fugong.core.schemas import EnterpriseCreate, EnterpriseUpdate
from fugong.errors import NotFound, PermissionDenied, ValidationFailed


def audit_rows(session: Session, action: str) -> list[AuditLog]:
    return list(
        session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id))
    )


def test_create_writes_audit_row_in_same_transaction(session: Session, make) -> None:
    official = make.user("official")
    row = enterprise_rows(1, seed=7)[0]
    org = services.create_enterprise(session, actor=official, data=EnterpriseCreate(**row))
    [entry] = audit_rows(session, "enterprise.create")
    assert entry.actor_id == official.id
    assert entry.target_id == str(org.id)
    assert entry.after is not None and entry.after["uscc"] == row["uscc"]
    assert entry.after["resumption_status"] == row["resumption_status"]


def test_update_records_before_after_and_history(session: Session, make) -> None:
    official = make.user("official")
    org = make.enterprise(
        resumption_status="not_resumed", resumption_date=None, staff_back_pct=None
    )
    services.update_enterprise(
        session,
        enterprise_id=org.id,
        actor=official,
        data=EnterpriseUpdate(
            resumption_status="approved", resumption_date=date(2020, 3, 2), note="工信局批准"
        ),
    )
    [entry] = audit_rows(session, "enterprise.update")
    assert entry.before == {"resumption_status": "not_resumed", "resumption_date": None}
    assert entry.after == {"resumption_status": "approved", "resumption_date": "2020-03-02"}
    assert entry.detail == "工信局批准"
    ent = session.get(Enterprise, org.id)
    assert ent is not None
    session.refresh(ent)
    assert [h.status for h in ent.history][:2] == ["approved", "not_resumed"]
    assert ent.history[0].recorded_by_id == official.id


def test_update_refuses_inconsistent_merged_state(session: Session, make) -> None:
    official = make.user("official")
    org = make.enterprise(resumption_status="not_resumed", resumption_date=None)
    with pytest.raises(ValidationFailed, match="复工日期"):
        services.update_enterprise(
            session,
            enterprise_id=org.id,
            actor=official,
            data=EnterpriseUpdate(resumption_status="approved"),
        )


def test_database_constraints_hold_without_the_service(session: Session, make) -> None:
    org = make.enterprise()
    ent = session.get(Enterprise, org.id)
    assert ent is not None
    ent.headcount = -1
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_duplicate_uscc_refused(session: Session, make) -> None:
    org = make.enterprise()
    row = enterprise_rows(1, seed=99)[0] | {"uscc": org.uscc, "manager": None}
    with pytest.raises(ValidationFailed, match="已登记"):
        services.create_enterprise(session, actor=None, data=EnterpriseCreate(**row))


def test_import_is_all_or_nothing_with_row_errors(session: Session, make) -> None:
    official = make.user("official")
    rows = enterprise_rows(5, seed=11)
    rows[1]["uscc"] = rows[1]["uscc"][:17] + ("0" if rows[1]["uscc"][17] != "0" else "1")
    rows[3]["headcount"] = "很多"
    rows[4]["uscc"] = rows[0]["uscc"]
    for r in rows:
        r["manager"] = None
    before = session.scalar(select(Organisation.id).order_by(Organisation.id.desc()))
    report = services.import_enterprises(session, rows=rows, actor=official)
    assert report.created == 0
    where = {(e.row, e.field) for e in report.errors}
    assert (3, "uscc") in where and (5, "headcount") in where and (6, "uscc") in where
    assert any("校验码错误" in e.message for e in report.errors if e.row == 3)
    assert any("与第2行重复" in e.message for e in report.errors if e.row == 6)
    assert session.scalar(select(Organisation.id).order_by(Organisation.id.desc())) == before
    ok = enterprise_rows(3, seed=12)
    for r in ok:
        r["manager"] = None
    report = services.import_enterprises(session, rows=ok, actor=official)
    assert report.created == 3 and report.errors == []
    assert len(audit_rows(session, "enterprise.import")) == 3


def test_official_of_another_district_cannot_create_here(session: Session, make) -> None:
    official = make.user("official", org=make.org(district="天河区"))
    row = enterprise_rows(1, seed=21)[0] | {"manager": None}
    with pytest.raises(PermissionDenied):
        services.create_enterprise(session, actor=official, data=EnterpriseCreate(**row))


def test_scoping_is_enforced_in_queries(session: Session, make) -> None:
    mine, other = make.enterprise(), make.enterprise()
    manager = make.user("manager")
    services.update_enterprise(
        session,
        enterprise_id=mine.id,
        actor=make.user("admin"),
        data=EnterpriseUpdate(manager=manager.username),
    )
    ent_user = make.user("enterprise", org=other)
    tianhe = make.user("official", org=make.org(district="天河区"))
    flt = queries.EnterpriseFilter()
    assert [e.id for e in queries.list_enterprises(session, actor=manager, flt=flt).items] == [
        mine.id
    ]
    assert [e.id for e in queries.list_enterprises(session, actor=ent_user, flt=flt).items] == [
        other.id
    ]
    assert queries.list_enterprises(session, actor=tianhe, flt=flt).total == 0
    with pytest.raises(NotFound):
        queries.get_enterprise(session, actor=ent_user, enterprise_id=mine.id)
    with pytest.raises(NotFound):
        services.update_enterprise(
            session, enterprise_id=mine.id, actor=ent_user, data=EnterpriseUpdate(headcount=5)
        )
    for role in ("supplier", "cdc", "site"):
        with pytest.raises(PermissionDenied):
            queries.list_enterprises(session, actor=make.user(role), flt=flt)


def test_enterprise_user_cannot_change_registry_fields(session: Session, make) -> None:
    org = make.enterprise()
    me = make.user("enterprise", org=org)
    with pytest.raises(PermissionDenied, match="district"):
        services.update_enterprise(
            session, enterprise_id=org.id, actor=me, data=EnterpriseUpdate(district="天河区")
        )
    services.update_enterprise(
        session, enterprise_id=org.id, actor=me, data=EnterpriseUpdate(headcount=77)
    )
    assert audit_rows(session, "enterprise.update")[-1].after == {"headcount": 77}


def test_reading_contacts_is_audited(session: Session, make) -> None:
    org = make.enterprise(contact_name="雷华美", contact_phone="13800000000")
    official = make.user("official")
    contacts = queries.read_contacts(session, actor=official, org=org)
    assert [c.name for c in contacts] == ["雷华美"]
    [entry] = audit_rows(session, "personal.read")
    assert entry.actor_id == official.id and entry.target_id == str(org.id)


def test_filters_and_search(session: Session, make) -> None:
    a = make.enterprise(
        name="广州光宝测试科技有限公司",
        street="大沙街道",
        industry="it",
        size="small",
        key_category="epidemic",
    )
    make.enterprise(
        name="广州其他测试贸易有限公司",
        street="南岗街道",
        industry="wholesale_retail",
        size="micro",
        key_category=None,
    )
    admin = make.user("admin")

    def ids(**kw: str) -> list[int]:
        return [
            e.id
            for e in queries.list_enterprises(
                session, actor=admin, flt=queries.EnterpriseFilter(**kw), per_page=200
            ).items
        ]

    assert a.id in ids(q="光宝测试")
    assert ids(q=a.uscc or "") == [a.id]
    assert a.id in ids(street="大沙街道", industry="it", size="small", key_category="epidemic")
    assert a.id not in ids(key_category="none")
    assert a.id not in ids(q="100%_")  # LIKE wildcards are escaped
