"""Retention: delete location data older than the window the purpose allows (default 28 days).

Deletes whole date partitions of ``records/`` and of every ``stays/`` kind, and their manifest
entries. Unpartitioned record files cannot be cut by date without rewriting them; they are reported,
never silently kept as if purged.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fugong.tracing.common import check_data_dir, partition_date, record_files

DEFAULT_RETENTION_DAYS = 28


def parse_age(text: str) -> int:
    """Days in ``"28d"``, ``"4w"`` or ``"28"``."""
    m = re.fullmatch(r"\s*(\d+)\s*([dw]?)\s*", text)
    if not m:
        raise ValueError(f"not an age like 28d or 4w: {text!r}")
    n = int(m.group(1))
    return n * 7 if m.group(2) == "w" else n


@dataclass
class PurgeReport:
    cutoff: str
    removed_days: list[str] = field(default_factory=list)
    removed_files: int = 0
    unpartitioned_kept: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff,
            "removed_days": self.removed_days,
            "removed_files": self.removed_files,
            "unpartitioned_kept": self.unpartitioned_kept,
        }


def purge(data_dir: Path, older_than_days: int, today: date | None = None) -> PurgeReport:
    """Delete every date partition before ``today - older_than_days`` (UTC dates)."""
    from fugong.tracing.build import MANIFEST, STAYS, read_manifest

    check_data_dir(data_dir)
    if older_than_days < 0:
        raise ValueError("older_than_days must not be negative")
    today = today or datetime.now(UTC).date()
    cutoff = today - timedelta(days=older_than_days)
    report = PurgeReport(cutoff=cutoff.isoformat())
    days: set[date] = set()
    for f in record_files(data_dir):
        d = partition_date(f)
        if d is None:
            report.unpartitioned_kept.append(str(f.relative_to(data_dir)))
        elif d < cutoff:
            days.add(d)
    roots = [data_dir / "records"] + [p for p in (data_dir / STAYS).glob("*") if p.is_dir()]
    for root in roots:
        for part in root.glob("date=*"):
            d = partition_date(part)
            if d is not None and d < cutoff:
                days.add(d)
                report.removed_files += sum(1 for p in part.rglob("*") if p.is_file())
                shutil.rmtree(part)
    manifest = read_manifest(data_dir)
    if manifest is not None:
        # Their stays are gone; the next build must not think them built.
        for key in list(manifest.get("days", {})):
            if date.fromisoformat(key) < cutoff:
                del manifest["days"][key]
        (data_dir / STAYS / MANIFEST).write_text(
            json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8"
        )
    report.removed_days = sorted(d.isoformat() for d in days)
    return report
