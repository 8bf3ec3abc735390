"""Opinion over HTTP: the token-authenticated push API answering per item, reads for the CDC,
403 with an audit row for everyone else, and the pages (search, alert acknowledge, labelling,
training, report build and PDF download) through forms with CSRF."""

from __future__ import annotations

import random
import re
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fugong.core.models import AuditLog, User
from fugong.core.services import create_api_token
from fugong.opinion import services
from fugong.opinion.ingest import CST, RawItem
from fugong.opinion.models import OpinionAlert, OpinionLabel, OpinionModel, OpinionPost
from tests.api.conftest import csrf_of, login

KEY = b"k" * 32


def _token(session: Session, user: User) -> dict[str, str]:
    token, _ = create_api_token(session, user=user, name="crawler", actor=None)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(autouse=True)
def _author_key_in_tmp(client: TestClient, tmp_path: Path) -> None:
    # The push endpoint creates the author-hash key on first use; keep it out of the checkout.
    client.app.state.settings.opinion_author_key_file = tmp_path / "keys" / "author.key"  # type: ignore[attr-defined]


def test_push_answers_every_item_with_its_id(
    client: TestClient, session: Session, make: Any, tmp_path: Path
) -> None:
    cdc = make.user("cdc")
    headers = _token(session, cdc)
    batch = {
        "source": "微博",
        "items": [
            {
                "id": "w1",
                "time": "2020-03-02T08:00:00+08:00",
                "text": "口罩又断货了",
                "author": "@甲",
            },
            {"id": "w2", "time": "yesterday", "text": "正文"},
            {"id": "w3", "time": "2020-03-02 09:00", "text": "  "},
            {"id": "w4", "time": 1583110800, "text": "口罩又斷貨了！"},
            {"id": "w5", "time": "2020-03-02 10:00", "text": "复工第一天", "url": "javascript:x"},
        ],
    }
    r = client.post("/api/v1/opinion/push", json=batch, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    by_id = {i["id"]: i for i in body["items"]}
    assert by_id["w1"]["status"] == "accepted" and by_id["w1"]["post_id"]
    assert by_id["w4"]["status"] == "duplicate"  # same text once normalised
    assert by_id["w2"]["status"] == "error" and "time" in by_id["w2"]["error"]
    assert by_id["w3"]["status"] == "error" and "text" in by_id["w3"]["error"]
    assert by_id["w5"]["status"] == "error" and "url" in by_id["w5"]["error"]
    assert (body["accepted"], body["duplicate"], body["errors"]) == (1, 1, 3)
    again = client.post("/api/v1/opinion/push", json=batch, headers=headers).json()
    assert again["accepted"] == 0 and again["duplicate"] == 2
    post = session.scalar(select(OpinionPost).where(OpinionPost.external_id == "w1"))
    assert post is not None and post.author_hash and "甲" not in post.author_hash
    assert (tmp_path / "keys" / "author.key").stat().st_mode & 0o777 == 0o600
    too_many = {"source": "x", "items": [{"text": "a", "time": "2020-03-02"}] * 1001}
    assert client.post("/api/v1/opinion/push", json=too_many, headers=headers).status_code == 422


def test_push_and_reads_refused_for_other_roles_with_an_audit_row(
    client: TestClient, session: Session, make: Any
) -> None:
    official = make.user("official")
    headers = _token(session, official)
    r = client.post("/api/v1/opinion/push", json={"source": "x", "items": []}, headers=headers)
    assert r.status_code == 403
    assert client.get("/api/v1/opinion/alerts", headers=headers).status_code == 403
    assert client.get("/api/v1/opinion/alerts").status_code == 401
    denied = session.scalars(
        select(AuditLog.detail).where(
            AuditLog.action == "opinion.denied", AuditLog.actor_id == official.id
        )
    ).all()
    assert denied == ["POST /api/v1/opinion/push", "GET /api/v1/opinion/alerts"]


def _world(session: Session, cdc: User) -> OpinionAlert:
    """Two weeks of posts with a spike on the last day, analysed, alerts detected."""
    rng = random.Random(5)
    pool = "天地人和春夏秋冬山水风云日月星辰江河湖海花草树木东南西北"
    items = []
    start = date(2020, 2, 24)
    for d in range(14):
        for i in range(30 if d == 13 else 4):
            text = "".join(rng.choice(pool) for _ in range(12)) + ("口罩断货" if i % 2 else "复工")
            at = datetime.combine(start + timedelta(days=d), time(10, i), CST)
            items.append(RawItem(external_id=f"p{d}-{i}", posted_at=at, text=text))
    src = services.get_or_create_source(session, name="测试", kind="file")
    services.ingest_items(session, actor=cdc, source=src, items=items, key=KEY)
    services.analyse(session, actor=cdc)
    cfg = services.AlertConfig(ears=services.parse_ears(""))
    new = services.detect_alerts(
        session, actor=cdc, start=date(2020, 3, 8), end=date(2020, 3, 8), config=cfg
    )
    return next(a for a in new if a.subject == "口罩")


def test_cdc_pages_search_and_acknowledge(client: TestClient, session: Session, make: Any) -> None:
    cdc = make.user("cdc")
    alert = _world(session, cdc)
    login(client, cdc.username)
    for path in (
        "/opinion",
        "/opinion/topics",
        "/opinion/topics?period=week",
        "/opinion/alerts",
        "/opinion/label",
        "/opinion/models",
        "/opinion/sources",
        "/opinion/reports",
    ):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        assert "<style" not in r.text and " style=" not in r.text
    r = client.get("/opinion/posts", params={"q": "口罩断货"})
    assert "共 41 条" in r.text  # two a day for 13 days, then 15 on the spike day
    assert "<mark>口罩</mark>" in r.text or "<mark>口罩断货</mark>" in r.text
    page = client.get(f"/opinion/alerts/{alert.id}").text
    assert page.count('class="post ') == 15
    token = csrf_of(page)
    r = client.post(
        f"/opinion/alerts/{alert.id}/ack",
        data={"csrf_token": token, "annotation": "已通报市场监管局"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    session.refresh(alert)
    assert alert.status == "acknowledged" and alert.acknowledged_by_id == cdc.id
    assert "已通报市场监管局" in client.get(f"/opinion/alerts/{alert.id}").text
    r = client.post(f"/opinion/alerts/{alert.id}/ack", data={"annotation": "x"})
    assert r.status_code == 403  # no CSRF token
    api = client.get(f"/api/v1/opinion/alerts/{alert.id}").json()
    assert api["status"] == "acknowledged" and len(api["posts"]) == 15
    # A post behind the alert, in full: its model, its alert, and a 404 for no such post.
    post_id = api["posts"][0]["id"]
    r = client.get(f"/opinion/posts/{post_id}")
    assert r.status_code == 200 and " style=" not in r.text
    assert f'href="/opinion/alerts/{alert.id}"' in r.text and "全文" in r.text
    assert "模型 " in r.text and "未标注" in r.text
    assert client.get("/opinion/posts/999999").status_code == 404


def test_other_roles_get_403_on_pages_and_it_is_audited(
    client: TestClient, session: Session, make: Any
) -> None:
    official = make.user("official")
    login(client, official.username)
    assert client.get("/opinion").status_code == 403
    assert client.get("/opinion/reports/2020-W10.pdf").status_code == 403
    assert client.get("/opinion/posts/1").status_code == 403
    rows = session.scalars(
        select(AuditLog.detail).where(
            AuditLog.action == "opinion.denied", AuditLog.actor_id == official.id
        )
    ).all()
    assert rows == ["GET /opinion", "GET /opinion/reports/2020-W10.pdf", "GET /opinion/posts/1"]


def test_label_train_and_report_through_the_pages(
    client: TestClient, session: Session, make: Any
) -> None:
    from fugong.opinion.text import sample_labelled

    cdc = make.user("cdc")
    texts, labels = sample_labelled()
    src = services.get_or_create_source(session, name="标注", kind="file")
    items = [
        RawItem(f"s{i}", datetime(2020, 3, 2, 8, tzinfo=CST) + timedelta(minutes=i), t)
        for i, t in enumerate(texts[::5])
    ]
    services.ingest_items(session, actor=cdc, source=src, items=items, key=KEY)
    services.analyse(session, actor=cdc)
    login(client, cdc.username)
    truth = dict(zip(texts, labels, strict=True))
    labelled = 0
    page = client.get("/opinion/label").text
    while 'id="label-card"' in page and labelled < 200:
        post_id = int(re.search(r'data-post="(\d+)"', page).group(1))  # type: ignore[union-attr]
        post = session.get(OpinionPost, post_id)
        assert post is not None
        r = client.post(
            "/opinion/label",
            data={"csrf_token": csrf_of(page), "post_id": post_id, "label": truth[post.text]},
        )
        page = r.text
        labelled += 1
    assert labelled == len(session.scalars(select(OpinionLabel.post_id)).all()) > 20
    r = client.post("/opinion/models/train", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 200 and "模型已训练" in r.text
    model = session.scalar(select(OpinionModel))
    assert model is not None and model.n_train == labelled
    r = client.post(f"/opinion/models/{model.id}/activate", data={"csrf_token": csrf_of(r.text)})
    session.refresh(model)
    assert model.active
    r = client.post("/opinion/models/evaluate", data={"csrf_token": csrf_of(r.text)})
    assert model.version in r.text and "lexicon-v1" in r.text

    r = client.post("/opinion/reports", data={"csrf_token": csrf_of(r.text), "week": "2020-W99"})
    assert r.status_code == 422 and "不是存在的 ISO 周" in r.text
    r = client.post("/opinion/reports", data={"csrf_token": csrf_of(r.text), "week": "2020-W10"})
    assert r.status_code == 200 and "每周舆情分析报告" in r.text and "下载 PDF" in r.text
    pdf = client.get("/opinion/reports/2020-W10.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert client.get("/opinion/reports/2020-W11.pdf").status_code == 404
