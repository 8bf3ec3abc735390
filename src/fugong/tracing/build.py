"""Compaction of raw records into stays: incremental by day, idempotent, exact.

Layout written under ``DATA_DIR/stays/`` (details in :mod:`fugong.tracing.compact`)::

    manifest.json                       profile, bucket size, and per day: input fingerprint, counts
    grid/date=YYYY-MM-DD/part-0.arrow   (uid, gkey, b, s, e, rs, re) sorted by (gkey, b, s), mmapped
    grid/date=YYYY-MM-DD/index.npy      first row of every (gkey, b) key in part-0.arrow
    uid/date=YYYY-MM-DD/part-0.parquet  the same pieces sorted by (uid, s)
    city/date=YYYY-MM-DD/part-0.parquet (uid, city, s, e) sorted by (uid, s)

A day's partition holds the presence of the records *of that day* (UTC): each record's interval
``[t, min(t_next, t + max_gap))`` is computed with its true successor (read from the next day's
records), consecutive touching intervals in one grid are merged into runs, and the runs are cut at
multiples of ``bucket_s``. Runs of the last records of a day spill past midnight into the next
date's buckets but stay in their record's partition, so a query over ``[lo, hi)`` reads the
partitions of ``day(lo - max_gap) .. day(hi - 1)``. Cuts (midnight, buckets) only split intervals
into touching pieces, which the queries merge back, so answers equal the computation from the raw
records.

Incremental: a day is rebuilt when the fingerprint of its inputs (the record files of the day and of
the next day, unpartitioned files, ``cells.parquet``, the profile) changes — so adding day D+1
rebuilds D+1 and re-closes D, and re-running changes nothing. Partitions whose records are gone are
removed. The profile (grid size, max_gap, origin) is fixed per build; changing it rebuilds all.
"""

# S608: SQL here is assembled from integers computed in Python and from file paths we quote;
# values a user types (uids) are always bound parameters.

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fugong.tracing.common import (
    DAY_S,
    Profile,
    TracingDataError,
    day_of,
    day_start,
    days_between,
    partition_date,
    read_cells,
    record_files,
)

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: grid pieces carry their run bounds (rs, re)
DEFAULT_BUCKET_S = 3600
STAYS = "stays"
MANIFEST = "manifest.json"
KINDS = ("grid", "uid", "city")


@dataclass
class BuildReport:
    """What a build did: days rebuilt / unchanged / removed, with record and stay counts."""

    built: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    records: int = 0
    stays: int = 0
    unknown_cell_records: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "built": self.built,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "records": self.records,
            "stays": self.stays,
            "unknown_cell_records": self.unknown_cell_records,
            "seconds": round(self.seconds, 3),
            "records_per_s": round(self.records / self.seconds) if self.seconds else None,
        }


def _fingerprint(path: Path, root: Path) -> list[Any]:
    st = path.stat()
    return [str(path.relative_to(root)), st.st_size, st.st_mtime_ns]


def read_manifest(data_dir: Path) -> dict[str, Any] | None:
    path = data_dir / STAYS / MANIFEST
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TracingDataError(f"{path} is not readable: {exc}") from exc
    return data


def _write_manifest(data_dir: Path, manifest: dict[str, Any]) -> None:
    path = data_dir / STAYS / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


