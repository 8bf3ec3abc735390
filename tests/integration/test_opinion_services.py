"""Opinion services on both databases: ingest with per-line errors, keyed author hashes,
near-duplicate grouping, the spike rule on constructed series, rumours, acknowledging with audit
and notifications, train/evaluate round trip, the versioned model on every score, full-text
search, a malformed feed served over HTTP, and the weekly report's PDF text."""

from __future__ import annotations

import io
import random
import threading
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fugong.core.models import AuditLog, Notification, User
from fugong.errors import Conflict, PermissionDenied, ValidationFailed
from fugong.opinion import queries, services
from fugong.opinion.ingest import CST, RawItem, parse_csv
from fugong.opinion.models import OpinionAlert, OpinionModel, OpinionPost
from fugong.opinion.report import HEADINGS

KEY = b"k" * 32
_POOL = "天地人和春夏秋冬山水风云日月星辰江河湖海花草树木东南西北前后左右上下里外大小多少长短高低"


def _item(n: int, day: date, text: str, **kw: Any) -> RawItem:
    at = datetime.combine(day, time(9 + n % 10, n % 60), CST)
    return RawItem(external_id=f"t-{n}", posted_at=at, text=text, **kw)


def _unique_text(rng: random.Random, keyword: str = "") -> str:
    # Random characters share few bigrams, so constructed posts are never near-duplicates.
    return "".join(rng.choice(_POOL) for _ in range(14)) + keyword


@pytest.fixture
def cdc(make: Any) -> User:
    return make.user("cdc")


def _ingest(session: Session, actor: User | None, items: list[RawItem]) -> services.IngestReport:
    src = services.get_or_create_source(session, name="测试源", kind="file")
    return services.ingest_items(session, actor=actor, source=src, items=items, key=KEY)


def test_csv_ingest_reports_each_bad_line_and_stores_the_rest(session: Session, cdc: User) -> None:
    data = (
        "id,time,text,author,url\n"
        "a1,2020-03-02 08:00,核酸檢測排隊很長,@Alice,https://x.example/1\n"
        "a2,not-a-time,正文,,\n"
        "a3,2020-03-02 09:00,,bob,\n"
        "a4,2020-03-02 10:00,口罩到货了,bob,ftp://bad\n"
        "a5,2020-03-02 11:00,口罩到货了,bob\n"
        "a6,2020-03-03 11:00,复工第一天,Bob,\n"
    )
    parsed = parse_csv(data)
    assert [(e.where, e.field) for e in parsed.errors] == [
        ("第3行", "time"),
        ("第4行", "text"),
        ("第5行", "url"),
        ("第6行", "(列数)"),
    ]
    src = services.get_or_create_source(session, name="上传", kind="file")
    report = services.ingest_items(
        session, actor=cdc, source=src, items=parsed.items, key=KEY, errors=parsed.errors
    )
    assert report.count("accepted") == 2 and report.count("error") == 4
    post = session.scalar(select(OpinionPost).where(OpinionPost.external_id == "a1"))
    assert post is not None
    assert post.text_norm == "核酸检测排队很长"  # Traditional → Simplified
    assert "核酸检测" in post.tokens.split()
    # The handle is only kept as a keyed hash, equal for the same person however written.
    assert post.author_hash and len(post.author_hash) == 64 and "alice" not in post.author_hash
    bob = session.scalar(select(OpinionPost).where(OpinionPost.external_id == "a6"))
    assert bob is not None and bob.author_hash != post.author_hash
    again = services.ingest_items(session, actor=cdc, source=src, items=parsed.items, key=KEY)
    assert again.count("duplicate") == 2 and again.count("accepted") == 0
    audit_rows = session.scalars(select(AuditLog).where(AuditLog.action == "opinion.ingest")).all()
    assert audit_rows[-2].after == {"accepted": 2, "duplicate": 0, "errors": 4}


def test_reposts_with_small_edits_are_grouped_and_counted_once(session: Session, cdc: User) -> None:
    day = date(2020, 3, 2)
    original = "听说喝板蓝根可以预防新冠病毒，大家赶快去药店买，晚了就没有了"
    items = [
        _item(1, day, original),
        _item(2, day, "转发：" + original + "！！"),
        _item(3, day, original.replace("赶快", "赶紧") + " @路人甲"),
        _item(4, day, "聽說喝板藍根可以預防新冠病毒，大家趕快去藥店買，晚了就沒有了"),
        _item(5, day, "今天园区复工，食堂实行分餐，员工都很配合"),
    ]
    report = _ingest(session, cdc, items)
    # A repost marker plus punctuation, or Traditional script, leaves the same compact text:
    # an exact duplicate, and the answer says so; the edited repost is only near.
    assert [o.status for o in report.outcomes] == [
        "accepted",
        "duplicate",
        "accepted",
        "duplicate",
        "accepted",
    ]
    result = services.analyse(session, actor=cdc)
    assert result.analysed == 5 and result.groups == 1 and result.duplicates == 3
    posts = {p.external_id: p for p in session.scalars(select(OpinionPost))}
    group = {posts[f"t-{i}"].dup_group_id for i in (1, 2, 3, 4)}
    assert len(group) == 1 and None not in group
    assert posts["t-5"].dup_group_id is None
    assert [p.is_duplicate for p in (posts["t-1"], posts["t-2"], posts["t-5"])] == [
        False,
        True,
        False,
    ]
    counted = services.counted_posts(session, day, day)
    assert sorted(p.id for p in counted) == sorted([posts["t-1"].id, posts["t-5"].id])


