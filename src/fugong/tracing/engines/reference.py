"""The oracle: the semantics of ``tracing.md`` in plain Python over the raw records.

Deliberately naive — no stays, no SQL, no cleverness — so that it can be read against the text and
trusted as the answer the fast engines are tested against. Only for small data: it loads every
record of the window into Python objects.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path

from fugong.tracing.common import (
    DEFAULT_DAYS,
    DEFAULT_MIN_STAY_S,
    CityStay,
    Companion,
    CompanionQuery,
    Profile,
    TrajectoryStay,
    Window,
    from_epoch,
    gkey,
    grid_centre,
    grid_label,
    grid_of,
    read_cells,
    record_files,
    to_epoch,
    ungkey,
)

Interval = tuple[int, int]


def load_records(data_dir: Path, lo: int, hi: int) -> list[tuple[str, int, int]]:
    """Every ``(uid, ts, cell_id)`` with ``lo <= ts < hi``, ts as epoch seconds, as stored."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out: list[tuple[str, int, int]] = []
    for f in record_files(data_dir):
        t = pq.read_table(f, columns=["uid", "ts", "cell_id"])
        ts = t.column("ts")
        if pa.types.is_timestamp(ts.type):
            ts = pc.cast(pc.cast(ts, pa.timestamp("s", tz="UTC")), pa.int64())
        for uid, s, c in zip(
            t.column("uid").to_pylist(),
            ts.to_pylist(),
            t.column("cell_id").to_pylist(),
            strict=True,
        ):
            if lo <= s < hi:
                out.append((str(uid), int(s), int(c)))
    return out


def merge(intervals: list[Interval]) -> list[Interval]:
    """Union of intervals; touching ones merge; empty ones vanish."""
    out: list[Interval] = []
    for s, e in sorted(i for i in intervals if i[1] > i[0]):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def clip(intervals: list[Interval], lo: int, hi: int) -> list[Interval]:
    return [(max(s, lo), min(e, hi)) for s, e in intervals if min(e, hi) > max(s, lo)]


def intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    return merge([(max(s1, s2), min(e1, e2)) for s1, e1 in a for s2, e2 in b])


class Presence:
    """Per-uid presence by grid and by city, unclipped, from the records of ``[lo - max_gap, hi)``.

    Records before ``lo - max_gap`` cannot reach the window and records at or after ``hi`` can only
    shorten an interval that the window cuts at ``hi`` anyway, so this range is exact.
    """

    def __init__(self, data_dir: Path, window: Window, profile: Profile) -> None:
        cells = {c.cell_id: c for c in read_cells(data_dir)}
        # A grid's city: the city of most of its cells, ties to the smallest name (a border grid
        # holds cells of two cities). The rule of common.grid_cities, which the fast engines use,
        # written out again independently so that the parity suite checks one against the other.
        cities_in: dict[int, list[str]] = defaultdict(list)
        for c in cells.values():
            cities_in[gkey(*grid_of(c.lon, c.lat, profile))].append(c.city)
        self.grid_city = {
            k: sorted(set(names), key=lambda n: (-names.count(n), n))[0]
            for k, names in cities_in.items()
        }
        per_uid: dict[str, set[tuple[int, int]]] = defaultdict(set)
        for uid, ts, cell in load_records(data_dir, window.lo - profile.max_gap_s, window.hi):
            if cell in cells:  # unknown cells are skipped before ordering (common.py)
                per_uid[uid].add((ts, cell))
        self.grids: dict[str, dict[int, list[Interval]]] = {}
        self.cities: dict[str, dict[str, list[Interval]]] = {}
        for uid, recs in per_uid.items():
            ordered = sorted(recs)
            by_grid: dict[int, list[Interval]] = defaultdict(list)
            by_city: dict[str, list[Interval]] = defaultdict(list)
            for i, (t, cell) in enumerate(ordered):
                end = t + profile.max_gap_s
                if i + 1 < len(ordered):
                    end = min(end, ordered[i + 1][0])
                c = cells[cell]
                by_grid[gkey(*grid_of(c.lon, c.lat, profile))].append((t, end))
                by_city[c.city].append((t, end))
            self.grids[uid] = {k: merge(v) for k, v in by_grid.items()}
            self.cities[uid] = {k: merge(v) for k, v in by_city.items()}

    def in_grids(self, uid: str, lo: int, hi: int) -> dict[int, list[Interval]]:
        out = {k: clip(v, lo, hi) for k, v in self.grids.get(uid, {}).items()}
        return {k: v for k, v in out.items() if v}


