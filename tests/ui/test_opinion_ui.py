"""Browser test of public-opinion monitoring on a phone-sized screen: a CDC analyst opens the
mask-shortage alert of 2020-03-05, reads the posts behind it, acknowledges it with a note and
downloads the week's PDF report; labelling works from the keyboard; other roles are refused."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import login

pytestmark = pytest.mark.ui


def test_analyst_handles_an_alert_and_downloads_the_weekly_pdf(page: Any) -> None:
    login(page, "cdc")
    page.goto("/opinion")
    assert page.locator("#kpi-alerts").inner_text() != "0"
    page.click("a:has-text('预警')")
    row = page.locator("#alerts-table tr", has_text="2020-03-05").filter(
        has=page.get_by_role("link", name="口罩", exact=True)
    )
    row.get_by_role("link", name="口罩", exact=True).click()
    page.wait_for_url(re.compile(r"/opinion/alerts/\d+$"))
    posts = page.locator("#alert-posts li.post")
    assert posts.count() >= 10
    assert all("口罩" in t for t in posts.all_inner_texts())
    page.fill("#ack-form textarea[name=annotation]", "已协调药店补货并发布购买指引")
    page.click("#ack-form button[type=submit]")
    page.wait_for_url(re.compile(r"msg=acked"))
    assert "已处理" in page.locator("#alert-status").inner_text()
    assert "已协调药店补货" in page.locator("#alert-annotation").inner_text()

    page.goto("/opinion/reports")
    row = page.locator("#reports-table tr", has_text="2020-W10")
    with page.expect_download() as info:
        row.get_by_role("link", name="PDF").click()
    download = info.value
    assert download.suggested_filename == "opinion-2020-W10.pdf"
    data = Path(download.path()).read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 10_000


def test_labelling_from_the_keyboard(page: Any) -> None:
    login(page, "cdc")
    page.goto("/opinion/label")
    first = page.locator("#label-card").get_attribute("data-post")
    page.keyboard.press("3")
    page.wait_for_url(re.compile(r"msg=labelled"))
    second = page.locator("#label-card").get_attribute("data-post")
    assert first and second and int(second) > int(first)
    page.keyboard.press("s")
    page.wait_for_function(f"document.querySelector('#label-card').dataset.post !== '{second}'")


def test_other_roles_are_refused(page: Any) -> None:
    login(page, "official")
    response = page.goto("/opinion/alerts")
    assert response.status == 403