def _series(session: Session, cdc: User, per_day: list[int], keyword: str) -> date:
    rng = random.Random(7)
    start = date(2020, 2, 10)
    items, n = [], 0
    for d, count in enumerate(per_day):
        for _ in range(count):
            items.append(_item(n, start + timedelta(days=d), _unique_text(rng, keyword)))
            n += 1
    _ingest(session, cdc, items)
    services.analyse(session, actor=cdc)
    return start + timedelta(days=len(per_day) - 1)


def _config() -> services.AlertConfig:
    return services.AlertConfig(ears=services.parse_ears("C1=3,C2=3,C3=2,min_count=3"))


def test_a_spike_against_the_seven_day_baseline_raises_a_volume_alert(
    session: Session, cdc: User
) -> None:
    last = _series(session, cdc, [5, 6, 5, 4, 6, 5, 5, 6, 5, 5, 30], "口罩")
    new = services.detect_alerts(session, actor=cdc, start=last, end=last, config=_config())
    volume = {a.subject: a for a in new if a.kind == "volume"}
    assert {"全部", "口罩"} <= set(volume)
    spike = volume["口罩"]
    assert spike.day == last and spike.method == "C1" and spike.statistic > 3
    _, posts = queries.get_alert(session, actor=cdc, alert_id=spike.id)
    assert len(posts) == 30 and all("口罩" in p.text_norm for p in posts)
    # Every CDC analyst is told, in the app (the outbound copy follows the commit).
    links = session.scalars(select(Notification.link).where(Notification.user_id == cdc.id)).all()
    assert f"/opinion/alerts/{spike.id}" in links and len(links) == len(new)
    # Running the rules again raises nothing new.
    assert services.detect_alerts(session, actor=cdc, start=last, end=last, config=_config()) == []


def test_a_flat_series_raises_nothing(session: Session, cdc: User) -> None:
    last = _series(session, cdc, [5, 6, 5, 4, 6, 5, 5, 6, 5, 5, 6], "口罩")
    start = last - timedelta(days=3)
    assert services.detect_alerts(session, actor=cdc, start=start, end=last, config=_config()) == []


def test_thresholds_are_configurable(session: Session, cdc: User) -> None:
    last = _series(session, cdc, [5, 6, 5, 4, 6, 5, 5, 6, 5, 5, 12], "口罩")
    strict = services.AlertConfig(ears=services.parse_ears("C1=50,C2=50,C3=50"))
    assert services.detect_alerts(session, actor=cdc, start=last, end=last, config=strict) == []
    assert services.detect_alerts(session, actor=cdc, start=last, end=last, config=_config())
    with pytest.raises(ValidationFailed):
        services.parse_ears("C9=1")


def test_rumour_watch_list_alert_is_acknowledged_with_audit(session: Session, cdc: User) -> None:
    day = date(2020, 3, 4)
    rng = random.Random(3)
    _ingest(
        session,
        cdc,
        [_item(0, day, "有人说自来水里有病毒，千万别喝"), _item(1, day, _unique_text(rng))],
    )
    services.analyse(session, actor=cdc)
    services.add_watch_phrase(session, actor=cdc, phrase="自来水*病毒")
    with pytest.raises(Conflict):
        services.add_watch_phrase(session, actor=cdc, phrase="自来水*病毒")
    (alert,) = services.detect_alerts(session, actor=cdc, start=day, end=day, config=_config())
    assert alert.kind == "rumour" and alert.subject == "自来水*病毒"
    services.acknowledge_alert(session, actor=cdc, alert_id=alert.id, annotation="已发布辟谣")
    assert alert.status == "acknowledged" and alert.acknowledged_by_id == cdc.id
    assert alert.annotation == "已发布辟谣"
    with pytest.raises(Conflict):
        services.acknowledge_alert(session, actor=cdc, alert_id=alert.id)
    services.annotate_alert(session, actor=cdc, alert_id=alert.id, annotation="辟谣阅读量 3 万")
    actions = session.scalars(
        select(AuditLog.action).where(AuditLog.target_type == "opinion_alert")
    ).all()
    assert actions == ["opinion.alert", "opinion.alert_ack", "opinion.alert_annotate"]


