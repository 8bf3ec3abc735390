"""One day of records → stay pieces, vectorised with numpy (the build's inner loop).

The same semantics as :func:`fugong.tracing.engines.sql.intervals_in` + ``runs`` +
``split_buckets`` (which the engines use when they compute stays from raw records), written as array
operations because the build has to keep up with billions of events a day: one sort of a packed
64-bit key (uid rank | time | cell rank) replaces the SQL window's sort on 64-character uid strings.

Outputs, per day directory (see :mod:`fugong.tracing.build` for the layout):

* ``grid/part-0.arrow``: the pieces ``(uid, gkey, b, s, e, rs, re, cin, cout)`` — ``[rs, re)``
  is the run of the uid in the grid that the piece was cut from, within the day's partition;
  ``cin`` / ``cout`` (0/1) mark the uid's first run of the day and its last run when it spills
  past midnight, the only runs that can touch a run of the neighbouring partition — sorted by
  ``(gkey, b, s)`` in one uncompressed Arrow IPC batch, with ``grid/index.npy`` giving the first
  row of every ``gkey * 2**20 + b`` key, so that a query memory-maps the file and takes the
  (grid, hour) pairs it needs (:class:`GridFiles`) — Parquet row groups are far too coarse for
  that (a case crosses hundreds of grids);
* ``uid/part-0.parquet`` the same pieces sorted by ``(uid, s)``;
* ``city/part-0.parquet`` city runs sorted by ``(uid, s)``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fugong.tracing.common import Cell, Profile, TracingDataError, gkey, grid_of

GRID_FILE = "part-0.arrow"
GRID_COLUMNS = ("gkey", "b", "s", "e", "rs", "re", "cin", "cout")
_INT8_COLUMNS = ("cin", "cout")
KB_SHIFT = 1 << 20  # b (hours since 1970) < 2**20 until the year 2089

_TS_BITS, _CELL_BITS, _UID_BITS = 18, 21, 24
_UNITS = {"s": 1, "ms": 1000, "us": 10**6, "ns": 10**9}


@dataclass
class CellTable:
    """Cells sorted by id, with their grid key and city code (for vectorised lookups)."""

    ids: np.ndarray
    gkeys: np.ndarray
    city_codes: np.ndarray
    cities: list[str]

    @classmethod
    def of(cls, cells: list[Cell], profile: Profile) -> CellTable:
        cells = sorted(cells, key=lambda c: c.cell_id)
        cities = sorted({c.city for c in cells})
        code = {c: i for i, c in enumerate(cities)}
        return cls(
            np.array([c.cell_id for c in cells], np.int64),
            np.array([gkey(*grid_of(c.lon, c.lat, profile)) for c in cells], np.int64),
            np.array([code[c.city] for c in cells], np.int64),
            cities,
        )


def epoch_seconds(col: Any) -> np.ndarray:
    import pyarrow as pa

    if pa.types.is_timestamp(col.type):
        raw = col.cast(pa.int64()).to_numpy()
        return np.asarray(raw // _UNITS[col.type.unit], np.int64)
    return np.asarray(col.cast(pa.int64()).to_numpy(), np.int64)


def read_span(
    files: list[Path], own: set[Path], lo: int, hi: int, day_lo: int, day_hi: int
) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """Records with ``lo <= ts < hi`` from ``files``: (uid dictionary, uid index, ts, cell).

    Raises when a file of ``own`` (the day's partition) holds a record outside ``[day_lo, day_hi)``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    chunks, tss, cells = [], [], []
    for f in files:
        t = pq.read_table(f, columns=["uid", "ts", "cell_id"], read_dictionary=["uid"])
        ts = epoch_seconds(t.column("ts").combine_chunks())
        if f in own and len(ts) and (ts.min() < day_lo or ts.max() >= day_hi):
            bad = int(((ts < day_lo) | (ts >= day_hi)).sum())
            raise TracingDataError(
                f"{f.parent.name} holds {bad} record(s) of another UTC day; "
                "partitions must match the date of ts"
            )
        keep = (ts >= lo) & (ts < hi)
        uid = t.column("uid").combine_chunks()
        if not pa.types.is_dictionary(uid.type):
            uid = uid.dictionary_encode()
        chunks.append(uid.filter(pa.array(keep)))
        tss.append(ts[keep])
        cells.append(np.asarray(t.column("cell_id").to_numpy(), np.int64)[keep])
    if not chunks:
        return (
            pa.array([], pa.string()),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
        )
    unified = pa.chunked_array(
        [c.cast(pa.dictionary(pa.int32(), pa.string())) for c in chunks]
    ).unify_dictionaries()
    dictionary = unified.chunk(0).dictionary if unified.num_chunks else pa.array([], pa.string())
    idx = np.concatenate(
        [np.asarray(c.indices.to_numpy(zero_copy_only=False), np.int64) for c in unified.chunks]
    )
    return dictionary, idx, np.concatenate(tss), np.concatenate(cells)


def _ranges(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = np.repeat(np.arange(len(counts)), counts)
    offs = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return rows, offs


def _runs(
    code: np.ndarray, key: np.ndarray, s: np.ndarray, e: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge consecutive touching intervals of one uid in the same key (inputs in (uid, s) order,
    disjoint within a uid)."""
    n = len(s)
    if n == 0:
        return code, key, s, e
    brk = np.ones(n, bool)
    brk[1:] = (code[1:] != code[:-1]) | (key[1:] != key[:-1]) | (s[1:] != e[:-1])
    starts = np.flatnonzero(brk)
    ends = np.r_[starts[1:], n] - 1
    return code[starts], key[starts], s[starts], e[ends]


def compact_day(
    files: list[Path],
    own: list[Path],
    a: int,
    b: int,
    cells: CellTable,
    profile: Profile,
    bucket_s: int,
    out: Path,
) -> dict[str, int]:
    """Write the stay pieces of the records with ``a <= ts < b`` under ``out`` (grid/, uid/,
    city/), reading successors up to ``b + max_gap`` from ``files``. Returns counts."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    g = profile.max_gap_s
    dictionary, uidx, ts, cell = read_span(files, set(own), a, b + g, a, b)
    in_day = ts < b
    n_records = int(in_day.sum())
    # Cell lookup; unknown cells are dropped before ordering (and counted for the day).
    pos = np.clip(np.searchsorted(cells.ids, cell), 0, max(len(cells.ids) - 1, 0))
    known = (cells.ids[pos] == cell) if len(cells.ids) else np.zeros(len(cell), bool)
    unknown = int((~known & in_day).sum())
    uidx, ts, pos = uidx[known], ts[known], pos[known]
    # uid rank in string order, so that (rank, ts) order is the (uid, ts) order the files want.
    order = np.asarray(pc.array_sort_indices(dictionary).to_numpy(), np.int64)
    rank_of = np.empty(len(order), np.int64)
    rank_of[order] = np.arange(len(order))
    rank = rank_of[uidx] if len(uidx) else uidx
    span = b + g - a
    if (
        len(order) < (1 << _UID_BITS)
        and len(cells.ids) < (1 << _CELL_BITS)
        and span < (1 << _TS_BITS)
    ):
        packed = (rank << (_TS_BITS + _CELL_BITS)) | ((ts - a) << _CELL_BITS) | pos
        packed.sort()
        if len(packed):  # exact duplicates count once
            packed = packed[np.r_[True, packed[1:] != packed[:-1]]]
        rank = packed >> (_TS_BITS + _CELL_BITS)
        ts = a + ((packed >> _CELL_BITS) & ((1 << _TS_BITS) - 1))
        pos = packed & ((1 << _CELL_BITS) - 1)
    else:  # too many uids or cells to pack: the same order by a (slower) lexsort
        o = np.lexsort((pos, ts, rank))
        rank, ts, pos = rank[o], ts[o], pos[o]
        dup = np.zeros(len(o), bool)
        dup[1:] = (rank[1:] == rank[:-1]) & (ts[1:] == ts[:-1]) & (pos[1:] == pos[:-1])
        rank, ts, pos = rank[~dup], ts[~dup], pos[~dup]
    # Presence interval of every record: [t, min(t_next, t + max_gap)).
    e = ts + g
    same = np.zeros(len(ts), bool)
    same[:-1] = rank[1:] == rank[:-1]
    nxt = np.r_[ts[1:], 0]
    e = np.where(same, np.minimum(e, nxt), e)
    sel = (ts < b) & (e > ts)
    rank, s, e, pos = rank[sel], ts[sel], e[sel], pos[sel]

    out.mkdir(parents=True, exist_ok=True)
    uids = dictionary.take(pa.array(order))  # position = rank
    # Grid runs cut into bucket pieces.
    r_code, r_key, r_s, r_e = _runs(rank, cells.gkeys[pos], s, e)
    nb = (r_e - 1) // bucket_s - r_s // bucket_s + 1
    rows, offs = _ranges(nb)
    p_code, p_key = r_code[rows], r_key[rows]
    p_b = r_s[rows] // bucket_s + offs
    p_s = np.maximum(r_s[rows], p_b * bucket_s)
    p_e = np.minimum(r_e[rows], (p_b + 1) * bucket_s)
    # Every piece carries the bounds of its run, so that a join of pieces can emit each maximal
    # intersection of two runs once (second order) instead of merging touching pieces back.
    p_rs, p_re = r_s[rows], r_e[rows]
    # Only a uid's first run of the day can continue a run of the day before, and only its last
    # run, when it spills past midnight, can continue into the next day: everywhere else runs of
    # one uid in one grid never touch, which lets second order skip merging all but these.
    new_uid = np.r_[True, r_code[1:] != r_code[:-1]] if len(r_code) else np.zeros(0, bool)
    r_cin = new_uid.astype(np.int8)
    r_cout = (np.r_[new_uid[1:], True][: len(r_code)] & (r_e >= b)).astype(np.int8)

    def table(code: np.ndarray, cols: dict[str, Any]) -> Any:
        uid = pa.DictionaryArray.from_arrays(pa.array(code.astype(np.int32)), uids)
        return pa.table({"uid": uid, **cols})

    # Snappy: the cheapest codec to write, and every Parquet reader (DuckDB, Spark) has it.
    opts: dict[str, Any] = {"compression": "snappy", "store_schema": False}
    by_uid = table(
        p_code,
        {
            "gkey": pa.array(p_key),
            "b": pa.array(p_b),
            "s": pa.array(p_s),
            "e": pa.array(p_e),
            "rs": pa.array(p_rs),
            "re": pa.array(p_re),
            "cin": pa.array(r_cin[rows]),
            "cout": pa.array(r_cout[rows]),
        },
    )
    kb = p_key * KB_SHIFT + p_b
    o = np.lexsort((p_s, kb))
    kb_sorted = kb[o]
    keys, starts = np.unique(kb_sorted, return_index=True)
    # City runs (no buckets: itineraries only sum and bound them).
    c_code, c_city, c_s, c_e = _runs(rank, cells.city_codes[pos], s, e)
    city_names = pa.array(cells.cities, pa.string())
    city_col = pa.DictionaryArray.from_arrays(pa.array(c_city.astype(np.int32)), city_names)
    by_city = table(c_code, {"city": city_col, "s": pa.array(c_s), "e": pa.array(c_e)})
    for kind in ("grid", "uid", "city"):
        (out / kind).mkdir(exist_ok=True)
    np.save(
        out / "grid" / "index.npy",
        np.stack([np.r_[keys, -1], np.r_[starts, len(kb_sorted)]], axis=1).astype(np.int64),
    )
    by_grid = by_uid.take(pa.array(o)).combine_chunks()

    def write_ipc() -> None:
        with pa.ipc.new_file(out / "grid" / GRID_FILE, by_grid.schema) as w:
            w.write_table(by_grid, max_chunksize=max(1, by_grid.num_rows))

    def write_parquet(table: Any, path: Path) -> None:
        # Plain strings, not the Arrow dictionary: Parquet would repeat the whole day's dictionary
        # (every uid of the city) in each row group — 2 MB per 8192 rows at 34 000 uids, which
        # made the files 20x larger and their writing the bulk of the build. From plain strings
        # each row group gets a dictionary of the few uids it holds (the rows are uid-sorted).
        plain = table.set_column(0, "uid", table.column("uid").cast(pa.string()))
        pq.write_table(plain, path, row_group_size=8192, **opts)

    # Parquet encoding releases the GIL: the files are written side by side.
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [
            pool.submit(write_parquet, by_uid, out / "uid" / "part-0.parquet"),
            pool.submit(write_parquet, by_city, out / "city" / "part-0.parquet"),
            pool.submit(write_ipc),
        ]
        for f in futures:
            f.result()
    return {
        "records": n_records,
        "unknown_cell_records": unknown,
        "grid_stays": len(p_s),
        "grid_runs": len(r_s),
        "city_runs": len(c_s),
    }


class GridFiles:
    """The memory-mapped grid files of a query window, with one integer id per uid across them.

    Each day's file dictionary-encodes ``uid`` with its own dictionary; an id here is a position
    in :attr:`uids`, the sorted union of those dictionaries (a few tens of thousands of strings,
    unified in milliseconds), so that queries join and group on ``int32`` ids instead of
    64-character pseudonyms. Tables handed out have columns ``uid`` (the id) and
    :data:`GRID_COLUMNS`.
    """

    def __init__(self, files: list[Path]) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        self._batches: list[Any] = []
        self._keys: list[np.ndarray] = []
        self._starts: list[np.ndarray] = []
        dictionaries = []
        for f in files:
            # The mapping stays open while the batches (and slices of them) are alive.
            reader = pa.ipc.open_file(pa.memory_map(str(f)))
            if reader.num_record_batches == 0:
                continue
            batch = reader.get_batch(0)
            index = np.load(f.parent / "index.npy")
            self._batches.append(batch)
            self._keys.append(index[:-1, 0])
            self._starts.append(index[:, 1])
            dictionaries.append(batch.column(0).dictionary)
        if dictionaries:
            every = pc.unique(pa.concat_arrays(dictionaries))
            self.uids = every.take(pc.array_sort_indices(every))
        else:
            self.uids = pa.array([], pa.string())
        self._remap = [
            np.asarray(pc.index_in(d, value_set=self.uids).to_numpy(), np.int32)
            for d in dictionaries
        ]

    def ids_of(self, uids: list[str]) -> np.ndarray:
        """The ids of ``uids`` (``-1`` for a uid not in the files)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        found = pc.index_in(pa.array(uids, pa.string()), value_set=self.uids)
        return np.asarray(found.fill_null(-1).to_numpy(), np.int64)

    def names(self, ids: Any) -> list[str]:
        """The uids of ``ids``."""
        import pyarrow as pa

        out: list[str] = self.uids.take(pa.array(np.asarray(ids, np.int64))).to_pylist()
        return out

    def _schema(self) -> Any:
        import pyarrow as pa

        return pa.schema(
            [("uid", pa.int32())]
            + [(c, pa.int8() if c in _INT8_COLUMNS else pa.int64()) for c in GRID_COLUMNS]
        )

    def _local(self, i: int) -> np.ndarray:
        """Batch ``i``'s uid column as positions in its file's dictionary (no copy)."""
        return np.asarray(self._batches[i].column(0).indices.to_numpy())

    def _table(self, parts: list[tuple[int, np.ndarray | None]]) -> Any:
        """For each ``(i, rows)``: rows ``rows`` of batch ``i`` (``None``: all of them) with uid
        replaced by its id. Selected rows are gathered into new arrays; a whole batch keeps its
        memory-mapped columns (no copy) and only gets a new uid column."""
        import pyarrow as pa

        schema = self._schema()
        batches = []
        for i, rows in parts:
            batch = self._batches[i]
            local = self._local(i)
            uid = self._remap[i][local if rows is None else local[rows]]
            cols = [batch.column(j) for j in range(1, 1 + len(GRID_COLUMNS))]
            if rows is not None:
                cols = [pa.array(np.asarray(c.to_numpy())[rows]) for c in cols]
            batches.append(pa.RecordBatch.from_arrays([pa.array(uid), *cols], schema=schema))
        return pa.Table.from_batches(batches, schema)

    def covering(self, kbs: np.ndarray) -> Any:
        """At least the pieces whose ``gkey * 2**20 + b`` is in ``kbs``, found by an index lookup
        per file; callers join on ``(gkey, b)``, so other rows only cost scanning. A file of
        which most rows are wanted is handed over whole, without copying — a second-order query
        often wants nearly every slice."""
        kbs = np.unique(np.asarray(kbs, np.int64))
        parts: list[tuple[int, np.ndarray | None]] = []
        for i, (keys, starts) in enumerate(zip(self._keys, self._starts, strict=True)):
            if not len(keys):
                continue
            at = np.searchsorted(keys, kbs)
            hit = at[(at < len(keys)) & (keys[np.minimum(at, len(keys) - 1)] == kbs)]
            if not len(hit):
                continue
            lo, hi = starts[hit], starts[hit + 1]
            if (hi - lo).sum() > starts[-1] // 2:
                parts.append((i, None))
            else:
                rows, offs = _ranges(hi - lo)
                parts.append((i, lo[rows] + offs))
        return self._table(parts)

    def rows_of(self, ids: np.ndarray) -> Any:
        """Every piece of the uids ``ids`` (a scan of the id column, no strings touched)."""
        member = np.zeros(len(self.uids) + 1, bool)
        member[np.asarray(ids, np.int64)] = True
        parts: list[tuple[int, np.ndarray | None]] = []
        for i in range(len(self._batches)):
            rows = np.flatnonzero(member[self._remap[i]][self._local(i)])
            if len(rows):
                parts.append((i, rows))
        return self._table(parts)
