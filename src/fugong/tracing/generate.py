"""A seeded synthetic Guangzhou-like city in the tracing data contract.

What it models (enough for the queries to meet realistic data, not a mobility model):

* cells: dense in the centre, sparse at the edge of a ~70 km city, plus a few other cities
  (neighbours and far ones) for itineraries;
* subscribers with a home, a workplace (most of them) and a changing third place; weekdays commute
  home → work → (sometimes an evening place) → home, weekends go out once;
* records: a periodic location update every 54 minutes (per-subscriber phase), random call / SMS /
  data events weighted to waking hours, handovers every one to two minutes while moving, ping-pong
  between a place's cell and a neighbouring one, and a few exact duplicates;
* trips: some subscribers spend one to four days in another city.

The simulated day runs from 04:00 to 04:00 Beijing time (UTC+8), when nearly everyone is at home;
its records are written into the UTC date partitions they fall in. Work is vectorised with numpy per
day and per block of subscribers, so memory stays bounded however many days are generated.
Same arguments and seed → the same files.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from fugong.tracing.common import DAY_S, day_start

log = logging.getLogger(__name__)

KM_PER_DEG = 111.32
LOCAL_OFFSET_S = 8 * 3600  # Beijing time
SIM_DAY_START_LOCAL_S = 4 * 3600  # the simulated day starts at 04:00 local
LU_PERIOD_S = 54 * 60
RASTER_KM = 0.4
GENERATOR_KEY = b"fugong-synthetic-city"

# (name, lon, lat, number of cells, spread in km); the first is the traced city.
CITIES: tuple[tuple[str, float, float, int, float], ...] = (
    ("广州市", 113.2644, 23.1291, 0, 6.0),
    ("佛山市", 113.1214, 23.0215, 120, 4.0),
    ("深圳市", 114.0579, 22.5431, 160, 5.0),
    ("东莞市", 113.7518, 23.0205, 100, 4.0),
    ("北京市", 116.4074, 39.9042, 120, 6.0),
    ("上海市", 121.4737, 31.2304, 120, 6.0),
    ("武汉市", 114.3055, 30.5928, 80, 5.0),
)


@dataclass
class GenerateReport:
    records: int
    subscribers: int
    cells: int
    days: int
    seconds: float
    files: int

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "subscribers": self.subscribers,
            "cells": self.cells,
            "days": self.days,
            "files": self.files,
            "seconds": round(self.seconds, 3),
            "records_per_s": round(self.records / self.seconds) if self.seconds else None,
        }


class City:
    """Cells of all cities, in km around each city's centre, with a nearest-cell raster for the
    traced city (handovers need a nearest cell for millions of points per day)."""

    def __init__(self, rng: np.random.Generator, main_cells: int) -> None:
        xs, ys, city_ix = [], [], []
        for ci, (_, _, _, n, spread) in enumerate(CITIES):
            if ci == 0:
                n = main_cells
                dense = int(n * 0.6)
                x = np.concatenate([rng.normal(0, spread, dense), rng.uniform(-35, 35, n - dense)])
                y = np.concatenate([rng.normal(0, spread, dense), rng.uniform(-35, 35, n - dense)])
                x, y = np.clip(x, -38, 38), np.clip(y, -38, 38)
            else:
                x, y = rng.normal(0, spread, n), rng.normal(0, spread, n)
            xs.append(x)
            ys.append(y)
            city_ix.append(np.full(n, ci, np.int16))
        self.x = np.concatenate(xs)
        self.y = np.concatenate(ys)
        self.city = np.concatenate(city_ix)
        self.n = len(self.x)
        self.cell_id = (460_00 * 10**6 + np.arange(self.n, dtype=np.int64) * 7 + 11).astype(
            np.int64
        )
        self.main = np.flatnonzero(self.city == 0)
        lon_c = np.array([c[1] for c in CITIES])[self.city]
        lat_c = np.array([c[2] for c in CITIES])[self.city]
        self.lat = lat_c + self.y / KM_PER_DEG
        self.lon = lon_c + self.x / (KM_PER_DEG * np.cos(np.radians(lat_c)))
        self._raster()

    def _raster(self) -> None:
        half = 40.0
        self.r_n = int(2 * half / RASTER_KM) + 1
        g = -half + RASTER_KM * np.arange(self.r_n)
        gx, gy = np.meshgrid(g, g, indexing="ij")
        px, py = gx.ravel().astype(np.float32), gy.ravel().astype(np.float32)
        cx, cy = self.x[self.main].astype(np.float32), self.y[self.main].astype(np.float32)
        out = np.empty(len(px), np.int64)
        step = 2048
        for i in range(0, len(px), step):
            d = (px[i : i + step, None] - cx[None, :]) ** 2 + (py[i : i + step, None] - cy) ** 2
            out[i : i + step] = self.main[np.argmin(d, axis=1)]
        self.r_cell = out

    def nearest(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Index of the traced-city cell nearest to each point (to raster precision)."""
        half = 40.0
        i = np.clip(np.rint((x + half) / RASTER_KM), 0, self.r_n - 1).astype(np.int64)
        j = np.clip(np.rint((y + half) / RASTER_KM), 0, self.r_n - 1).astype(np.int64)
        out: np.ndarray = self.r_cell[i * self.r_n + j]
        return out

    def write(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        names = np.array([c[0] for c in CITIES], dtype=object)[self.city]
        pq.write_table(
            pa.table(
                {
                    "cell_id": pa.array(self.cell_id, pa.int64()),
                    "lon": pa.array(self.lon, pa.float64()),
                    "lat": pa.array(self.lat, pa.float64()),
                    "city": pa.array(names.tolist(), pa.string()),
                }
            ),
            path,
        )


def synthetic_uids(n: int, seed: int) -> list[str]:
    """Pseudonyms of made-up phone numbers, shaped like what ingest writes (hex HMAC-SHA256)."""
    from fugong.tracing.ingest import pseudonymise

    key = GENERATOR_KEY + str(seed).encode()
    return [pseudonymise(f"1{38 + i % 12}{i:08d}"[:11], key) for i in range(n)]


def _ranges(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows with ``counts[i]`` items: (row index, 0..count-1) flattened."""
    rows = np.repeat(np.arange(len(counts)), counts)
    offs = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return rows, offs


class Population:
    """Subscribers' fixed places and trip state."""

    def __init__(self, rng: np.random.Generator, city: City, n: int) -> None:
        self.n = n

        def spot(sigma: float, share: float, m: int) -> tuple[np.ndarray, np.ndarray]:
            dense = rng.random(m) < share
            x = np.where(dense, rng.normal(0, sigma, m), rng.uniform(-33, 33, m))
            y = np.where(dense, rng.normal(0, sigma, m), rng.uniform(-33, 33, m))
            return np.clip(x, -38, 38), np.clip(y, -38, 38)

        self.hx, self.hy = spot(8.0, 0.65, n)
        self.wx, self.wy = spot(4.0, 0.8, n)
        self.worker = rng.random(n) < 0.75
        self.home = city.nearest(self.hx, self.hy)
        self.home_alt = city.nearest(
            self.hx + rng.normal(0, 0.5, n), self.hy + rng.normal(0, 0.5, n)
        )
        self.work = city.nearest(self.wx, self.wy)
        self.work_alt = city.nearest(
            self.wx + rng.normal(0, 0.5, n), self.wy + rng.normal(0, 0.5, n)
        )
        self.lu_phase = rng.integers(0, LU_PERIOD_S, n)
        self.activity = np.clip(rng.lognormal(math.log(18), 0.6, n), 2, 150)
        self.speed_kmh = rng.uniform(18, 35, n)
        self.trip_left = np.zeros(n, np.int32)
        self.trip_city = np.zeros(n, np.int16)
        # Popular third places (malls, restaurants): biased to the centre.
        px, py = spot(5.0, 0.85, max(50, n // 200))
        self.poi_x, self.poi_y = px, py
        self.poi_cell = city.nearest(px, py)

    def advance_trips(self, rng: np.random.Generator) -> None:
        self.trip_left = np.maximum(self.trip_left - 1, 0)
        start = (self.trip_left == 0) & (rng.random(self.n) < 0.012)
        self.trip_left[start] = rng.integers(1, 5, int(start.sum()))
        self.trip_city[start] = rng.integers(1, len(CITIES), int(start.sum())).astype(np.int16)


_HOUR_WEIGHTS = np.array(
    # local hours 04..27 (the simulated day): little at night, peaks at noon and evening
    [1, 1, 3, 6, 8, 8, 8, 9, 10, 9, 8, 8, 8, 9, 10, 11, 11, 10, 8, 5, 3, 2, 1, 1],
    dtype=float,
)


def _day_block(
    rng: np.random.Generator,
    city: City,
    pop: Population,
    subs: np.ndarray,
    t0: int,
    weekend: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Records ``(subscriber, ts, cell index)`` of one simulated day for the subscribers ``subs``;
    ``t0`` is the UTC epoch second the simulated day starts at."""
    m = len(subs)
    hour = 3600.0
    travelling = pop.trip_left[subs] > 0
    # Places of the day, as (x, y) km in the traced city and a cell index.
    p0x, p0y, c0 = pop.hx[subs], pop.hy[subs], pop.home[subs]
    going_out = rng.random(m) < (0.7 if weekend else 0.35)
    poi = rng.integers(0, len(pop.poi_x), m)
    p2x = np.where(going_out, pop.poi_x[poi], p0x)
    p2y = np.where(going_out, pop.poi_y[poi], p0y)
    c2 = np.where(going_out, pop.poi_cell[poi], c0)
    works = pop.worker[subs] & (not weekend)
    poi1 = rng.integers(0, len(pop.poi_x), m)
    p1x = np.where(works, pop.wx[subs], pop.poi_x[poi1])
    p1y = np.where(works, pop.wy[subs], pop.poi_y[poi1])
    c1 = np.where(works, pop.work[subs], pop.poi_cell[poi1])
    stays_in = ~works & (rng.random(m) < 0.3)  # some stay home all day
    p1x, p1y, c1 = (
        np.where(stays_in, p0x, p1x),
        np.where(stays_in, p0y, p1y),
        np.where(stays_in, c0, c1),
    )
    # Durations (local seconds from 04:00).
    speed = pop.speed_kmh[subs] / hour
    d01 = np.hypot(p1x - p0x, p1y - p0y) / speed + np.where(stays_in, 0, 300)
    d12 = np.hypot(p2x - p1x, p2y - p1y) / speed + np.where(going_out, 300, 0)
    d20 = np.hypot(p0x - p2x, p0y - p2y) / speed + np.where(going_out, 300, 0)
    leave0 = np.where(works, rng.normal(3.5, 0.6, m), rng.normal(6.0, 1.5, m)) * hour
    leave1 = np.where(works, rng.normal(14.0, 1.0, m), leave0 / hour + rng.uniform(2, 5, m)) * hour
    stay2 = np.where(going_out, rng.uniform(1.0, 3.0, m), 0.0) * hour
    b = np.empty((m, 8))
    b[:, 0] = 0
    b[:, 1] = np.clip(leave0, 600, 20 * hour)
    b[:, 2] = b[:, 1] + d01
    b[:, 3] = np.maximum(b[:, 2], leave1)
    b[:, 4] = b[:, 3] + d12
    b[:, 5] = b[:, 4] + stay2
    b[:, 6] = b[:, 5] + d20
    b[:, 7] = DAY_S
    b[:, 1:7] = np.minimum(b[:, 1:7], DAY_S - 1)

    # Events: periodic location updates, activity, handovers while moving.
    phase = (pop.lu_phase[subs] - t0) % LU_PERIOD_S
    n_lu = (DAY_S - 1 - phase) // LU_PERIOD_S + 1
    r_lu, o_lu = _ranges(n_lu)
    t_lu = phase[r_lu] + o_lu * LU_PERIOD_S
    n_act = rng.poisson(pop.activity[subs])
    r_act, _ = _ranges(n_act)
    hours = rng.choice(24, size=len(r_act), p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    t_act = hours * 3600 + rng.integers(0, 3600, len(r_act))
    move_r, move_t = [], []
    for seg in (1, 3, 5):
        dur = b[:, seg + 1] - b[:, seg]
        n_ho = np.where(travelling, 0, (dur // 90).astype(np.int64))
        r, o = _ranges(n_ho)
        move_r.append(r)
        move_t.append(b[r, seg] + (o + rng.random(len(r))) * 90)
    rows = np.concatenate([r_lu, r_act, *move_r])
    u = np.concatenate([t_lu, t_act, *move_t]).astype(np.int64)
    u = np.clip(u, 0, DAY_S - 1)

    # Where each event happens.
    bb = b[rows]
    seg = (u[:, None] >= bb[:, 1:7]).sum(axis=1)
    cell = np.empty(len(rows), np.int64)
    places = ((c0, pop.home_alt[subs]), (c1, None), (c2, None), (c0, pop.home_alt[subs]))
    for s_ix, (cells, alt) in zip((0, 2, 4, 6), places, strict=True):
        sel = seg == s_ix
        cell[sel] = cells[rows[sel]]
        if alt is not None:
            ping = sel & (rng.random(len(rows)) < 0.12)
            cell[ping] = alt[rows[ping]]
    at_work = (seg == 2) & works[rows] & (rng.random(len(rows)) < 0.12)
    cell[at_work] = pop.work_alt[subs][rows[at_work]]
    for s_ix, (ax, ay, bx, by) in zip(
        (1, 3, 5), ((p0x, p0y, p1x, p1y), (p1x, p1y, p2x, p2y), (p2x, p2y, p0x, p0y)), strict=True
    ):
        sel = np.flatnonzero(seg == s_ix)
        rr = rows[sel]
        f = (u[sel] - bb[sel, s_ix]) / np.maximum(bb[sel, s_ix + 1] - bb[sel, s_ix], 1)
        cell[sel] = city.nearest(ax[rr] + f * (bx[rr] - ax[rr]), ay[rr] + f * (by[rr] - ay[rr]))

    # Travellers: all of the day in the destination city, at three of its cells.
    trav = travelling[rows]
    if trav.any():
        dest = pop.trip_city[subs][rows[trav]]
        city_cells = [np.flatnonzero(city.city == ci) for ci in range(len(CITIES))]
        pick = (subs[rows[trav]].astype(np.int64) * 7919 + seg[trav] * 104729) % 1_000_003
        out = np.empty(int(trav.sum()), np.int64)
        for ci in range(1, len(CITIES)):
            here = dest == ci
            out[here] = city_cells[ci][pick[here] % len(city_cells[ci])]
        cell[trav] = out

    # A few exact duplicates, as feeds deliver them.
    dup = np.flatnonzero(rng.random(len(rows)) < 0.005)
    rows = np.concatenate([rows, rows[dup]])
    u = np.concatenate([u, u[dup]])
    cell = np.concatenate([cell, cell[dup]])
    return subs[rows], t0 + u, cell


def generate(
    out_dir: Path,
    subscribers: int,
    days: int,
    seed: int = 0,
    start: date = date(2022, 11, 1),
    cells: int | None = None,
    block: int = 100_000,
) -> GenerateReport:
    """Write ``cells.parquet`` and ``records/date=…/*.parquet`` for ``days`` UTC days from
    ``start``; an existing ``records/`` in ``out_dir`` is replaced."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if subscribers <= 0 or days <= 0:
        raise ValueError("subscribers and days must be positive")
    began = time.perf_counter()
    rng = np.random.default_rng([seed, 0])
    city = City(rng, cells or int(min(20_000, max(300, 2_000 + subscribers // 40))))
    pop = Population(rng, city, subscribers)
    uids = pa.array(synthetic_uids(subscribers, seed), pa.string())
    out_dir.mkdir(parents=True, exist_ok=True)
    city.write(out_dir / "cells.parquet")
    shutil.rmtree(out_dir / "records", ignore_errors=True)
    first, end = day_start(start), day_start(start) + days * DAY_S
    total = files = 0
    # Simulated day k starts at 04:00 local of calendar day start - 1 + k.
    for k in range(days + 1):
        t0 = first - DAY_S + k * DAY_S + SIM_DAY_START_LOCAL_S - LOCAL_OFFSET_S
        local_day = start + timedelta(days=k - 1)
        weekend = local_day.weekday() >= 5
        day_rng = np.random.default_rng([seed, 1, k])
        pop.advance_trips(day_rng)
        for bi, lo in enumerate(range(0, subscribers, block)):
            subs = np.arange(lo, min(subscribers, lo + block))
            brng = np.random.default_rng([seed, 2, k, bi])
            s, ts, c = _day_block(brng, city, pop, subs, t0, weekend)
            keep = (ts >= first) & (ts < end)
            s, ts, c = s[keep], ts[keep], c[keep]
            day_no = (ts // DAY_S).astype(np.int64)
            for dn in np.unique(day_no):
                sel = day_no == dn
                d = date(1970, 1, 1) + timedelta(days=int(dn))
                table = pa.table(
                    {
                        "uid": pa.DictionaryArray.from_arrays(
                            pa.array(s[sel].astype(np.int32)), uids
                        ),
                        "ts": pa.array(ts[sel], pa.int64()).cast(pa.timestamp("s", tz="UTC")),
                        "cell_id": pa.array(city.cell_id[c[sel]], pa.int64()),
                    }
                )
                part = out_dir / "records" / f"date={d.isoformat()}"
                part.mkdir(parents=True, exist_ok=True)
                pq.write_table(table, part / f"part-{k:03d}-{bi:03d}.parquet", store_schema=False)
                total += int(sel.sum())
                files += 1
        log.info("generated simulated day %d/%d: %d records so far", k, days, total)
    return GenerateReport(total, subscribers, city.n, days, time.perf_counter() - began, files)
