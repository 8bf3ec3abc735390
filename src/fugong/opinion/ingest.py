"""Reading posts from CSV, JSONL and RSS/Atom into :class:`RawItem` values, with one
:class:`ItemError` per malformed line or entry (its line number or id, the field, what is wrong).
A bad item never stops the others. Nothing here touches the database.

Fields of an item: ``id`` (the source's id; derived from time and text when absent), ``time``
(ISO 8601; a time without zone is China Standard Time, UTC+8, like the posts it describes),
``text``, and optional ``url``, ``author`` (hashed before storage, never kept) and ``source``.
"""

from __future__ import annotations

import calendar
import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

#: China Standard Time: the day boundaries of counts and reports, and the zone of naive times.
CST = timezone(timedelta(hours=8), "CST")
MAX_TEXT = 20_000
MAX_ID = 200
MAX_URL = 1000
MAX_AUTHOR = 200
_TAG = re.compile(r"<[^>]+>")
_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class RawItem:
    """One post as received (validated, not yet normalised). ``posted_at`` is UTC-aware."""

    external_id: str
    posted_at: datetime
    text: str
    url: str | None = None
    author: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class ItemError:
    """Why one item was refused: ``where`` is ``第N行`` / an entry id, ``field`` the culprit."""

    where: str
    field: str
    message: str
    item_id: str | None = None

    def __str__(self) -> str:
        return f"{self.where} {self.field}: {self.message}"


@dataclass
class Parsed:
    items: list[RawItem]
    errors: list[ItemError]


