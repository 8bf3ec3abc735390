"""People per grid per hour, for situational views: counts of distinct subscribers present in
each 800 m grid during one hour, with every group under the minimum (default 15) suppressed, so
no small group (and no person) can be singled out from an aggregate.

Reads the built ``stays/grid`` pieces: the build cuts presence runs at hour buckets, so the
pieces of bucket ``b`` are exactly who was present in a grid during that hour."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fugong.tracing.build import STAYS, read_manifest
from fugong.tracing.common import (
    Profile,
    TracingDataError,
    day_of,
    grid_centre,
    grid_label,
    to_epoch,
    ungkey,
)

HOUR_S = 3600


@dataclass(frozen=True)
class GridCount:
    grid: str
    lon: float
    lat: float
    people: int


@dataclass(frozen=True)
class HourView:
    hour: datetime
    groups: list[GridCount]
    suppressed_groups: int  # grids with 1..min_group-1 people, hidden


def people_per_grid(data_dir: Path, hour: datetime, min_group: int = 15) -> HourView:
    import pyarrow as pa
    import pyarrow.compute as pc

    manifest = read_manifest(data_dir)
    if manifest is None:
        raise TracingDataError("尚未构建轨迹索引（fugong tracing build）")
    profile = Profile(**manifest["profile"])
    if manifest.get("bucket_s", HOUR_S) != HOUR_S:
        raise TracingDataError("聚合视图需要按小时分桶的索引")
    b = to_epoch(hour) // HOUR_S
    start = b * HOUR_S
    # A run of the previous day's last records can spill into this hour (see build.py).
    days = {day_of(start - profile.max_gap_s), day_of(start)}
    pieces = []
    for d in sorted(days):
        path = data_dir / STAYS / "grid" / f"date={d.isoformat()}" / "part-0.arrow"
        if path.is_file():
            with pa.memory_map(str(path)) as source:
                table = pa.ipc.open_file(source).read_all()
            pieces.append(table.filter(pc.equal(table["b"], b)).select(["uid", "gkey"]))
    if not pieces:
        return HourView(hour=hour, groups=[], suppressed_groups=0)
    grouped = pa.concat_tables(pieces).group_by("gkey").aggregate([("uid", "count_distinct")])
    groups, hidden = [], 0
    for key, n in zip(
        grouped["gkey"].to_pylist(), grouped["uid_count_distinct"].to_pylist(), strict=True
    ):
        if n < min_group:
            hidden += 1
            continue
        lon, lat = grid_centre(*ungkey(key), profile)
        groups.append(GridCount(grid_label(key), lon, lat, n))
    groups.sort(key=lambda g: (-g.people, g.grid))
    return HourView(hour=hour, groups=groups, suppressed_groups=hidden)
