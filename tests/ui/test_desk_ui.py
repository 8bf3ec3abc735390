"""Browser test of the desk: a manager surveys a portfolio of 42 enterprises (the article's
number) on a phone-sized screen, fills several, marks one not reached, raises an urgent
supplies need from an answer and turns it into a supplies request; the progress board and the
overdue flag follow."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest

from tests.ui import conftest
from tests.ui.conftest import login

pytestmark = pytest.mark.ui


def board_counts(page: Any) -> dict[str, int]:
    row = page.locator("#progress-board tr.total")
    return {
        k: int(row.locator(f"td[data-k={k}]").inner_text()) for k in ("done", "not_reached", "todo")
    }


def test_manager_runs_a_campaign_over_42_enterprises(page: Any) -> None:
    login(page, "caller42")
    page.goto("/desk/campaigns")
    page.fill("input[name=title]", "疫情影响摸查（4天）")
    page.fill("input[name=deadline]", (date.today() + timedelta(days=4)).isoformat())
    page.select_option("select[name=portfolio]", "caller42")
    page.click("form[action='/desk/campaigns'] button[type=submit]")
    page.wait_for_url(re.compile(r"/desk/campaigns/\d+"))
    assert board_counts(page) == {"done": 0, "not_reached": 0, "todo": 42}

    page.click("#start-calling")
    # First enterprise: back at work, urgently short of masks -> an urgent supplies need.
    page.check("input[name=resumption_status][value=partial]")
    page.fill("input[name=staff_back_pct]", "60")
    page.fill("input[name=mask_days]", "2")
    page.check("input[name=help_needed][value=supplies]")
    page.check("input[name=help_urgency][value=urgent]")
    page.fill("textarea[name=help_detail]", "口罩只够两天，急需 KN95 口罩 2000 个")
    page.click("button[value=submit]")
    page.wait_for_url(re.compile(r"msg=submitted"))
    # Second: fully resumed. Third: a required answer missing -> the error, nothing lost.
    page.check("input[name=resumption_status][value=full]")
    page.click("button[value=submit]")
    page.wait_for_url(re.compile(r"msg=submitted"))
    page.fill("input[name=cash_months]", "3")
    page.click("button[value=submit]")
    assert page.locator(".field-error[data-field=resumption_status]").inner_text() == "必填"
    assert page.input_value("input[name=cash_months]") == "3"
    page.check("input[name=resumption_status][value=approved]")
    page.fill("input[name=resumption_date]", "2020-02-24")
    page.click("button[value=submit]")
    page.wait_for_url(re.compile(r"msg=submitted"))
    # Fourth: nobody answers the phone.
    page.click("details summary")
    page.fill("#not-reached-form input[name=reason]", "电话无人接听，微信未回复")
    page.click("#not-reached-form button[type=submit]")
    page.wait_for_url(re.compile(r"msg=not_reached"))

    page.goto("/desk/campaigns")
    page.click("text=疫情影响摸查（4天）")
    assert board_counts(page) == {"done": 3, "not_reached": 1, "todo": 38}

    # The urgent supplies need is on the manager's desk with its deadline.
    page.goto("/desk")
    row = page.locator("#needs-table tbody tr", has_text="防疫物资")
    assert row.count() == 1 and "紧急" in row.inner_text()
    assert page.inner_text("#overdue-kpi b") == "0"
    row.locator("a").first.click()
    assert "急需 KN95" in page.inner_text("main")
    page.select_option("select[name=to]", "acknowledged")
    page.click("form[action$='/status'] button[type=submit]")
    page.wait_for_url(re.compile(r"msg=status"))
    assert page.inner_text("#need-status").startswith("已受理")
    # Illegal jump back is not even offered.
    assert "new" not in page.locator("select[name=to] option").all_inner_texts()
    need_url = page.url.split("?")[0]

    # One step from the need to a supplies request, prefilled from the answer.
    page.click("#to-supplies")
    page.wait_for_url(re.compile(r"/supplies/requests/new\?"))
    assert "急需 KN95" in page.input_value("[name=purpose]")
    page.select_option("select[name=item]", "mask_kn95")
    page.fill("input[name=quantity]", "2000")
    page.fill("input[name=needed_by]", (date.today() + timedelta(days=2)).isoformat())
    page.click("form[action='/supplies/requests/new'] button[type=submit]")
    page.wait_for_url(re.compile(r"/supplies/requests/\d+"))
    request_id = re.search(r"/supplies/requests/(\d+)", page.url).group(1)
    page.goto(need_url)
    assert page.inner_text("#need-status").startswith("处理中")
    assert f"物资申请 #{request_id}" in page.inner_text("main")


def test_overdue_flag_on_the_desk(page: Any) -> None:
    from sqlalchemy import select, update

    from fugong.db import make_engine
    from fugong.desk.models import Need

    login(page, "caller42")
    page.goto("/desk/needs/new?organisation_id=" + _first_enterprise(page))
    page.select_option("select[name=need_type]", "network")
    page.select_option("select[name=urgency]", "urgent")
    page.fill("textarea[name=description]", "远程办公 VPN 需要扩容")
    page.click("form.grid-form button[type=submit]")
    page.wait_for_url(re.compile(r"/desk/needs/(\d+)"))
    need_id = int(re.search(r"/desk/needs/(\d+)", page.url).group(1))
    # Let the acknowledgement deadline pass (as five hours would), in the server's database.
    engine = make_engine(conftest.LIVE_DB_URL)
    with engine.begin() as conn:
        ack = conn.execute(select(Need.ack_due).where(Need.id == need_id)).scalar_one()
        conn.execute(
            update(Need)
            .where(Need.id == need_id)
            .values(ack_due=ack - timedelta(hours=5), created_at=ack - timedelta(hours=9))
        )
    engine.dispose()
    page.goto("/desk")
    assert int(page.inner_text("#overdue-kpi b")) >= 1
    flagged = page.locator("#needs-table tr.overdue", has_text="网络")
    assert flagged.count() == 1 and "受理逾期" in flagged.inner_text()


def _first_enterprise(page: Any) -> str:
    page.goto("/enterprises")
    href = page.locator("#enterprise-table tbody a").first.get_attribute("href")
    return href.rsplit("/", 1)[1]
