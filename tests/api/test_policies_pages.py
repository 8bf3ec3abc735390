"""Policy pages over HTTP: eligibility with reasons, facts form, claim with a document, review
and payout, the finder and its export, parameter values; permissions (an enterprise sees only
its own claims and documents) and CSRF."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fugong.core.models import AuditLog
from fugong.core.schemas import EnterpriseUpdate
from fugong.core.services import update_enterprise
from fugong.policies.models import Claim, ParameterValue
from fugong.settings import Settings
from fugong.web.app import create_app
from tests.api.conftest import login

PDF = b"%PDF-1.4\n%test\n"
FORM = {
    "ui_months": "24",
    "ui_premiums_last_year": "40000",
    "avg_insured_last_year": "50",
    "layoffs_last_year": "1",
    "serious_default": "false",
    "zombie": "false",
    "epidemic_hires": "3",
}


@pytest.fixture
def app(session_factory: sessionmaker[Session], tmp_path: Path) -> FastAPI:
    # Uploads go to this test's own data directory, never the working tree.
    settings = Settings(secret_key="t" * 40, database_url="sqlite://", data_dir=tmp_path)
    return create_app(settings, session_factory=session_factory)


def world(session: Session, make: Any) -> dict[str, Any]:
    manager = make.user("manager")
    org = make.enterprise(size="medium", key_category="epidemic", insured_employees=50)
    other = make.enterprise()
    update_enterprise(
        session,
        enterprise_id=org.id,
        actor=make.user("admin"),
        data=EnterpriseUpdate(manager=manager.username),
    )
    return {
        "org": org,
        "other": other,
        "ent": make.user("enterprise", org=org),
        "other_ent": make.user("enterprise", org=other),
        "manager": manager,
        "official": make.user("official"),
    }


def test_enterprise_applies_official_reviews_and_pays(
    client: TestClient, session: Session, make: Any, tmp_path: Path
) -> None:
    w = world(session, make)
    csrf = login(client, w["ent"].username)
    assert client.get("/policies", follow_redirects=False).headers["location"] == (
        f"/policies/enterprises/{w['org'].id}"
    )
    r = client.post(
        f"/policies/enterprises/{w['org'].id}/facts",
        data={"csrf_token": csrf, "period": "2020", **FORM, "ui_months": "一年"},
    )
    assert r.status_code == 422 and 'data-field="ui_months"' in r.text
    r = client.post(
        f"/policies/enterprises/{w['org'].id}/facts",
        data={"csrf_token": csrf, "period": "2020", **FORM},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(f"/policies/enterprises/{w['org'].id}").text
    assert "我可以享受的政策" in page
    assert "20000.00" in page and "0.5 * 40000" in page
    assert "（暂定金额，待确认）" in page  # hiring-subsidy: 3 x 1,000 is a stand-in
    assert "✓" in page and "失业保险连续缴费月数 = 24" in page

    r = client.post(
        f"/policies/enterprises/{w['org'].id}/claims",
        data={"csrf_token": csrf, "measure": "ui-refund", "period": "2020"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    claim_url = r.headers["location"].split("?")[0]
    r = client.post(
        f"/policies/enterprises/{w['org'].id}/claims",
        data={"csrf_token": csrf, "measure": "ui-refund", "period": "2020"},
    )
    assert r.status_code == 409 and "只能申请一次" in r.text

    r = client.post(
        f"{claim_url}/documents",
        data={"csrf_token": csrf, "doc_type": "稳岗返还承诺书"},
        files={"file": ("承诺书.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = client.post(
        f"{claim_url}/documents",
        data={"csrf_token": csrf, "doc_type": "稳岗返还承诺书"},
        files={"file": ("x.pdf", b"<html>not a pdf</html>", "application/pdf")},
    )
    assert r.status_code == 422 and "只接受" in r.text
    detail = client.get(claim_url).text
    doc_url = re.search(r'href="(/policies/documents/\d+)"', detail)
    assert doc_url is not None
    got = client.get(doc_url.group(1))
    assert got.content == PDF and got.headers["content-disposition"].startswith("attachment")
    assert next(p.name for p in (tmp_path / "uploads").iterdir()).endswith(".pdf")

    # Another enterprise sees neither the claim nor the document.
    client.post("/logout", data={"csrf_token": csrf})
    csrf = login(client, w["other_ent"].username)
    assert client.get(claim_url).status_code == 404
    assert client.get(doc_url.group(1)).status_code == 404
    assert "#" not in client.get("/policies/claims").text.split("claims-table")[1]

    client.post("/logout", data={"csrf_token": csrf})
    csrf = login(client, w["official"].username)
    r = client.post(
        f"{claim_url}/review",
        data={"csrf_token": csrf, "decision": "adjust", "amount": "15000", "reason": ""},
    )
    assert r.status_code == 422 and "理由" in r.text
    r = client.post(
        f"{claim_url}/review",
        data={"csrf_token": csrf, "decision": "adjust", "amount": "15000", "reason": "核减"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = client.post(
        f"{claim_url}/payout",
        data={"csrf_token": csrf, "paid_on": "2020-05-08", "reference": "HP-1"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(claim_url).text
    assert "已拨付" in page and "15000.00 元 · 2020-05-08" in page
    claim = session.scalar(select(Claim).where(Claim.enterprise_id == w["org"].id))
    assert claim is not None and claim.decision_pack == "huangpu-2020@2020.1"


def test_forms_need_csrf(client: TestClient, session: Session, make: Any) -> None:
    w = world(session, make)
    login(client, w["ent"].username)
    r = client.post(
        f"/policies/enterprises/{w['org'].id}/claims",
        data={"csrf_token": "forged", "measure": "ui-refund", "period": "2020"},
    )
    assert r.status_code == 403
    r = client.post(f"/policies/enterprises/{w['org'].id}/facts", data={"period": "2020", **FORM})
    assert r.status_code == 403


def test_enterprise_cannot_see_others_or_the_finder(
    client: TestClient, session: Session, make: Any
) -> None:
    w = world(session, make)
    csrf = login(client, w["ent"].username)
    assert client.get(f"/policies/enterprises/{w['other'].id}").status_code == 404
    assert client.get(f"/policies/enterprises/{w['other'].id}/facts").status_code == 404
    r = client.post(
        f"/policies/enterprises/{w['other'].id}/facts",
        data={"csrf_token": csrf, "period": "2020", **FORM},
    )
    assert r.status_code == 404
    assert client.get("/policies/finder").status_code == 403
    assert client.get("/policies/finder/export").status_code == 403
    r = client.post(
        "/policies/parameters",
        data={
            "csrf_token": csrf,
            "parameter": "ui_min_months",
            "valid_from": "2022-01-01",
            "value": "6",
            "source_text": "伪造",
        },
    )
    assert r.status_code == 403


def test_finder_export_and_parameter_value(client: TestClient, session: Session, make: Any) -> None:
    w = world(session, make)
    csrf = login(client, w["ent"].username)
    client.post(
        f"/policies/enterprises/{w['org'].id}/facts",
        data={"csrf_token": csrf, "period": "2020", **FORM},
    )
    client.post("/logout", data={"csrf_token": csrf})
    csrf = login(client, w["manager"].username)
    page = client.get("/policies/finder?measure=ui-refund").text
    assert w["org"].name in page and "20000.00" in page
    r = client.get("/policies/finder/export?measure=ui-refund&format=csv")
    assert r.status_code == 200 and w["org"].uscc in r.text and "20000.00" in r.text
    r = client.get("/policies/finder/export?format=xlsx")
    assert r.content.startswith(b"PK\x03\x04")
    assert session.scalar(select(AuditLog).where(AuditLog.action == "policy.finder.export"))
    client.post("/logout", data={"csrf_token": csrf})

    csrf = login(client, w["official"].username)
    r = client.post(
        "/policies/parameters",
        data={
            "csrf_token": csrf,
            "parameter": "ui_refund_ratio",
            "valid_from": "2024-01-01",
            "value": "0.6",
            "size_class": "default",
            "source_text": "2024年稳岗返还通知",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert session.scalar(
        select(ParameterValue).where(ParameterValue.parameter == "ui_refund_ratio")
    )
    page = client.get("/policies/parameters").text
    assert "2024年稳岗返还通知" in page and "2024-01-01" in page
    r = client.post(
        "/policies/parameters",
        data={
            "csrf_token": csrf,
            "parameter": "ui_refund_ratio",
            "valid_from": "2024-01-01",
            "value": "60",
            "source_text": "百分数写错",
        },
    )
    assert r.status_code == 422 and "小数" in r.text