class ItemInvalid(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_time(value: Any) -> datetime:
    """ISO 8601 (``2020-03-02 08:15``, ``2020-03-02T08:15:00+08:00``, ``…Z``) or epoch seconds;
    a naive time is read as CST. Returns a UTC-aware datetime."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, datetime):
        when = value
    else:
        text = str(value or "").strip()
        if not text:
            raise ItemInvalid("time", "缺少发布时间")
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("/", "-"))
        except ValueError:
            raise ItemInvalid(
                "time", f"无法识别的时间 {text[:40]!r}（应为 ISO 8601，如 2020-03-02 08:15）"
            ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=CST)
    if not datetime(2000, 1, 1, tzinfo=UTC) <= when <= datetime.now(UTC) + timedelta(days=1):
        raise ItemInvalid("time", f"时间 {when.isoformat()} 超出合理范围（2000 年至今）")
    return when.astimezone(UTC)


def derived_id(posted_at: datetime, text: str) -> str:
    """An id for an item that came without one: the same post always gets the same id, so
    importing a file twice does not store it twice."""
    digest = hashlib.sha256(f"{posted_at.isoformat()}\n{text}".encode()).hexdigest()
    return "h:" + digest[:32]


def item_from_mapping(data: Mapping[str, Any]) -> RawItem:
    """Validate one item given as a mapping; raises :class:`ItemInvalid` naming the field."""
    text = data.get("text")
    if text is None or not str(text).strip():
        raise ItemInvalid("text", "正文为空")
    text = str(text).strip()
    if len(text) > MAX_TEXT:
        raise ItemInvalid("text", f"正文超过 {MAX_TEXT} 个字符")
    posted_at = parse_time(data.get("time"))
    raw_id = data.get("id")
    external_id = str(raw_id).strip() if raw_id not in (None, "") else ""
    if len(external_id) > MAX_ID:
        raise ItemInvalid("id", f"编号超过 {MAX_ID} 个字符")
    url = str(data.get("url") or "").strip() or None
    if url is not None and (len(url) > MAX_URL or not re.match(r"https?://", url, re.I)):
        raise ItemInvalid("url", "链接应以 http:// 或 https:// 开头，且不超过 1000 个字符")
    author = str(data.get("author") or "").strip() or None
    if author is not None and len(author) > MAX_AUTHOR:
        raise ItemInvalid("author", f"作者标识超过 {MAX_AUTHOR} 个字符")
    source = str(data.get("source") or "").strip() or None
    if source is not None and len(source) > 100:
        raise ItemInvalid("source", "来源名称超过 100 个字符")
    return RawItem(
        external_id=external_id or derived_id(posted_at, text),
        posted_at=posted_at,
        text=text,
        url=url,
        author=author,
        source=source,
    )


def _collect(rows: Iterable[tuple[str, Mapping[str, Any] | ItemError]]) -> Parsed:
    out = Parsed([], [])
    for where, row in rows:
        if isinstance(row, ItemError):
            out.errors.append(row)
            continue
        try:
            out.items.append(item_from_mapping(row))
        except ItemInvalid as e:
            item_id = str(row.get("id") or "") or None
            out.errors.append(ItemError(where, e.field, e.message, item_id))
    return out


def parse_csv(data: str) -> Parsed:
    """A CSV with a header naming at least ``time`` and ``text`` (and optionally ``id``,
    ``url``, ``author``, ``source``). Lines are numbered as in the file (header = 1)."""
    reader = csv.reader(io.StringIO(data.lstrip("\ufeff")))
    header = next(reader, None)
    if header is None:
        return Parsed([], [ItemError("第1行", "(表头)", "文件为空")])
    names = [h.strip().lower() for h in header]
    missing = [n for n in ("time", "text") if n not in names]
    if missing:
        return Parsed([], [ItemError("第1行", "(表头)", f"表头缺少列：{', '.join(missing)}")])

    def rows() -> Iterable[tuple[str, Mapping[str, Any] | ItemError]]:
        for row in reader:
            where = f"第{reader.line_num}行"
            if not row or not "".join(row).strip():
                continue
            if len(row) != len(names):
                yield where, ItemError(where, "(列数)", f"应有 {len(names)} 列，实为 {len(row)} 列")
                continue
            yield where, dict(zip(names, row, strict=True))

    return _collect(rows())


def parse_jsonl(data: str) -> Parsed:
    """One JSON object per line; blank lines are skipped."""

    def rows() -> Iterable[tuple[str, Mapping[str, Any] | ItemError]]:
        for n, line in enumerate(data.lstrip("\ufeff").splitlines(), start=1):
            where = f"第{n}行"
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                yield (
                    where,
                    ItemError(where, "(JSON)", f"不是合法的 JSON：{e.msg}（第{e.colno}列）"),
                )
                continue
            if not isinstance(obj, dict):
                yield where, ItemError(where, "(JSON)", "每行应是一个 JSON 对象")
                continue
            yield where, obj

    return _collect(rows())


def _plain(html: str) -> str:
    from html import unescape

    return _WS.sub(" ", unescape(_TAG.sub(" ", html))).strip()


def parse_feed(data: bytes | str, *, source: str | None = None) -> Parsed:
    """An RSS or Atom document (feedparser). An entry without a date or text is reported by
    its id; a document that is not a feed at all is one error for the whole feed."""
    import feedparser

    feed = feedparser.parse(data)
    if feed.bozo and not feed.entries:
        reason = getattr(feed, "bozo_exception", None)
        return Parsed([], [ItemError("订阅源", "(格式)", f"无法解析为 RSS/Atom：{reason}")])
    if not feed.entries and not feed.get("feed"):
        return Parsed([], [ItemError("订阅源", "(格式)", "不是 RSS/Atom 文档")])

    def rows() -> Iterable[tuple[str, Mapping[str, Any] | ItemError]]:
        for n, entry in enumerate(feed.entries, start=1):
            ident = entry.get("id") or entry.get("link") or ""
            where = f"条目 {ident or n}"
            parsed = entry.get("published_parsed") or entry.get("updated_parsed")
            when: Any = datetime.fromtimestamp(calendar.timegm(parsed), UTC) if parsed else None
            title = _plain(entry.get("title", ""))
            body = _plain(entry.get("summary", "") or "")
            text = title if not body or body == title else f"{title}。{body}" if title else body
            yield (
                where,
                {
                    "id": ident or None,
                    "time": when,
                    "text": text,
                    "url": entry.get("link"),
                    "author": entry.get("author"),
                    "source": source,
                },
            )

    return _collect(rows())


def parse_file(name: str, data: bytes) -> Parsed:
    """Dispatch on the file name: ``.csv``, ``.jsonl``/``.ndjson``, ``.xml``/``.rss``/``.atom``."""
    lower = name.lower()
    if lower.endswith((".xml", ".rss", ".atom")):
        return parse_feed(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return Parsed([], [ItemError("文件", "(编码)", f"不是 UTF-8 文本（字节 {e.start}）")])
    if lower.endswith(".csv"):
        return parse_csv(text)
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return parse_jsonl(text)
    return Parsed([], [ItemError("文件", "(类型)", "仅支持 .csv、.jsonl、.xml/.rss/.atom 文件")])


def fetch_feed(url: str, *, timeout: float = 20.0, max_bytes: int = 10 * 1024 * 1024) -> bytes:
    """GET a feed an analyst configured (http/https only). Raises ``ValueError`` with the
    reason on any failure, so the caller reports it instead of crashing."""
    import urllib.error
    import urllib.request

    if not re.match(r"https?://", url, re.I):
        raise ValueError("订阅地址应以 http:// 或 https:// 开头")
    req = urllib.request.Request(url, headers={"User-Agent": "fugong-opinion/1"})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - scheme checked
            body: bytes = resp.read(max_bytes + 1)
    except (urllib.error.URLError, OSError) as e:
        raise ValueError(f"无法获取订阅源 {url}：{e}") from None
    if len(body) > max_bytes:
        raise ValueError(f"订阅源超过 {max_bytes} 字节")
    return body
