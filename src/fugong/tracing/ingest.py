"""Operator CSV export (phone number, time, cell id) → pseudonymised records.

Privacy contract:

* the phone number is replaced by ``HMAC-SHA256(key, normalised number)`` in hex
  (:func:`pseudonymise`), the key read from a file that must lie *outside* the data directory;
* the raw number is never written — not to records, not to the error report, not to the log;
  a bad row is reported by its line number and a reason only.

Robustness contract: every row is either written or reported (bad time, unknown cell, bad phone
number, wrong column count); a bad row never stops the good ones. Output files are named after the
SHA-256 of the input file, so ingesting the same export twice writes the same files again.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from fugong.tracing.common import day_of, read_cells

_PHONE = re.compile(r"1[3-9]\d{9}")
MIN_KEY_BYTES = 16
BEIJING = timezone(timedelta(hours=8))


class IngestError(Exception):
    """The ingest cannot start (key file, data directory); row problems are reported instead."""


def normalise_phone(phone: str) -> str:
    """The 11-digit mainland mobile number, with ``+86`` / ``86`` / spaces / dashes removed.

    Raises ``ValueError`` with a message that does not contain the number.
    """
    digits = re.sub(r"[\s\-()]", "", phone)
    if digits.startswith("+"):
        digits = digits[1:]
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not _PHONE.fullmatch(digits):
        raise ValueError("not a mainland mobile number")
    return digits


def pseudonymise(phone: str, key: bytes) -> str:
    """The uid of a phone number: hex HMAC-SHA256 of its normalised form under ``key``.

    The same number written differently (``+86 138-0013-8000``, ``13800138000``) gives the same
    uid; the web uses this to look a number up without the data ever holding it.
    """
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"pseudonymisation key must be at least {MIN_KEY_BYTES} bytes")
    return hmac.new(key, normalise_phone(phone).encode("ascii"), hashlib.sha256).hexdigest()


def read_key(key_file: Path, data_dir: Path) -> bytes:
    """Read the HMAC key, refusing a key kept inside the data it protects."""
    key_path = key_file.resolve()
    data_path = data_dir.resolve()
    if key_path == data_path or data_path in key_path.parents:
        raise IngestError("the key file must be kept outside the data directory")
    try:
        key = key_path.read_bytes().strip()
    except OSError as exc:
        raise IngestError(f"cannot read key file: {exc.strerror}") from exc
    if len(key) < MIN_KEY_BYTES:
        raise IngestError(f"the key file holds fewer than {MIN_KEY_BYTES} bytes")
    return key


def parse_time(text: str, naive_tz: timezone = BEIJING) -> int:
    """Epoch seconds of an ISO-8601 time or of integer epoch seconds; a time without a zone is
    read in ``naive_tz`` (operators export Beijing time)."""
    text = text.strip()
    if re.fullmatch(r"\d{9,10}", text):
        return int(text)
    ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=naive_tz)
    return int(ts.timestamp())


@dataclass
class IngestReport:
    """Counts and the rejected lines (line number and reason, never the row's content)."""

    rows: int = 0
    written: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    errors: list[tuple[int, str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        self.errors.append((line, reason))

    def to_json(self, max_errors: int = 100) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "written": self.written,
            "rejected": self.rejected,
            "reasons": self.reasons,
            "errors": [{"line": n, "reason": r} for n, r in self.errors[:max_errors]],
            "errors_truncated": len(self.errors) > max_errors,
            "files": self.files,
        }


_HEADER_WORDS = {
    "phone",
    "msisdn",
    "number",
    "time",
    "ts",
    "timestamp",
    "cell",
    "cell_id",
    "lac_ci",
}


def ingest(
    raw_csv: Path, data_dir: Path, key_file: Path, naive_tz: timezone = BEIJING
) -> IngestReport:
    """Append the records of one operator export to ``DATA_DIR/records`` (see module docstring).

    The input has three columns — phone number, time, cell id — with or without a header line.
    The full list of rejected lines is also written to ``DATA_DIR/ingest_reports/<digest>.json``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    key = read_key(key_file, data_dir)
    known = {c.cell_id for c in read_cells(data_dir)}
    digest = hashlib.sha256(raw_csv.read_bytes()).hexdigest()[:16]
    report = IngestReport()
    uid_of: dict[str, str] = {}
    by_day: dict[Any, tuple[list[str], list[int], list[int]]] = defaultdict(lambda: ([], [], []))
    with raw_csv.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
        for line_no, row in enumerate(csv.reader(fh), start=1):
            if not row or all(not c.strip() for c in row):
                continue
            if line_no == 1 and {c.strip().lower() for c in row} & _HEADER_WORDS:
                continue
            report.rows += 1
            if len(row) != 3:
                report.reject(line_no, "expected 3 columns")
                continue
            phone, time_text, cell_text = row
            try:
                uid = uid_of.get(phone)
                if uid is None:
                    uid = uid_of[phone] = pseudonymise(phone, key)
            except ValueError:
                report.reject(line_no, "bad phone number")
                continue
            try:
                ts = parse_time(time_text, naive_tz)
            except (ValueError, OverflowError):
                report.reject(line_no, "bad time")
                continue
            try:
                cell = int(cell_text.strip())
            except ValueError:
                report.reject(line_no, "bad cell id")
                continue
            if cell not in known:
                report.reject(line_no, "unknown cell")
                continue
            uids, tss, cells = by_day[day_of(ts)]
            uids.append(uid)
            tss.append(ts)
            cells.append(cell)
    uid_of.clear()
    for d, (uids, tss, cells) in sorted(by_day.items()):
        part = data_dir / "records" / f"date={d.isoformat()}"
        part.mkdir(parents=True, exist_ok=True)
        path = part / f"ingest-{digest}.parquet"
        pq.write_table(
            pa.table(
                {
                    "uid": pa.array(uids, pa.string()),
                    "ts": pa.array(tss, pa.int64()).cast(pa.timestamp("s", tz="UTC")),
                    "cell_id": pa.array(cells, pa.int64()),
                }
            ),
            path,
        )
        report.written += len(uids)
        report.files.append(str(path.relative_to(data_dir)))
    out = data_dir / "ingest_reports"
    out.mkdir(exist_ok=True)
    (out / f"{digest}.json").write_text(
        json.dumps(
            {
                "input_sha256_prefix": digest,
                "ingested_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                **report.to_json(max_errors=len(report.errors)),
            },
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )
    return report
