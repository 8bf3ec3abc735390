"""The policies API: eligibility with explanations, claims, the same scoping as the pages."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from fugong.policies import services
from tests.api.conftest import login
from tests.api.test_policies_pages import FORM


def test_eligibility_and_claims_over_the_api(
    client: TestClient, session: Session, make: Any
) -> None:
    org = make.enterprise(size="medium", key_category="epidemic", insured_employees=50)
    other = make.enterprise()
    ent = make.user("enterprise", org=org)
    services.save_facts(session, enterprise_id=org.id, period="2020", values=FORM, actor=ent)
    csrf = login(client, ent.username)
    r = client.get(f"/api/v1/policies/enterprises/{org.id}/eligibility")
    assert r.status_code == 200
    got = {m["measure"]: m for m in r.json()}
    assert (
        got["ui-refund"]["status"] == "eligible" and got["ui-refund"]["amount_cents"] == 2_000_000
    )
    assert got["ui-refund"]["explanation"]["amount_formula"]["with_values"] == "0.5 * 40000"
    assert client.get(f"/api/v1/policies/enterprises/{other.id}/eligibility").status_code == 404

    body = {"enterprise_id": org.id, "measure": "ui-refund", "period": "2020"}
    assert client.post("/api/v1/policies/claims", json=body).status_code == 403  # no CSRF header
    headers = {"X-CSRF-Token": csrf}
    r = client.post("/api/v1/policies/claims", json=body, headers=headers)
    assert r.status_code == 201 and r.json()["requested_cents"] == 2_000_000
    r = client.post("/api/v1/policies/claims", json=body, headers=headers)
    assert r.status_code == 409 and "只能申请一次" in r.json()["detail"]
    claims = client.get("/api/v1/policies/claims").json()
    assert [c["measure"] for c in claims] == ["ui-refund"]
    r = client.post(
        f"/api/v1/policies/claims/{claims[0]['id']}/review",
        json={"decision": "approve", "reason": "自己审核自己"},
        headers=headers,
    )
    assert r.status_code == 403