def _companions_of(
    presence: Presence, uid: str, lo: int, hi: int, min_overlap_s: int, exclude: set[str]
) -> list[Companion]:
    mine = presence.in_grids(uid, lo, hi)
    out = []
    for other in presence.grids:
        if other == uid or other in exclude:
            continue
        theirs = presence.in_grids(other, lo, hi)
        pieces = [
            (k, iv) for k in mine.keys() & theirs.keys() for iv in intersect(mine[k], theirs[k])
        ]
        qualifying = [(k, iv) for k, iv in pieces if iv[1] - iv[0] >= min_overlap_s]
        if qualifying:
            out.append(
                Companion(
                    uid=other,
                    longest_overlap_s=max(e - s for _, (s, e) in pieces),
                    total_overlap_s=sum(e - s for _, (s, e) in pieces),
                    first_contact=from_epoch(min(s for _, (s, _) in qualifying)),
                    grids=tuple(sorted({grid_label(k) for k, _ in qualifying})),
                )
            )
    out.sort(key=lambda c: (c.first_contact, c.uid))
    return out


class ReferenceEngine:
    """Pure-Python oracle; the ``stays/`` build is ignored."""

    name = "reference"

    def trajectory(
        self,
        data_dir: Path,
        uid: str,
        at: datetime,
        days: int = DEFAULT_DAYS,
        profile: Profile | None = None,
    ) -> list[TrajectoryStay]:
        profile = profile or Profile()
        w = Window.ending(at, days)
        p = Presence(data_dir, w, profile)
        out = []
        for k, ivs in p.in_grids(uid, w.lo, w.hi).items():
            for s, e in ivs:
                lon, lat = grid_centre(*ungkey(k), profile)
                out.append(
                    TrajectoryStay(
                        grid_label(k), p.grid_city[k], from_epoch(s), from_epoch(e), e - s, lon, lat
                    )
                )
        out.sort(key=lambda t: (t.start, t.grid))
        return out

    @staticmethod
    def _first(p: Presence, q: CompanionQuery) -> list[Companion]:
        w = q.window
        found = _companions_of(p, q.case, w.lo, w.hi, q.min_overlap_s, set())
        if q.min_total_stay_s is None:
            return found

        def stayed(uid: str, grid: str) -> int:
            ivs = {grid_label(k): v for k, v in p.in_grids(uid, w.lo, w.hi).items()}
            return sum(e - s for s, e in ivs.get(grid, []))

        return [
            c
            for c in found
            if any(max(stayed(q.case, g), stayed(c.uid, g)) > q.min_total_stay_s for g in c.grids)
        ]

    def companions(self, data_dir: Path, query: CompanionQuery) -> list[Companion]:
        return self._first(Presence(data_dir, query.window, query.profile), query)

    def second_order(self, data_dir: Path, query: CompanionQuery) -> list[Companion]:
        w = query.window
        p = Presence(data_dir, w, query.profile)
        first = self._first(p, query)
        exclude = {query.case} | {c.uid for c in first}
        per_uid: dict[str, list[Companion]] = defaultdict(list)
        for f in first:
            for c in _companions_of(
                p, f.uid, to_epoch(f.first_contact), w.hi, query.min_overlap_s, exclude
            ):
                per_uid[c.uid].append(
                    Companion(
                        c.uid,
                        c.longest_overlap_s,
                        c.total_overlap_s,
                        c.first_contact,
                        c.grids,
                        (f.uid,),
                    )
                )
        out = [
            Companion(
                uid=uid,
                longest_overlap_s=max(c.longest_overlap_s for c in cs),
                total_overlap_s=sum(c.total_overlap_s for c in cs),
                first_contact=min(c.first_contact for c in cs),
                grids=tuple(sorted({g for c in cs for g in c.grids})),
                via=tuple(sorted(c.via[0] for c in cs)),
            )
            for uid, cs in per_uid.items()
        ]
        out.sort(key=lambda c: (c.first_contact, c.uid))
        return out

    def itinerary(
        self,
        data_dir: Path,
        uid: str,
        at: datetime,
        days: int = DEFAULT_DAYS,
        min_stay_s: int = DEFAULT_MIN_STAY_S,
        profile: Profile | None = None,
    ) -> list[CityStay]:
        profile = profile or Profile()
        w = Window.ending(at, days)
        p = Presence(data_dir, w, profile)
        out = []
        for city, ivs in p.cities.get(uid, {}).items():
            clipped = clip(ivs, w.lo, w.hi)
            total = sum(e - s for s, e in clipped)
            if clipped and total >= min_stay_s:
                out.append(
                    CityStay(city, from_epoch(clipped[0][0]), from_epoch(clipped[-1][1]), total)
                )
        out.sort(key=lambda c: (c.first_seen, c.city))
        return out
