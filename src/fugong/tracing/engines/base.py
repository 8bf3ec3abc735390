"""The one interface every tracing engine implements, and the assembly steps they share.

An engine answers four questions over a data directory (``cells.parquet`` + ``records/``, and for
the fast engines the ``stays/`` built by :mod:`fugong.tracing.build`). Answers are plain frozen
dataclasses from :mod:`fugong.tracing.common`, ordered deterministically so that engines can be
compared row for row:

* trajectory: by ``(start, grid)``, each stay naming its grid's city (one rule for every
  engine: :func:`fugong.tracing.common.grid_cities`);
* companions / second order: by ``(first_contact, uid)``;
* itinerary: by ``(first_seen, city)``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from fugong.tracing.common import (
    DEFAULT_DAYS,
    DEFAULT_MIN_STAY_S,
    CityStay,
    Companion,
    CompanionQuery,
    Profile,
    TrajectoryStay,
    from_epoch,
    grid_centre,
    grid_label,
    ungkey,
)


@runtime_checkable
class Engine(Protocol):
    """A backend answering the tracing queries; see the module docstring for the orderings."""

    name: str

    def trajectory(
        self,
        data_dir: Path,
        uid: str,
        at: datetime,
        days: int = DEFAULT_DAYS,
        profile: Profile | None = None,
    ) -> list[TrajectoryStay]: ...

    def companions(self, data_dir: Path, query: CompanionQuery) -> list[Companion]: ...

    def second_order(self, data_dir: Path, query: CompanionQuery) -> list[Companion]: ...

    def itinerary(
        self,
        data_dir: Path,
        uid: str,
        at: datetime,
        days: int = DEFAULT_DAYS,
        min_stay_s: int = DEFAULT_MIN_STAY_S,
        profile: Profile | None = None,
    ) -> list[CityStay]: ...


# First-order rows the SQL engines hand back are maximal intervals (uid, gkey, start, end), one
# continuous intersection with the case each; second order is folded in SQL (second_order_rows).


def companions_from_overlaps(
    rows: Iterable[tuple[str, int, int, int]], min_overlap_s: int
) -> list[Companion]:
    """Fold maximal intersection intervals into one :class:`Companion` per qualifying uid."""
    by_uid: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for uid, key, s, e in rows:
        by_uid[uid].append((int(key), int(s), int(e)))
    out = []
    for uid, ivs in by_uid.items():
        qualifying = [(k, s, e) for k, s, e in ivs if e - s >= min_overlap_s]
        if not qualifying:
            continue
        out.append(
            Companion(
                uid=uid,
                longest_overlap_s=max(e - s for _, s, e in ivs),
                total_overlap_s=sum(e - s for _, s, e in ivs),
                first_contact=from_epoch(min(s for _, s, _ in qualifying)),
                grids=tuple(sorted({grid_label(k) for k, _, _ in qualifying})),
            )
        )
    out.sort(key=lambda c: (c.first_contact, c.uid))
    return out


def long_stay_filter(
    companions: list[Companion],
    totals: dict[tuple[str, str], int],
    case: str,
    min_total_stay_s: int | None,
) -> list[Companion]:
    """Keep companions where the case or the companion stayed more than ``min_total_stay_s`` in a
    grid of contact; ``totals`` maps ``(uid, "gx:gy")`` to total presence in the window."""
    if min_total_stay_s is None:
        return companions
    return [
        c
        for c in companions
        if any(
            max(totals.get((case, g), 0), totals.get((c.uid, g), 0)) > min_total_stay_s
            for g in c.grids
        )
    ]


def second_order_rows(rows: Iterable[tuple[Any, ...]]) -> list[Companion]:
    """Second-order companions from ``(uid, longest, total, first_s, vias, gkeys)`` rows.

    Per (via, uid) pair that has a qualifying interval: longest, total and first qualifying
    contact as for first order; per uid over its qualifying vias: longest is the max, total the
    sum, first contact the min, grids the union of the qualifying grids.
    """
    out = [
        Companion(
            uid=str(uid),
            longest_overlap_s=int(longest),
            total_overlap_s=int(total),
            first_contact=from_epoch(int(first_s)),
            grids=tuple(sorted({grid_label(int(k)) for k in gkeys})),
            via=tuple(sorted(str(v) for v in vias)),
        )
        for uid, longest, total, first_s, vias, gkeys in rows
    ]
    out.sort(key=lambda c: (c.first_contact, c.uid))
    return out


def trajectory_from_intervals(
    rows: Iterable[tuple[int, int, int]], profile: Profile, cities: Mapping[int, str]
) -> list[TrajectoryStay]:
    """``(gkey, start, end)`` maximal intervals → trajectory rows ordered by ``(start, grid)``;
    ``cities`` maps a grid key to its city (:func:`~fugong.tracing.common.data_grid_cities`).
    Every stay's grid holds a cell, and the stays are only read while built from the current
    cells, so every key is in ``cities``."""
    out = []
    for key, s, e in sorted((int(k), int(s), int(e)) for k, s, e in rows):
        lon, lat = grid_centre(*ungkey(key), profile)
        out.append(
            TrajectoryStay(
                grid_label(key), cities[key], from_epoch(s), from_epoch(e), e - s, lon, lat
            )
        )
    out.sort(key=lambda t: (t.start, t.grid))
    return out


def itinerary_from_intervals(
    rows: Iterable[tuple[str, int, int]], min_stay_s: int
) -> list[CityStay]:
    """``(city, start, end)`` disjoint intervals → cities with at least ``min_stay_s`` in total."""
    by_city: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for city, s, e in rows:
        by_city[city].append((int(s), int(e)))
    out = []
    for city, ivs in by_city.items():
        total = sum(e - s for s, e in ivs)
        if total >= min_stay_s:
            out.append(
                CityStay(
                    city,
                    from_epoch(min(s for s, _ in ivs)),
                    from_epoch(max(e for _, e in ivs)),
                    total,
                )
            )
    out.sort(key=lambda c: (c.first_seen, c.city))
    return out
