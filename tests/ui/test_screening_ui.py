"""Browser test of the thermal screening gate on a phone-sized screen: the school's operator
registers a camera, a fever reading arrives over HTTP, the alarm shows on the open site page
without a reload (server-sent events), the operator records the re-check and closes it, and the
day's statistics change."""

from __future__ import annotations

import json
import re
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.ui.conftest import login

pytestmark = pytest.mark.ui


def push(base: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(  # noqa: S310 - our own live server over http://127.0.0.1
        f"{base}/api/v1/screening/readings",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
        result: dict[str, Any] = json.loads(resp.read())
        return result


def kpi(page: Any, name: str) -> str:
    return str(page.locator(f"#kpi-{name}").inner_text()).strip()


def test_fever_alarm_live_recheck_close_and_statistics(page: Any, live_server: str) -> None:
    login(page, "site")
    page.goto("/screening")
    page.click("text=示范小学正门测温通道")
    page.wait_for_url(re.compile(r"/screening/sites/\d+$"))
    site_url = page.url

    # Register a camera; its token is shown once.
    page.fill("#device-form input[name=code]", "ui-cam")
    page.fill("#device-form input[name=name]", "侧门热成像仪")
    page.click("#add-device")
    token = page.locator("#new-token").inner_text().strip()
    assert token.startswith("fgd_")
    assert page.locator("#new-topic").inner_text().endswith("/ui-cam/readings")
    page.click("#back-to-site")
    page.wait_for_url(site_url)

    alarms, cleared = int(kpi(page, "alarms")), int(kpi(page, "cleared"))
    page.evaluate("window.__noReload = true")
    page.wait_for_function("document.querySelector('[data-live-label]').textContent === '（实时）'")

    # A fever reading arrives from the camera.
    result = push(
        live_server,
        token,
        {
            "device": "ui-cam",
            "event_id": "ui-fever-1",
            "time": datetime.now(UTC).isoformat(),
            "temperature": 38.6,
            "mask": True,
        },
    )
    assert result["alarms"] == 1
    row = page.locator("#alarm-rows tr", has_text="38.6 °C")
    row.wait_for(timeout=5000)  # well within a second in practice; the SSE polls every 0.3 s
    assert page.evaluate("window.__noReload") is True
    assert page.locator("#live-banner").is_visible()
    assert int(kpi(page, "alarms")) == alarms + 1

    # The operator re-checks with a clinical thermometer: 36.7 °C, a false alarm; then closes.
    row.locator("a").click()
    page.wait_for_url(re.compile(r"/screening/alarms/\d+$"))
    assert page.locator("#alarm-status").inner_text() == "待复核"
    page.fill("#recheck-form input[name=recheck_c]", "36.7")
    page.click("#recheck-submit")
    page.wait_for_url(re.compile(r"msg=rechecked"))
    assert page.locator("#alarm-status").inner_text() == "复核正常"
    page.click("#close-submit")
    page.wait_for_url(re.compile(r"/screening/sites/\d+\?msg=closed"))

    # The day's statistics changed.
    assert int(kpi(page, "alarms")) == alarms + 1
    assert int(kpi(page, "cleared")) == cleared + 1
    assert kpi(page, "recheck") != "—"
    row = page.locator("#alarm-rows tr", has_text="38.6 °C")
    assert "已关闭" in row.inner_text()
    page.goto("/screening/stats")
    assert page.locator("#stats-table").get_by_text("示范小学正门测温通道").count() >= 1
