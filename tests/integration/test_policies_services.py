"""Policy services on the real databases: facts history, officials' parameter values, the
eligibility the engine gives, "policy finds the enterprise" scoping, claims from application
to payout, document limits, audit rows."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fugong.core.models import AuditLog, Notification, Organisation, User
from fugong.core.schemas import EnterpriseUpdate
from fugong.core.services import update_enterprise
from fugong.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fugong.policies import queries, services
from fugong.policies.engine import evaluate, table_from_records
from fugong.policies.models import EnterpriseFacts
from fugong.policies.schemas import ClaimCreate, ClaimReview, ParameterValueCreate, PayoutCreate

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
# Eligible for ui-refund (layoff rate 1/50 = 2 % <= 5.5 %): 50 % of 40,000 = 20,000.00, and
# with a key category for hiring-subsidy: 12 hires x 1,000 (a stand-in amount) = 12,000.00.
FACTS = {
    "ui_months": "24",
    "ui_premiums_last_year": "40000",
    "avg_insured_last_year": "50",
    "layoffs_last_year": "1",
    "serious_default": "false",
    "zombie": "否",
    "epidemic_hires": "12",
    "restart_date": "2020-02-09",
}


def setup(session: Session, make: Any) -> dict[str, Any]:
    admin = make.user("admin")
    manager = make.user("manager")
    official = make.user("official")
    org = make.enterprise(size="medium", key_category="epidemic", insured_employees=50)
    other = make.enterprise(size="small", key_category=None)
    update_enterprise(
        session, enterprise_id=org.id, actor=admin, data=EnterpriseUpdate(manager=manager.username)
    )
    ent_user = make.user("enterprise", org=org)
    other_user = make.user("enterprise", org=other)
    return {
        "admin": admin,
        "manager": manager,
        "official": official,
        "org": org,
        "other": other,
        "ent": ent_user,
        "other_ent": other_user,
    }


def by_id(elig: queries.Eligibility) -> dict[str, queries.MeasureView]:
    return {m.measure.id: m for m in elig.measures}


def test_facts_keep_every_version_and_are_typed(session: Session, make: Any) -> None:
    w = setup(session, make)
    first = services.save_facts(
        session, enterprise_id=w["org"].id, period="2020", values=FACTS, actor=w["ent"]
    )
    assert first.version == 1
    assert first.facts["ui_months"] == 24 and first.facts["zombie"] is False
    assert first.facts["restart_date"] == "2020-02-09"
    second = services.save_facts(
        session,
        enterprise_id=w["org"].id,
        period="2020",
        values=FACTS | {"layoffs_last_year": "5"},
        actor=w["manager"],
    )
    assert second.version == 2 and second.entered_by_id == w["manager"].id
    history = queries.facts_history(
        session, actor=w["official"], enterprise_id=w["org"].id, period="2020"
    )
    assert [h.version for h in history] == [2, 1]
    assert history[1].facts["layoffs_last_year"] == 1  # the old version is untouched
    row = session.scalar(
        select(AuditLog).where(AuditLog.action == "policy.facts").order_by(AuditLog.id.desc())
    )
    assert row is not None and row.before == {"layoffs_last_year": 1}
    assert row.after is not None and row.after["layoffs_last_year"] == 5

    with pytest.raises(ValidationFailed) as e:
        services.save_facts(
            session,
            enterprise_id=w["org"].id,
            period="2020",
            values={"ui_months": "十二", "restart_date": "2020-02-30"},
            actor=w["ent"],
        )
    assert {f.field for f in e.value.errors} == {"ui_months", "restart_date"}
    with pytest.raises(NotFound):  # another enterprise's user does not even see it
        services.save_facts(
            session, enterprise_id=w["org"].id, period="2020", values=FACTS, actor=w["other_ent"]
        )


def test_eligibility_matches_the_engine(session: Session, make: Any) -> None:
    w = setup(session, make)
    services.save_facts(
        session, enterprise_id=w["org"].id, period="2020", values=FACTS, actor=w["ent"]
    )
    elig = queries.eligibility(session, actor=w["ent"], enterprise_id=w["org"].id)
    got = by_id(elig)
    assert got["ui-refund"].status == "eligible" and got["ui-refund"].cents == 2_000_000
    assert got["hiring-subsidy"].cents == 1_200_000 and got["hiring-subsidy"].stand_in
    assert got["equipment"].status == "unknown" and "emergency_products" in got["equipment"].missing
    assert got["ui-refund"].explanation["amount_formula"]["with_values"] == "0.5 * 40000"

    # The same facts straight through the engine give the same statuses and amounts.
    pack = queries.base_pack()
    org = session.get(Organisation, w["org"].id)
    assert org is not None and org.enterprise is not None
    record = services.validate_facts(pack, FACTS) | {
        "uscc": org.uscc,
        "name": org.name,
        "district": org.enterprise.district,
        "size": "medium",
        "key_category": True,
        "insured_employees": 50,
    }
    results = evaluate(
        pack, table_from_records([record], pack.facts, pack.id_fact), date(2020, 6, 30)
    )
    for r in results.measures:
        assert (got[r.measure.id].cents, got[r.measure.id].status) == (
            int(r.cents[0]),
            ("ineligible", "eligible", "unknown")[int(r.status[0])],
        )


def test_parameter_value_is_picked_by_date(session: Session, make: Any) -> None:
    w = setup(session, make)
    for period in ("2020", "2021"):
        services.save_facts(
            session, enterprise_id=w["org"].id, period=period, values=FACTS, actor=w["ent"]
        )
    # The pack's 2021 ratio for SMEs is a 60 % stand-in; an official confirms 70 % instead.
    services.add_parameter_value(
        session,
        actor=w["official"],
        data=ParameterValueCreate(
            parameter="ui_refund_ratio",
            valid_from=date(2021, 1, 1),
            value=0.7,
            size_class="default",
            source_text="穗人社规〔2021〕示例号",
        ),
    )
    e2020 = by_id(queries.eligibility(session, actor=w["ent"], enterprise_id=w["org"].id))
    e2021 = by_id(
        queries.eligibility(session, actor=w["ent"], enterprise_id=w["org"].id, period="2021")
    )
    assert e2020["ui-refund"].cents == 2_000_000  # 2020 still 50 %
    assert e2021["ui-refund"].cents == 2_800_000  # 70 % of 40,000
    # The official's value is confirmed (the unemployment rate it also reads is still not).
    assert e2021["ui-refund"].explanation["stand_in_parameters"] == [
        "urban_registered_unemployment_rate"
    ]
    pack = queries.current_pack(session)
    ratio = pack.parameters["ui_refund_ratio"].at(date(2021, 6, 30))
    assert ratio.for_category("large") == 0.3  # sizes not given keep the pack's value
    assert pack.version.startswith("2020.1+db")
    with pytest.raises(ValidationFailed):  # not split by size
        services.add_parameter_value(
            session,
            actor=w["official"],
            data=ParameterValueCreate(
                parameter="ui_min_months",
                valid_from=date(2022, 1, 1),
                value=6,
                size_class="large",
                source_text="示例",
            ),
        )
    with pytest.raises(PermissionDenied):
        services.add_parameter_value(
            session,
            actor=w["manager"],
            data=ParameterValueCreate(
                parameter="ui_min_months", valid_from=date(2022, 1, 1), value=6, source_text="示例"
            ),
        )
    assert session.scalar(select(AuditLog).where(AuditLog.action == "policy.parameter.add"))


def test_finder_is_scoped_and_skips_claimed(session: Session, make: Any) -> None:
    w = setup(session, make)
    services.save_facts(
        session, enterprise_id=w["org"].id, period="2020", values=FACTS, actor=w["ent"]
    )
    services.save_facts(
        session,
        enterprise_id=w["other"].id,
        period="2020",
        values=FACTS | {"ui_premiums_last_year": "1000"},
        actor=w["other_ent"],
    )
    rows = queries.find_enterprises(session, actor=w["official"])
    assert {(r.enterprise_id, r.measure) for r in rows} >= {
        (w["org"].id, "ui-refund"),
        (w["org"].id, "hiring-subsidy"),
        (w["other"].id, "ui-refund"),
    }
    assert all(r.measure not in ("soe-rent", "si-exemption") for r in rows)  # automatic
    mine = queries.find_enterprises(session, actor=w["manager"])
    assert {r.enterprise_id for r in mine} == {w["org"].id}  # the portfolio only
    big = queries.find_enterprises(
        session,
        actor=w["official"],
        flt=queries.FinderFilter(measure="ui-refund", min_cents=100_000),
    )
    assert [(r.enterprise_id, r.cents) for r in big] == [(w["org"].id, 2_000_000)]
    with pytest.raises(PermissionDenied):
        queries.find_enterprises(session, actor=w["ent"])

    services.apply_claim(
        session,
        actor=w["ent"],
        data=ClaimCreate(enterprise_id=w["org"].id, measure="ui-refund"),
    )
    after = queries.find_enterprises(session, actor=w["manager"])
    assert {r.measure for r in after} == {"hiring-subsidy"}


def test_claim_from_application_to_payout(session: Session, make: Any, tmp_path: Path) -> None:
    w = setup(session, make)
    services.save_facts(
        session, enterprise_id=w["org"].id, period="2020", values=FACTS, actor=w["ent"]
    )
    claim = services.apply_claim(
        session, actor=w["ent"], data=ClaimCreate(enterprise_id=w["org"].id, measure="ui-refund")
    )
    assert claim.requested_cents == 2_000_000 and claim.applied_pack == "huangpu-2020@2020.1"
    assert claim.explanation["status"] == "eligible" and claim.facts_version == 1
    manager_note = session.scalar(
        select(Notification).where(Notification.user_id == w["manager"].id)
    )
    assert manager_note is not None and f"/policies/claims/{claim.id}" == manager_note.link
    official_note = session.scalar(
        select(Notification).where(Notification.user_id == w["official"].id)
    )
    assert official_note is not None and "失业保险稳岗返还" in official_note.text

    with pytest.raises(Conflict, match="只能申请一次"):
        services.apply_claim(
            session,
            actor=w["ent"],
            data=ClaimCreate(enterprise_id=w["org"].id, measure="ui-refund"),
        )
    with pytest.raises(ValidationFailed, match="自动享受"):
        services.apply_claim(
            session, actor=w["ent"], data=ClaimCreate(enterprise_id=w["org"].id, measure="soe-rent")
        )
    with pytest.raises(ValidationFailed, match="缺少数据"):
        services.apply_claim(
            session,
            actor=w["ent"],
            data=ClaimCreate(enterprise_id=w["org"].id, measure="equipment"),
        )
    with pytest.raises(PermissionDenied):  # a manager cannot pledge for the enterprise
        services.apply_claim(
            session,
            actor=w["manager"],
            data=ClaimCreate(enterprise_id=w["org"].id, measure="hiring-subsidy"),
        )

    doc = services.upload_document(
        session,
        claim_id=claim.id,
        doc_type="稳岗返还承诺书",
        filename="承诺书.pdf",
        content=PDF,
        actor=w["ent"],
        upload_dir=tmp_path,
    )
    assert doc.content_type == "application/pdf" and (tmp_path / doc.stored_name).is_file()
    assert "承诺书" not in doc.stored_name
    _, content = services.read_document(
        session, document_id=doc.id, actor=w["official"], upload_dir=tmp_path
    )
    assert content == PDF
    assert session.scalar(select(AuditLog).where(AuditLog.action == "policy.document.read"))
    with pytest.raises(NotFound):
        services.read_document(
            session, document_id=doc.id, actor=w["other_ent"], upload_dir=tmp_path
        )

    with pytest.raises(PermissionDenied):
        services.review_claim(
            session,
            claim_id=claim.id,
            actor=w["manager"],
            data=ClaimReview(decision="approve", reason="材料齐全"),
        )
    with pytest.raises(ValidationFailed):
        services.review_claim(
            session,
            claim_id=claim.id,
            actor=w["official"],
            data=ClaimReview(decision="adjust", reason="核减"),
        )
    reviewed = services.review_claim(
        session,
        claim_id=claim.id,
        actor=w["official"],
        data=ClaimReview(decision="adjust", amount=18000.5, reason="核减未足额缴费月份"),
    )
    assert reviewed.status == "adjusted" and reviewed.approved_cents == 1_800_050
    assert reviewed.decision_pack == "huangpu-2020@2020.1"
    assert reviewed.decision_explanation is not None
    assert reviewed.decision_explanation["amount_formula"]["with_values"] == "0.5 * 40000"
    with pytest.raises(Conflict):
        services.review_claim(
            session,
            claim_id=claim.id,
            actor=w["official"],
            data=ClaimReview(decision="reject", reason="重复审核"),
        )
    with pytest.raises(Conflict):  # documents only before the decision
        services.upload_document(
            session,
            claim_id=claim.id,
            doc_type="稳岗返还承诺书",
            filename="b.pdf",
            content=PDF,
            actor=w["ent"],
            upload_dir=tmp_path,
        )
    paid = services.record_payout(
        session,
        claim_id=claim.id,
        actor=w["official"],
        data=PayoutCreate(paid_on=date(2020, 5, 8), reference="HP-2020-0001"),
    )
    assert paid.status == "paid" and paid.payout_cents == 1_800_050
    notes = session.scalars(select(Notification.text).where(Notification.user_id == w["ent"].id))
    assert any("已拨付 18000.50 元" in t for t in notes)
    actions = set(
        session.scalars(
            select(AuditLog.action).where(
                AuditLog.target_type == "policy_claim", AuditLog.target_id == str(claim.id)
            )
        )
    )
    assert actions == {
        "policy.claim.apply",
        "policy.document.upload",
        "policy.document.read",
        "policy.claim.review",
        "policy.claim.payout",
    }
    assert queries.list_claims(session, actor=w["other_ent"]) == []
    assert [c.id for c in queries.list_claims(session, actor=w["ent"])] == [claim.id]


def test_review_needs_a_reason_and_reject_pays_nothing(session: Session, make: Any) -> None:
    w = setup(session, make)
    services.save_facts(
        session, enterprise_id=w["org"].id, period="2020", values=FACTS, actor=w["ent"]
    )
    claim = services.apply_claim(
        session,
        actor=w["ent"],
        data=ClaimCreate(enterprise_id=w["org"].id, measure="hiring-subsidy"),
    )
    assert claim.stand_in
    with pytest.raises(ValueError):  # pydantic: the reason is required
        ClaimReview(decision="reject", reason="")
    rejected = services.review_claim(
        session,
        claim_id=claim.id,
        actor=w["official"],
        data=ClaimReview(decision="reject", reason="劳动合同与社保记录不符"),
    )
    assert rejected.approved_cents is None and rejected.reason == "劳动合同与社保记录不符"
    with pytest.raises(Conflict):
        services.record_payout(
            session,
            claim_id=claim.id,
            actor=w["official"],
            data=PayoutCreate(paid_on=date(2020, 5, 8), reference="X-1"),
        )


BAD_UPLOADS = [
    ("a.pdf", b"MZ\x90\x00 not a pdf", "只接受"),
    ("a.exe", PDF, "只接受"),  # the name must agree with the bytes
    ("a.pdf", b"", "为空"),
    ("a.pdf", b"%PDF-1.4" + b"0" * (10 * 1024 * 1024), "10 MB"),
    ("a.xlsx", b"PK\x03\x04garbage", "只接受"),
]


def test_upload_limits(session: Session, make: Any, tmp_path: Path) -> None:
    w = setup(session, make)
    services.save_facts(
        session, enterprise_id=w["org"].id, period="2020", values=FACTS, actor=w["ent"]
    )
    claim = services.apply_claim(
        session, actor=w["ent"], data=ClaimCreate(enterprise_id=w["org"].id, measure="ui-refund")
    )
    for filename, content, message in BAD_UPLOADS:
        with pytest.raises(ValidationFailed, match=message):
            services.upload_document(
                session,
                claim_id=claim.id,
                doc_type="稳岗返还承诺书",
                filename=filename,
                content=content,
                actor=w["ent"],
                upload_dir=tmp_path,
            )
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValidationFailed, match="材料清单"):
        services.upload_document(
            session,
            claim_id=claim.id,
            doc_type="营业执照",
            filename="a.pdf",
            content=PDF,
            actor=w["ent"],
            upload_dir=tmp_path,
        )
    # The biggest file allowed passes; a real xlsx is recognised by its zip directory.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    assert services.sniff(buf.getvalue()) == "xlsx"
    doc = services.upload_document(
        session,
        claim_id=claim.id,
        doc_type="稳岗返还承诺书",
        filename="big.PDF",
        content=b"%PDF-1.4" + b"0" * (10 * 1024 * 1024 - 8),
        actor=w["ent"],
        upload_dir=tmp_path,
    )
    assert doc.size == 10 * 1024 * 1024


def test_facts_versions_are_unique_in_the_database(session: Session, make: Any) -> None:
    w = setup(session, make)
    user = session.get(User, w["ent"].id)
    assert user is not None
    services.save_facts(session, enterprise_id=w["org"].id, period="2020", values={}, actor=user)
    session.add(
        EnterpriseFacts(
            enterprise_id=w["org"].id, period="2020", version=1, pack="huangpu-2020", facts={}
        )
    )
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), session.begin_nested():
        session.flush()


def test_a_rolled_back_upload_leaves_no_file(session: Session, make: Any, tmp_path: Path) -> None:
    w = setup(session, make)
    services.save_facts(
        session, enterprise_id=w["org"].id, period="2020", values=FACTS, actor=w["ent"]
    )
    claim = services.apply_claim(
        session, actor=w["ent"], data=ClaimCreate(enterprise_id=w["org"].id, measure="ui-refund")
    )
    session.commit()

    def upload() -> None:
        services.upload_document(
            session,
            claim_id=claim.id,
            doc_type="稳岗返还承诺书",
            filename="a.pdf",
            content=PDF,
            actor=w["ent"],
            upload_dir=tmp_path,
        )

    upload()
    assert len(list(tmp_path.iterdir())) == 1
    session.rollback()  # e.g. the request failed after the service returned
    assert list(tmp_path.iterdir()) == []
    upload()
    session.commit()
    session.rollback()  # a later rollback does not touch what an earlier commit kept
    assert len(list(tmp_path.iterdir())) == 1
