"""Browser test of the supplies platform on a phone-sized screen: a supplier posts an offer,
an enterprise requests, an official runs and commits a round, the supplier ships, the
enterprise confirms delivery, and the dashboard shows the elapsed times."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.ui.conftest import login

pytestmark = pytest.mark.ui


def logout(page: Any) -> None:
    page.context.clear_cookies()


def test_offer_request_round_ship_deliver(page: Any) -> None:
    # The supplier posts an offer of infrared thermometers for Huangpu.
    login(page, "supplier")
    page.goto("/supplies/offers")
    page.select_option("#new-offer select[name=item]", "ir_thermometer")
    page.fill("#new-offer input[name=stock]", "12")
    page.fill("#new-offer input[name=daily_capacity]", "5")
    page.fill("#new-offer input[name=unit_price]", "150")
    page.fill("#new-offer input[name=districts]", "黄埔区")
    page.click("#new-offer button[type=submit]")
    page.wait_for_url(re.compile(r"msg=offer_created"))
    assert page.locator("#offers-table").get_by_text("12 台").count() == 1
    logout(page)

    # The enterprise (a key epidemic-prevention firm: tier 1) asks for 5.
    login(page, "enterprise")
    page.goto("/supplies/requests/new")
    page.select_option("select[name=item]", "ir_thermometer")
    page.fill("input[name=quantity]", "5")
    page.fill("textarea[name=purpose]", "复工后厂门口测温")
    page.click("form button[type=submit].primary")
    page.wait_for_url(re.compile(r"/supplies/requests/\d+\?msg=request_created"))
    assert "第1档" in page.inner_text("#tier-explanation")
    request_url = page.url.split("?")[0]
    logout(page)

    # The official previews a round and commits it.
    login(page, "official")
    page.goto("/supplies/rounds")
    page.click("#open-round")
    page.wait_for_url(re.compile(r"/supplies/rounds/\d+"))
    # Other tests on the shared server may have requests of their own: pick this one's row.
    row = page.locator("#plan-table tr", has_text="广州光宝示范科技有限公司").filter(
        has_text="红外额温枪"
    )
    assert row.locator("td[data-label=分配]").inner_text() == "5"
    assert "100%" in row.inner_text()
    page.click("#commit-round")
    page.wait_for_url(re.compile(r"msg=committed"))
    assert page.inner_text("#round-status") == "已提交"
    logout(page)

    # The supplier ships with a tracking number.
    login(page, "supplier")
    page.goto("/supplies/orders")
    page.locator("#orders-table tbody tr").first.locator("a").click()
    page.fill("input[name=tracking_no]", "SF1234567890")
    page.click("form[action$='/ship'] button")
    page.wait_for_url(re.compile(r"msg=order"))
    assert page.inner_text("#order-status") == "已发货"
    logout(page)

    # The enterprise confirms delivery; the request and the dashboard show the times.
    login(page, "enterprise")
    page.goto("/supplies/orders")
    page.locator("#orders-table tbody tr").first.locator("a").click()
    assert page.inner_text("#tracking-no") == "SF1234567890"
    page.click("form[action$='/deliver'] button")
    page.wait_for_url(re.compile(r"msg=order"))
    assert page.inner_text("#order-status") == "已收货"
    page.goto(request_url)
    assert page.inner_text("#request-status") == "已送达"
    times = page.inner_text("#request-times")
    assert "分配 +" in times and "发货 +" in times and "送达 +" in times
    page.goto("/supplies")
    row = page.locator("#times-table tr", has_text="红外额温枪")
    for label in ("至分配", "至发货", "至送达"):
        assert re.fullmatch(r"\d+\.\d", row.locator(f"td[data-label={label}]").inner_text())
    assert row.locator("td[data-label=超时]").inner_text() == "0"


def test_pre_epidemic_price_and_margin_cap(page: Any) -> None:
    # The supplier records its pre-epidemic price for goggles, with the invoice.
    login(page, "supplier")
    page.goto("/supplies/suppliers")
    form = page.locator("form[action='/supplies/suppliers/pre-prices']")
    form.locator("select[name=item]").select_option("goggles")
    form.locator("input[name=unit_price]").fill("18")
    form.locator("input[name=invoice_no]").fill("UI-INV-20191105")
    form.locator("input[name=invoice_date]").fill("2020-02-01")
    form.locator("button[type=submit]").click()
    # An invoice from after the response started is no evidence of a pre-epidemic price.
    assert "2020-01-23" in page.inner_text("#pre-prices")
    form.locator("input[name=invoice_date]").fill("2019-11-05")
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"msg=pre_price"))
    row = page.locator("#pre-price-table tr", has_text="UI-INV-20191105")
    assert "待审核" in row.inner_text()
    logout(page)

    # The official caps goggles at 30% over the pre-epidemic price and approves the invoice.
    login(page, "official")
    page.goto("/supplies/policy")
    cap = page.locator("#caps-table tr", has_text="护目镜")
    cap.locator("select[name=mode]").select_option("margin")
    cap.locator("input[name=margin]").fill("30")
    cap.locator("input[name=factor]").fill("1.5")
    cap.locator("button").click()
    page.wait_for_url(re.compile(r"msg=price_cap"))
    cap = page.locator("#caps-table tr", has_text="护目镜")
    assert "疫情前价格 × 1.3" in cap.inner_text() and "37.50 元" in cap.inner_text()
    page.goto("/supplies/suppliers")
    row = page.locator("#pre-price-table tr", has_text="UI-INV-20191105")
    row.locator("select[name=decision]").select_option("approve")
    row.locator("button").click()
    page.wait_for_url(re.compile(r"msg=reviewed"))
    row = page.locator("#pre-price-table tr", has_text="UI-INV-20191105")
    assert "已通过" in row.inner_text()