def test_other_roles_are_refused_and_the_attempt_is_audited(session: Session, make: Any) -> None:
    official = make.user("official")
    with pytest.raises(PermissionDenied):
        queries.list_alerts(session, actor=official)
    with pytest.raises(PermissionDenied):
        services.label_post(session, actor=official, post_id=1, label="negative")
    denied = session.scalars(
        select(AuditLog).where(
            AuditLog.action == "opinion.denied", AuditLog.actor_id == official.id
        )
    ).all()
    assert len(denied) == 2


def test_train_evaluate_round_trip_beats_the_lexicon_and_scores_record_the_model(
    session: Session, cdc: User
) -> None:
    from fugong.opinion.text import sample_labelled

    texts, labels = sample_labelled()
    assert len(texts) >= 300
    row = services.train_model(session, actor=cdc, texts=texts, labels=labels, activate=True)
    held, lexicon = row.metrics["held_out"], row.metrics["lexicon"]
    assert held["macro_f1"] > lexicon["macro_f1"] and held["accuracy"] > lexicon["accuracy"]
    ev, lex = services.evaluate_model(session, actor=cdc, texts=texts, labels=labels)
    assert ev.model == row.version and lex.model == "lexicon-v1"
    # Same data, same version: training again stores nothing new.
    again = services.train_model(session, actor=cdc, texts=texts, labels=labels)
    assert again.id == row.id
    assert session.scalar(select(func.count()).select_from(OpinionModel)) == 1

    _ingest(session, cdc, [_item(0, date(2020, 3, 2), "排队三个小时还没做上核酸，太乱了")])
    services.analyse(session, actor=cdc)
    post = session.scalar(select(OpinionPost))
    assert post is not None and post.sentiment_model == row.version
    assert post.sentiment == "negative"

    services.deactivate_models(session, actor=cdc)
    services.analyse(session, actor=cdc, since=datetime(2020, 1, 1, tzinfo=CST))
    session.refresh(post)
    assert post.sentiment_model == "lexicon-v1"


def test_training_needs_all_three_classes(session: Session, cdc: User) -> None:
    with pytest.raises(ValidationFailed) as exc:
        services.train_model(
            session,
            actor=cdc,
            texts=["好"] * 8 + ["差"] * 8,
            labels=["positive"] * 8 + ["negative"] * 8,
        )
    assert "中性" in exc.value.errors[0].message


def test_labels_feed_training(session: Session, cdc: User) -> None:
    from fugong.opinion.text import sample_labelled

    texts, labels = sample_labelled()
    day = date(2020, 3, 2)
    _ingest(session, cdc, [_item(i, day, t) for i, t in enumerate(texts[::6])])
    services.analyse(session, actor=cdc)
    by_text = dict(zip(texts, labels, strict=True))
    for post in session.scalars(select(OpinionPost).where(OpinionPost.is_duplicate.is_(False))):
        services.label_post(session, actor=cdc, post_id=post.id, label=by_text[post.text])
    row = services.train_from_labels(session, actor=cdc, activate=True)
    assert row.active and row.n_train == len(services.labelled_set(session)[0])


def test_full_text_search_finds_words_in_both_engines(session: Session, cdc: User) -> None:
    day = date(2020, 3, 2)
    _ingest(
        session,
        cdc,
        [
            _item(0, day, "萝岗的药店口罩断货了"),
            _item(1, day, "园区复工第一天很顺利"),
            _item(2, day, "複工企業需要申報"),
        ],
    )
    services.analyse(session, actor=cdc)
    found = queries.search_posts(session, actor=cdc, f=queries.PostFilter(q="口罩断货"))
    assert [p.external_id for p in found.posts] == ["t-0"]
    found = queries.search_posts(session, actor=cdc, f=queries.PostFilter(q="复工"))
    assert sorted(p.external_id for p in found.posts) == ["t-1", "t-2"]
    # FTS syntax in the query is data, not an operator.
    found = queries.search_posts(session, actor=cdc, f=queries.PostFilter(q='口罩" OR "复工'))
    assert found.total == 0


