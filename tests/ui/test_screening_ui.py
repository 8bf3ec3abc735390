"""Browser test of the thermal screening gate on a phone-sized screen: the school's operator
registers a camera, a fever reading arrives over HTTP, the alarm shows on the open site page
without a reload (server-sent events), the operator records the re-check and closes it, and the
day's statistics change. The alarm must reach the open page within a second of the push
(measured, with a stated margin for a loaded CI machine)."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.ui.conftest import login

pytestmark = pytest.mark.ui

#: "Alarm within a second": from the start of the camera's push to the alarm row on the
#: operator's open page. The live feed polls every 0.3 s, so a second leaves room for the push
#: and the render; the margin absorbs a shared, loaded CI runner.
ALARM_BUDGET_S = 1.0
CI_MARGIN_S = 0.5

#: Stamps (browser wall clock, ms) the moment a row with the fever's temperature is added.
WATCH_ALARM_ROW = """(temp) => {
  window.__alarmRowAt = null;
  const rows = document.getElementById("alarm-rows");
  new MutationObserver((_, observer) => {
    if (Array.from(rows.querySelectorAll("tr")).some((r) => r.textContent.includes(temp))) {
      window.__alarmRowAt = Date.now();
      observer.disconnect();
    }
  }).observe(rows, { childList: true, subtree: true });
}"""


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
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

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

    # A fever reading arrives from the camera. Both clocks are this machine's wall clock: the
    # browser stamps the row when it is inserted, this process stamps the push's start.
    page.evaluate(WATCH_ALARM_ROW, "38.6 °C")
    pushed_at = time.time()
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
    # Wait longer than the budget, so a slow alarm fails below with its measured figure.
    try:
        row.wait_for(timeout=10_000)
    except PlaywrightTimeout:
        pytest.fail(f"no alarm row on the live page {time.time() - pushed_at:.1f} s after the push")
    latency = (page.evaluate("window.__alarmRowAt") / 1000) - pushed_at
    limit = ALARM_BUDGET_S + CI_MARGIN_S
    assert latency < limit, (
        f"alarm row appeared {latency:.3f} s after the push: over the {ALARM_BUDGET_S:g} s "
        f"promise plus {CI_MARGIN_S:g} s CI margin ({limit:g} s)"
    )
    print(f"push → alarm row on the live page: {latency:.3f} s (limit {limit:g} s)")
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
