"""CDC tracing pages on a small ingested city: role, case reference, audit, pseudonyms only,
CSV export, and the aggregate view that hides groups under 15."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fugong.core.models import AuditLog
from fugong.settings import Settings
from fugong.tracing.build import build
from fugong.tracing.ingest import ingest, pseudonymise
from fugong.web.app import create_app
from tests.api.conftest import login

CASE_PHONE = "13800138000"
COMPANION_PHONE = "13900139000"
DAY = "2026-11-20"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tracing")
    data, key_file = root / "data", root / "keys" / "tracing.key"
    (data / "records").mkdir(parents=True)
    key_file.parent.mkdir()
    key_file.write_text(secrets.token_hex(32))
    # Cells 1 and 2 lie in one 800 m grid in the centre; cell 3 is kilometres away; cell 4 is in
    # Foshan, where the case goes after the hour the aggregate test looks at.
    pq.write_table(
        pa.table(
            {
                "cell_id": pa.array([1, 2, 3, 4], pa.int64()),
                "lon": [113.3000, 113.3010, 113.4500, 113.1200],
                "lat": [23.1200, 23.1205, 23.0500, 23.0200],
                "city": ["广州", "广州", "广州", "佛山"],
            }
        ),
        data / "cells.parquet",
    )
    lines = ["phone,time,cell"]
    # The case and a companion together for 40 minutes; 15 others pass through the same grid
    # in that hour (17 people there), 3 people in the far grid (a group under 15: hidden).
    for m in range(0, 41, 10):
        lines.append(f"{CASE_PHONE},{DAY}T10:{m:02d}:00Z,1")
        lines.append(f"{COMPANION_PHONE},{DAY}T10:{m:02d}:00Z,2")
    for i in range(15):
        lines.append(f"1370000{i:04d},{DAY}T10:{i * 3:02d}:00Z,{1 + i % 2}")
    for i in range(3):
        lines.append(f"1360000{i:04d},{DAY}T10:05:00Z,3")
    lines.append(f"{CASE_PHONE},{DAY}T11:00:00Z,4")
    lines.append("not-a-phone,2026-11-20T10:00:00Z,1")
    raw = root / "raw.csv"
    raw.write_text("\n".join(lines))
    report = ingest(raw, data, key_file)
    assert report.rows == len(lines) - 1
    build(data)
    return data, key_file


@pytest.fixture
def tracing_app(session_factory: sessionmaker[Session], city: tuple[Path, Path]) -> FastAPI:
    data, key_file = city
    settings = Settings(
        secret_key="t" * 40,
        database_url="sqlite://",
        tracing_data_dir=data,
        tracing_key_file=key_file,
    )
    return create_app(settings, session_factory=session_factory)


@pytest.fixture
def tc(tracing_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(tracing_app) as c:
        yield c


def form(csrf: str, **kw: str) -> dict[str, str]:
    return {
        "csrf_token": csrf,
        "case_ref": "GZ-2026-0128",
        "subject": CASE_PHONE,
        "kind": "companions",
        "at": f"{DAY}T12:00",
        "days": "14",
        "min_overlap": "600",
    } | kw


def test_non_cdc_users_are_refused_and_audited(tc: TestClient, session: Session, make) -> None:
    official = make.user("official")
    login(tc, official.username)
    assert tc.get("/tracing").status_code == 403
    denied = session.scalars(select(AuditLog).where(AuditLog.action == "tracing.denied")).all()
    assert len(denied) == 1 and denied[0].actor_id == official.id
    assert tc.get("/tracing/aggregate").status_code == 403


def test_companion_query_by_phone_is_audited_with_case_and_count(
    tc: TestClient, session: Session, make, city: tuple[Path, Path]
) -> None:
    _, key_file = city
    key = key_file.read_bytes().strip()
    analyst = make.user("cdc", org=make.org(kind="institution", district=None))
    csrf = login(tc, analyst.username)
    r = tc.post("/tracing", data=form(csrf))
    assert r.status_code == 200, r.text
    companion = pseudonymise(COMPANION_PHONE, key)
    assert companion[:12] in r.text
    assert CASE_PHONE not in r.text and COMPANION_PHONE not in r.text  # pseudonyms only
    entry = session.scalar(select(AuditLog).where(AuditLog.action == "tracing.query"))
    assert entry is not None and entry.target_id == "GZ-2026-0128"
    assert entry.actor_id == analyst.id
    assert entry.after is not None and entry.after["count"] >= 1
    assert CASE_PHONE not in str(entry.after) and CASE_PHONE not in (entry.detail or "")
    # The trajectory of the same case, by pseudonym, with its plot.
    r = tc.post(
        "/tracing", data=form(csrf, kind="trajectory", subject=pseudonymise(CASE_PHONE, key))
    )
    assert r.status_code == 200 and "<svg" in r.text and "轨迹网格图" in r.text
    csv = tc.post("/tracing/export", data=form(csrf))
    assert csv.status_code == 200 and companion in csv.text
    assert session.scalars(select(AuditLog).where(AuditLog.action == "tracing.query")).all()[-1]


def test_trajectory_table_and_export_name_each_stays_city(
    tc: TestClient, make, city: tuple[Path, Path]
) -> None:
    _, key_file = city
    case = pseudonymise(CASE_PHONE, key_file.read_bytes().strip())
    csrf = login(tc, make.user("cdc", org=make.org(kind="institution", district=None)).username)
    r = tc.post("/tracing", data=form(csrf, kind="trajectory", subject=case))
    assert r.status_code == 200, r.text
    table = r.text.split('id="result-table"')[1].split("</table>")[0]
    assert "<th>网格</th><th>城市</th><th>开始 (UTC)</th>" in table
    cities = [row.split("<td>")[2].split("</td>")[0] for row in table.split("<tr>")[2:]]
    assert cities == ["广州", "佛山"]  # 10:00-11:00 in Guangzhou, then Foshan until 12:00
    export = tc.post("/tracing/export", data=form(csrf, kind="trajectory", subject=case))
    assert export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(export.text.lstrip("\ufeff"))))
    assert [(r["city"], r["duration_s"]) for r in rows] == [("广州", "3600"), ("佛山", "3600")]


def test_case_reference_is_mandatory(tc: TestClient, make) -> None:
    csrf = login(tc, make.user("cdc").username)
    r = tc.post("/tracing", data=form(csrf, case_ref=""))
    assert r.status_code == 422 and "病例编号" in r.text
    r = tc.post("/tracing", data=form(csrf, subject="12345"))
    assert r.status_code == 422 and "手机号" in r.text
    assert "12345" not in r.text.split("手机号或假名")[1][:200]  # the typed subject is not echoed


def test_aggregate_hides_groups_under_15(tc: TestClient, make) -> None:
    login(tc, make.user("cdc").username)
    r = tc.get("/tracing/aggregate", params={"hour": f"{DAY}T10:00"})
    assert r.status_code == 200
    assert "<td>17</td>" in r.text
    assert "另有 1 个网格人数不足 15 人，已隐藏" in r.text
