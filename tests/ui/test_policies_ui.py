"""Browser test of relief-policy claims on a phone-sized screen: the demo enterprise sees what it
is eligible for and why, applies with a document, an official approves an adjusted amount with a
reason and records the payout, the enterprise sees it paid; a second claim for the same measure
and period (a stale page submitted again) is refused with a clear message."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.ui.conftest import login

pytestmark = pytest.mark.ui

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def test_enterprise_claims_official_adjusts_and_pays(page: Any) -> None:
    login(page, "enterprise")
    page.click(".navtoggle")  # a phone screen: the menu is folded
    page.click("nav >> text=政策兑现")
    page.wait_for_url(re.compile(r"/policies/enterprises/\d+"))
    assert page.inner_text("h1") == "我可以享受的政策"
    refund = page.locator("#measure-ui-refund")
    assert refund.get_attribute("data-status") == "eligible"
    assert "18000.00" in refund.inner_text()  # 50 % of 36,000 premiums
    why = refund.locator("ul.conds").inner_text()
    assert "✓ 失业保险连续缴费满12个月" in why and "失业保险连续缴费月数 = 36" in why
    assert "0.5 * 36000" in refund.inner_text()
    # Automatic measures are granted without a claim; stand-in amounts say so.
    rent = page.locator("#measure-soe-rent")
    assert "自动享受" in rent.inner_text() and rent.locator("form").count() == 0
    assert "（暂定金额，待确认）" in page.inner_text("#measure-hiring-subsidy")

    # A second tab keeps the page as it was before applying (a double submission later).
    stale = page.context.new_page()
    stale.goto(page.url)

    refund.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/policies/claims/\d+\?msg=applied"))
    claim_url = page.url.split("?")[0]
    assert "稳岗返还承诺书" in page.inner_text("#checklist")
    page.select_option("select[name=doc_type]", "稳岗返还承诺书")
    page.set_input_files(
        "input[name=file]",
        files=[{"name": "稳岗返还承诺书.pdf", "mimeType": "application/pdf", "buffer": PDF}],
    )
    page.click(".upload-form button[type=submit]")
    page.wait_for_url(re.compile(r"msg=uploaded"))
    assert "✓ 稳岗返还承诺书" in page.inner_text("#checklist")
    assert "稳岗返还承诺书.pdf" in page.inner_text("#documents")

    stale.locator("#measure-ui-refund button[type=submit]").click()
    stale.wait_for_load_state()
    assert "本企业已申请过“失业保险稳岗返还”（2020年度）" in stale.inner_text("#policy-error")
    assert "同一政策同一年度只能申请一次" in stale.inner_text("#policy-error")
    stale.close()

    page.context.clear_cookies()
    login(page, "official")
    page.goto(claim_url)
    assert "已申请，待审核" in page.inner_text("#claim-status")
    page.check("input[name=decision][value=adjust]")
    page.fill("#review-form input[name=amount]", "15000")
    page.click("#review-form button[type=submit]")  # no reason: refused, nothing lost
    page.wait_for_load_state()
    assert "已申请，待审核" in page.inner_text("#claim-status")
    page.check("input[name=decision][value=adjust]")
    page.fill("#review-form input[name=amount]", "15000")
    page.fill("#review-form textarea[name=reason]", "上年度3月、4月未足额缴费，按实缴核减")
    page.click("#review-form button[type=submit]")
    page.wait_for_url(re.compile(r"msg=reviewed"))
    assert "金额调整" in page.inner_text("#claim-status")
    assert page.inner_text("#approved-amount") == "15000.00 元"
    assert "按实缴核减" in page.inner_text("#review-reason")
    page.fill("#payout-form input[name=paid_on]", "2020-05-08")
    page.fill("#payout-form input[name=reference]", "HP-WQ-2020-0008")
    page.click("#payout-form button[type=submit]")
    page.wait_for_url(re.compile(r"msg=paid"))

    page.context.clear_cookies()
    login(page, "enterprise")
    page.goto(claim_url)
    assert "已拨付" in page.inner_text("#claim-status")
    payout = page.inner_text("#payout")
    assert "15000.00 元" in payout and "2020-05-08" in payout and "HP-WQ-2020-0008" in payout