class _Feed(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def feed_server() -> Iterator[tuple[str, type[_Feed]]]:
    handler = type("Feed", (_Feed,), {})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/feed.xml", handler
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_feed_with_a_malformed_entry_ingests_the_rest(
    session: Session, cdc: User, feed_server: tuple[str, type[_Feed]]
) -> None:
    url, handler = feed_server
    handler.body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>区融媒体</title>'
        "<item><guid>n1</guid><title>黄埔区新增核酸采样点</title><link>http://news.example/1</link>"
        "<pubDate>Mon, 02 Mar 2020 08:00:00 +0800</pubDate><description>&lt;p&gt;二十个采样点"
        "&lt;/p&gt;</description></item>"
        "<item><guid>n2</guid><title>没有日期的条目</title></item>"
        "</channel></rss>"
    ).encode()
    src = services.add_feed(session, actor=cdc, name="区融媒体", url=url)
    report = services.fetch_feed(session, actor=cdc, source=src, key=KEY)
    assert report.count("accepted") == 1
    (err,) = report.errors
    assert err.where == "条目 n2" and "时间" in (err.message or "")
    post = session.scalar(select(OpinionPost).where(OpinionPost.external_id == "n1"))
    assert post is not None and post.text_norm == "黄埔区新增核酸采样点。二十个采样点"
    assert post.posted_at == datetime(2020, 3, 2, 8, 0, tzinfo=CST)

    handler.body = b"<html><body>not a feed</body></html"
    bad = services.fetch_feed(session, actor=cdc, source=src, key=KEY)
    assert bad.count("accepted") == 0 and len(bad.errors) == 1


def test_an_unreachable_feed_is_an_error_not_an_exception(session: Session, cdc: User) -> None:
    src = services.add_feed(session, actor=cdc, name="断网", url="http://127.0.0.1:9/feed")
    report = services.fetch_feed(session, actor=cdc, source=src, key=KEY)
    assert len(report.errors) == 1 and "无法获取" in (report.errors[0].message or "")


def test_weekly_report_pdf_contains_the_chinese_headings(session: Session, cdc: User) -> None:
    from pypdf import PdfReader

    rng = random.Random(1)
    items = []
    for d in range(14):
        day = date(2020, 2, 24) + timedelta(days=d)
        for i in range(6):
            kw = "口罩" if i % 2 else "复工"
            items.append(_item(d * 10 + i, day, _unique_text(rng, kw) + "太让人失望了"))
    _ingest(session, cdc, items)
    services.analyse(session, actor=cdc)
    services.detect_alerts(
        session, actor=cdc, start=date(2020, 3, 2), end=date(2020, 3, 8), config=_config()
    )
    row = services.build_report(session, actor=cdc, week="2020-W10")
    assert row.period_start == date(2020, 3, 2) and row.period_end == date(2020, 3, 8)
    assert row.pdf.startswith(b"%PDF")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(row.pdf)).pages)
    for heading in HEADINGS:
        assert heading in text, heading
    assert "2020-W10" in text and "去重后 42 条" in row.summary
    rebuilt = services.build_report(session, actor=cdc, week="2020-W10")
    assert rebuilt.id == row.id
    with pytest.raises(ValidationFailed):
        services.build_report(session, actor=cdc, week="2020-10")
    assert session.scalar(select(func.count()).select_from(OpinionAlert)) is not None


def test_a_large_batch_on_a_worker_process_stores_what_one_process_would(
    session: Session, cdc: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fugong.opinion.demo import synthetic_posts
    from fugong.opinion.text import group_duplicates, normalise, segment, workers
    from fugong.opinion.text.segment import content_tokens

    # Every batch is "large" and there is one worker, so segmentation is shared with it and
    # duplicate grouping runs on it while this process scores sentiment; posts are taken 64 at
    # a time, so ingest and analyse go through several slices.
    monkeypatch.setattr(segment, "PARALLEL_MIN", 1)
    monkeypatch.setattr(segment, "BATCH_MAX", 64)
    monkeypatch.setattr(services, "_OFFLOAD_MIN", 1)
    monkeypatch.setattr(workers, "worker_count", lambda: 1)
    segment.clear_caches()
    try:
        assert workers.start_workers() == 1
        items = synthetic_posts(300, start=date(2020, 3, 1), days=2, seed=5)
        _ingest(session, cdc, items)
        before = workers.worker_cpu_seconds()
        result = services.analyse(session, actor=cdc)
        assert workers.worker_cpu_seconds() > before  # the grouping ran on the worker
    finally:
        workers.stop_workers()
        segment.clear_caches()
    posts = session.scalars(select(OpinionPost).order_by(OpinionPost.posted_at, OpinionPost.id))
    rows = list(posts)
    texts = [normalise(i.text) for i in items]
    assert [p.text_norm for p in rows] == texts
    assert [p.tokens for p in rows] == [
        " ".join(content_tokens(segment._cut_uncached(t))) for t in texts
    ]
    expected = {
        frozenset(rows[m].id for m in g.members) for g in group_duplicates(texts) if g.size > 1
    }
    stored: dict[int, set[int]] = {}
    for p in rows:
        if p.dup_group_id is not None:
            stored.setdefault(p.dup_group_id, set()).add(p.id)
    assert {frozenset(v) for v in stored.values()} == expected
    assert len(expected) > 10 and result.duplicates == sum(len(g) - 1 for g in expected)
    assert result.analysed == 300 and all(p.sentiment for p in rows)
