"""Browser tests of the enterprise registry, on a phone-sized screen."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from fugong.core.demo import enterprise_rows
from tests.ui.conftest import login

pytestmark = pytest.mark.ui


def test_login_and_filter_list(page: Any) -> None:
    login(page, "official")
    assert page.url.endswith("/dashboard")
    assert page.locator("svg.chart").count() >= 2
    page.goto("/enterprises")
    total = int(re.search(r"共 (\d+) 家", page.inner_text("#result-count")).group(1))
    assert total == 120
    page.select_option("select[name=resumption_status]", "full")
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r"resumption_status=full"))
    filtered = int(re.search(r"共 (\d+) 家", page.inner_text("#result-count")).group(1))
    assert 0 < filtered < total
    statuses = page.locator("#enterprise-table tbody .status").all_inner_texts()
    assert statuses and set(statuses) == {"全面复工"}


def test_wrong_password_is_refused(page: Any) -> None:
    login(page, "official", "not-the-password")
    assert "用户名或密码错误" in page.inner_text("main")


def test_create_with_wrong_uscc_shows_the_error(page: Any) -> None:
    login(page, "official")
    page.goto("/enterprises/new")
    row = enterprise_rows(1, seed=8080)[0]
    wrong = row["uscc"][:17] + ("0" if row["uscc"][17] != "0" else "1")
    page.fill("input[name=uscc]", wrong.lower())  # typed in lower case: upper-cased as typed
    page.fill("input[name=name]", "广州浏览器测试科技有限公司")
    page.select_option("select[name=street]", "大沙街道")
    page.click("form.grid-form button[type=submit]")
    err = page.locator(".field-error[data-field=uscc]")
    assert "校验码错误" in err.inner_text()
    assert page.input_value("input[name=name]") == "广州浏览器测试科技有限公司"  # nothing lost
    page.fill("input[name=uscc]", row["uscc"])
    page.click("form.grid-form button[type=submit]")
    page.wait_for_url(re.compile(r"/enterprises/\d+\?msg=created"))
    assert "广州浏览器测试科技有限公司" in page.inner_text("h1")


def test_import_with_bad_row_shows_report(page: Any, tmp_path: Path) -> None:
    login(page, "admin")
    rows = enterprise_rows(3, seed=9090)
    lines = ["uscc,name,district,street,industry,size,headcount,resumption_status"]
    for i, r in enumerate(rows):
        size = "巨型" if i == 1 else r["size"]
        lines.append(
            f"{r['uscc']},{r['name']},黄埔区,大沙街道,{r['industry']},{size},"
            f"{r['headcount']},not_resumed"
        )
    f = tmp_path / "bad.csv"
    f.write_text("\n".join(lines), encoding="utf-8")
    page.goto("/enterprises/import")
    page.set_input_files("input[type=file]", str(f))
    page.click("form[data-progress] button[type=submit]")
    report = page.locator("#import-report")
    text = report.inner_text()
    assert "未导入" in text and "“巨型”不是有效的企业规模" in text
    assert re.search(r"\b3\b", report.locator("td").first.inner_text())  # row 3 of the file
    page.goto(f"/enterprises?q={rows[0]['uscc']}")
    assert "共 0 家企业" in page.inner_text("#result-count")


def test_enterprise_user_sees_only_itself(page: Any) -> None:
    login(page, "enterprise")
    assert re.search(r"/enterprises/\d+$", page.url)
    own = int(page.url.rsplit("/", 1)[1])
    page.goto(f"/enterprises/{own + 1}")
    assert "404" in page.inner_text("h1")
