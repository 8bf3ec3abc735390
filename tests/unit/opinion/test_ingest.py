"""Parsing posts from CSV, JSONL and RSS/Atom: one error per bad line or entry, naming where
and which field; good items are never lost because of a bad neighbour."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fugong.opinion.ingest import (
    ItemInvalid,
    derived_id,
    parse_csv,
    parse_feed,
    parse_file,
    parse_jsonl,
    parse_time,
)


def test_naive_times_are_china_standard_time_and_stored_in_utc() -> None:
    assert parse_time("2020-03-02 08:00") == datetime(2020, 3, 2, 0, 0, tzinfo=UTC)
    assert parse_time("2020-03-02T08:00:00Z") == datetime(2020, 3, 2, 8, 0, tzinfo=UTC)
    assert parse_time("2020/03/02 08:00") == datetime(2020, 3, 2, 0, 0, tzinfo=UTC)
    assert parse_time(1583107200) == datetime(2020, 3, 2, 0, 0, tzinfo=UTC)
    for bad in ("", "tomorrow", "1999-01-01", "2999-01-01"):
        with pytest.raises(ItemInvalid) as exc:
            parse_time(bad)
        assert exc.value.field == "time"


def test_jsonl_reports_each_bad_line() -> None:
    data = (
        '{"id": "a", "time": "2020-03-02 08:00", "text": "口罩"}\n'
        "\n"
        "{broken\n"
        "[1, 2]\n"
        '{"id": "e", "time": "2020-03-02 08:00", "text": "x", "url": "file:///etc/passwd"}\n'
        '{"time": "2020-03-02 09:00", "text": "没有编号"}\n'
    )
    parsed = parse_jsonl(data)
    assert [(e.where, e.field) for e in parsed.errors] == [
        ("第3行", "(JSON)"),
        ("第4行", "(JSON)"),
        ("第5行", "url"),
    ]
    assert parsed.errors[2].item_id == "e"
    assert parsed.items[0].external_id == "a"
    no_id = parsed.items[1]
    assert no_id.external_id == derived_id(no_id.posted_at, no_id.text)


def test_csv_needs_time_and_text_columns() -> None:
    (err,) = parse_csv("id,body\n1,x\n").errors
    assert err.where == "第1行" and "time" in err.message and "text" in err.message
    assert parse_csv("").errors[0].message == "文件为空"


def test_a_malformed_feed_is_one_error_and_a_bad_entry_is_reported_by_id() -> None:
    (err,) = parse_feed(b"<html><body>502 Bad Gateway</body></html").errors
    assert err.where == "订阅源"
    atom = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        "<entry><id>urn:1</id><title>复工指引发布</title><updated>2020-03-02T08:00:00+08:00</updated>"
        "<link href='http://e.example/1'/><author><name>区融媒</name></author></entry>"
        "<entry><id>urn:2</id><updated>2020-03-02T09:00:00+08:00</updated></entry>"
        "</feed>"
    )
    parsed = parse_feed(atom)
    assert [i.external_id for i in parsed.items] == ["urn:1"]
    assert parsed.items[0].author == "区融媒" and parsed.items[0].url == "http://e.example/1"
    (bad,) = parsed.errors
    assert bad.where == "条目 urn:2" and bad.field == "text"


def test_unknown_file_types_and_encodings_are_refused() -> None:
    assert parse_file("x.txt", b"a").errors[0].field == "(类型)"
    assert parse_file("x.csv", "时间".encode("gbk")).errors[0].field == "(编码)"