class RecordIndex:
    """The record files grouped by partition date, and their fingerprints per build day."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.files = record_files(data_dir)
        self.by_date: dict[date, list[Path]] = defaultdict(list)
        self.unpartitioned: list[Path] = []
        for f in self.files:
            d = partition_date(f)
            if d is None:
                self.unpartitioned.append(f)
            else:
                self.by_date[d].append(f)

    def days(self) -> list[date]:
        """Days that hold records: partition dates, plus the span of any unpartitioned files."""
        import pyarrow.parquet as pq

        from fugong.tracing.compact import epoch_seconds

        out = set(self.by_date)
        for f in self.unpartitioned:
            ts = epoch_seconds(pq.read_table(f, columns=["ts"]).column("ts").combine_chunks())
            if len(ts):
                out.update(days_between(day_of(int(ts.min())), day_of(int(ts.max()))))
        return sorted(out)

    def inputs(self, d: date) -> list[Path]:
        """Files a day's build reads: its own, the next day's (closing intervals), unpartitioned."""
        return (
            self.by_date.get(d, [])
            + self.by_date.get(d + timedelta(days=1), [])
            + (self.unpartitioned)
        )

    def fingerprint(self, d: date, cells_fp: list[Any], profile: Profile, bucket_s: int) -> str:
        return json.dumps(
            {
                "files": [_fingerprint(f, self.data_dir) for f in self.inputs(d)],
                "cells": cells_fp,
                "profile": profile.as_dict(),
                "bucket_s": bucket_s,
                "version": FORMAT_VERSION,
            },
            sort_keys=True,
        )


def build(
    data_dir: Path,
    profile: Profile | None = None,
    bucket_s: int = DEFAULT_BUCKET_S,
    threads: int | None = None,
) -> BuildReport:
    """Bring ``DATA_DIR/stays`` up to date with ``records/``; see the module docstring."""
    profile = profile or Profile()
    if bucket_s <= 0 or DAY_S % bucket_s:
        raise ValueError("bucket_s must divide a day")
    started = time.perf_counter()
    report = BuildReport()
    from fugong.tracing.compact import CellTable

    if threads:
        import pyarrow as pa

        pa.set_cpu_count(threads)
    cells = CellTable.of(read_cells(data_dir), profile)
    index = RecordIndex(data_dir)
    out_root = data_dir / STAYS
    out_root.mkdir(exist_ok=True)
    manifest = read_manifest(data_dir) or {}
    if (
        manifest.get("version") != FORMAT_VERSION
        or manifest.get("profile") != profile.as_dict()
        or manifest.get("bucket_s") != bucket_s
    ):
        for kind in KINDS:
            shutil.rmtree(out_root / kind, ignore_errors=True)
        manifest = {
            "version": FORMAT_VERSION,
            "profile": profile.as_dict(),
            "bucket_s": bucket_s,
            "days": {},
        }
    days_done: dict[str, Any] = manifest["days"]
    cells_fp = _fingerprint(data_dir / "cells.parquet", data_dir)
    days = index.days()
    wanted = {d.isoformat() for d in days}
    for old in sorted(set(days_done) - wanted):
        for kind in KINDS:
            shutil.rmtree(out_root / kind / f"date={old}", ignore_errors=True)
        del days_done[old]
        report.removed.append(old)
    for d in days:
        key = d.isoformat()
        fp = index.fingerprint(d, cells_fp, profile, bucket_s)
        done = days_done.get(key)
        if done and done.get("fingerprint") == fp and _outputs_exist(out_root, key):
            report.unchanged.append(key)
            continue
        days_done.pop(key, None)
        _write_manifest(data_dir, manifest)  # a crash mid-day leaves the day marked unbuilt
        stats = _build_day(cells, index, d, profile, bucket_s, out_root)
        stats["fingerprint"] = fp
        stats["built_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        days_done[key] = stats
        _write_manifest(data_dir, manifest)
        report.built.append(key)
        report.records += stats["records"]
        report.stays += stats["grid_stays"]
        report.unknown_cell_records += stats["unknown_cell_records"]
        if stats["unknown_cell_records"]:
            log.warning(
                "%s: %d record(s) with a cell not in cells.parquet were skipped",
                key,
                stats["unknown_cell_records"],
            )
        log.info("built %s: %d records -> %d stays", key, stats["records"], stats["grid_stays"])
    # Days outside the span of unpartitioned files have no records; remember which files that
    # span was read from, so a query can tell "no data that day" from "not built".
    manifest["unpartitioned"] = [_fingerprint(f, data_dir) for f in index.unpartitioned]
    _write_manifest(data_dir, manifest)
    report.seconds = time.perf_counter() - started
    return report


def _file_name(kind: str) -> str:
    from fugong.tracing.compact import GRID_FILE

    return GRID_FILE if kind == "grid" else "part-0.parquet"


def _outputs_exist(out_root: Path, key: str) -> bool:
    return all((out_root / kind / f"date={key}" / _file_name(kind)).is_file() for kind in KINDS)


def _build_day(
    cells: Any, index: RecordIndex, d: date, profile: Profile, bucket_s: int, out_root: Path
) -> dict[str, Any]:
    from fugong.tracing.compact import compact_day

    a = day_start(d)
    files = index.inputs(d)
    tmp = out_root / f".tmp-{d.isoformat()}"
    shutil.rmtree(tmp, ignore_errors=True)
    stats: dict[str, Any] = dict(
        compact_day(files, index.by_date.get(d, []), a, a + DAY_S, cells, profile, bucket_s, tmp)
    )
    for kind in KINDS:
        dest = out_root / kind / f"date={d.isoformat()}"
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / kind, dest)
    shutil.rmtree(tmp, ignore_errors=True)
    stats["inputs"] = [str(f.relative_to(index.data_dir)) for f in files]
    return stats


def stay_files(data_dir: Path, kind: str, lo: int, hi: int, max_gap_s: int) -> list[Path]:
    """Partitions of one stays kind that can hold presence inside ``[lo, hi)``."""
    root = data_dir / STAYS / kind
    out = []
    for d in days_between(day_of(lo - max_gap_s), day_of(hi - 1)):
        f = root / f"date={d.isoformat()}" / _file_name(kind)
        if f.is_file():
            out.append(f)
    return out


def stays_usable(data_dir: Path, profile: Profile, lo: int, hi: int) -> tuple[bool, str]:
    """Whether the built stays answer a query over ``[lo, hi)`` with ``profile`` exactly.

    True only when the build used the same profile and every day the window needs is built from
    the record files present now (fingerprints re-checked, so a stale build is never read).
    """
    manifest = read_manifest(data_dir)
    if manifest is None:
        return False, "no build (run `fugong tracing build`)"
    if manifest.get("version") != FORMAT_VERSION or manifest.get("profile") != profile.as_dict():
        return False, "the build used another grid / max_gap / origin"
    index = RecordIndex(data_dir)
    bucket_s = int(manifest.get("bucket_s", 0))
    cells_fp = _fingerprint(data_dir / "cells.parquet", data_dir)
    needed = days_between(day_of(lo - profile.max_gap_s), day_of(hi - 1))
    have = set(index.by_date)
    unpartitioned = [_fingerprint(f, data_dir) for f in index.unpartitioned]
    for d in needed:
        done = manifest["days"].get(d.isoformat())
        if d not in have and (
            not unpartitioned or (not done and manifest.get("unpartitioned") == unpartitioned)
        ):
            continue
        if not done or done.get("fingerprint") != index.fingerprint(d, cells_fp, profile, bucket_s):
            return False, f"stays for {d.isoformat()} are missing or stale (run build)"
    return True, ""
