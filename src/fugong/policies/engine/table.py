"""The enterprise table: typed numpy columns, each with a mask of unknown (empty) cells.

Column layouts (what the evaluator relies on):

* ``bool``   -> ``bool`` array
* ``number`` -> ``float64`` array
* ``date``   -> ``int64`` days since 1970-01-01
* ``enum`` / ``text`` -> ``int32`` codes into ``categories`` (enum: the declared values, in order)

Where a cell is unknown its value slot holds a harmless filler (0, False, the first category) and
``unknown[row]`` is True; ``unknown`` is None when the column has no unknown cell at all, which
is what keeps the evaluator's fast path free of mask arithmetic.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from fugong.core.uscc import CHARSET, WEIGHTS, USCCError
from fugong.core.uscc import validate as validate_uscc
from fugong.policies.engine.errors import InputError

EPOCH: Final = dt.date(1970, 1, 1)
FACT_TYPES: Final = frozenset({"id", "text", "enum", "bool", "number", "date"})
# ASCII digits only: \d would also let "٣" through, and float() would read it as 3.
_NUMBER_RE: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TRUE: Final = frozenset({"true", "1", "yes", "y", "是"})
_FALSE: Final = frozenset({"false", "0", "no", "n", "否"})


@dataclass(frozen=True)
class FactSpec:
    """One input column as the pack declares it.

    ``kind`` is one of FACT_TYPES; ``values`` lists an enum's values; a ``number`` may require
    an ``integer`` and a ``minimum``. ``label`` is the Chinese name shown to officials.
    """

    name: str
    kind: str
    label: str = ""
    description: str = ""
    values: tuple[str, ...] = ()
    integer: bool = False
    minimum: float | None = None


@dataclass(frozen=True)
class Column:
    """Values plus the unknown mask (None: every cell known); ``categories`` for enum/text."""

    values: NDArray[Any]
    unknown: NDArray[np.bool_] | None = None
    categories: tuple[str, ...] | None = None

    def take(self, rows: NDArray[np.intp]) -> Column:
        unknown = None if self.unknown is None else self.unknown[rows]
        if unknown is not None and not unknown.any():
            unknown = None
        return Column(self.values[rows], unknown, self.categories)


@dataclass(frozen=True)
class Table:
    """``n`` enterprises: their ids (USCC) in row order and the typed columns by fact name."""

    ids: tuple[str, ...]
    columns: Mapping[str, Column] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.ids)

    def take(self, rows: Sequence[int] | NDArray[np.intp]) -> Table:
        """A table of the given rows only (used for explanations of a few rows)."""
        idx = np.asarray(rows, dtype=np.intp)
        return Table(
            tuple(self.ids[i] for i in idx), {k: c.take(idx) for k, c in self.columns.items()}
        )


# --- single values --------------------------------------------------------------------------------


def parse_cell(spec: FactSpec, text: str) -> Any:
    """Parse one CSV cell for ``spec``; None for an empty cell (unknown). Raises ValueError."""
    s = text.strip()
    if s == "":
        return None
    if spec.kind == "bool":
        low = s.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"{s!r} is not a yes/no value (true/false, 1/0, yes/no, 是/否)")
    if spec.kind == "number":
        if not _NUMBER_RE.fullmatch(s):
            raise ValueError(f"{s!r} is not a number (plain digits, '.' for decimals)")
        return check_number(spec, float(s))
    if spec.kind == "date":
        return parse_date(s)
    if spec.kind == "enum":
        low = s.lower()
        if low not in spec.values:
            raise ValueError(f"{s!r} is not one of {', '.join(spec.values)}")
        return low
    if spec.kind == "id":
        try:
            return validate_uscc(s)
        except USCCError as exc:
            raise ValueError(str(exc)) from None
    return s


def parse_date(s: str) -> dt.date:
    """Parse ``YYYY-MM-DD`` strictly (no times, no other layouts)."""
    if not _DATE_RE.fullmatch(s):
        raise ValueError(f"{s!r} is not a date (YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        raise ValueError(f"{s!r} is not a real date") from None


def check_number(spec: FactSpec, value: float) -> float:
    if spec.integer and value != int(value):
        raise ValueError(f"{value:g} is not a whole number")
    if spec.minimum is not None and value < spec.minimum:
        raise ValueError(f"{value:g} is below the minimum {spec.minimum:g}")
    return value


def coerce(spec: FactSpec, value: Any) -> Any:
    """Turn a native value (from YAML scenarios or Python callers) into the column's value type.

    None means unknown. Strings go through :func:`parse_cell`, so both paths accept the same text.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return parse_cell(spec, value)
    if spec.kind == "bool" and isinstance(value, bool):
        return value
    if spec.kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} is not a finite number")
        return check_number(spec, float(value))
    if spec.kind == "date" and isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    raise ValueError(f"{value!r} is not a valid {spec.kind} value")


# --- building columns -----------------------------------------------------------------------------


def build_column(spec: FactSpec, cells: Sequence[Any]) -> Column:
    """Build a column from parsed cell values (None = unknown)."""
    n = len(cells)
    unknown = np.fromiter((c is None for c in cells), dtype=np.bool_, count=n)
    mask = unknown if unknown.any() else None
    if spec.kind == "bool":
        return Column(np.fromiter((c is True for c in cells), np.bool_, n), mask)
    if spec.kind == "number":
        return Column(np.fromiter((0.0 if c is None else c for c in cells), np.float64, n), mask)
    if spec.kind == "date":
        days = ((c - EPOCH).days if c is not None else 0 for c in cells)
        return Column(np.fromiter(days, np.int64, n), mask)
    if spec.kind == "enum":
        cats = spec.values
    else:
        cats = tuple(sorted({c for c in cells if c is not None}))
    index = {c: i for i, c in enumerate(cats)}
    codes = np.fromiter((0 if c is None else index[c] for c in cells), np.int32, n)
    return Column(codes, mask, cats)


def table_from_records(
    records: Sequence[Mapping[str, Any]], facts: Mapping[str, FactSpec], id_fact: str
) -> Table:
    """Build a table from dict rows (scenario tests, API callers). Missing keys are unknown.

    Raises InputError naming the row (1-based) and the field for a value of the wrong kind.
    """
    ids: list[str] = []
    cells: dict[str, list[Any]] = {name: [] for name in facts if name != id_fact}
    for row, rec in enumerate(records, start=1):
        for key in rec:
            if key not in facts:
                raise InputError(f"unknown field {key!r}", row=row, column=key)
        raw_id = rec.get(id_fact)
        if raw_id is None:
            ids.append(f"row-{row}")
        else:
            try:
                ids.append(str(parse_cell(facts[id_fact], str(raw_id))))
            except ValueError as exc:
                raise InputError(str(exc), row=row, column=id_fact) from None
        for name, out in cells.items():
            try:
                out.append(coerce(facts[name], rec.get(name)))
            except ValueError as exc:
                raise InputError(str(exc), row=row, column=name) from None
    return Table(tuple(ids), {name: build_column(facts[name], c) for name, c in cells.items()})


class _CellError(Exception):
    """A bad cell at a 0-based record index (turned into an InputError by the reader)."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


# Only digits, signs, points and blanks may reach numpy's parser: it would also take "1e5",
# "nan" or "inf", which a cell must not be. Within this alphabet numpy accepts exactly the
# plain decimals parse_cell accepts and raises on the rest ("1.2.3", "1-2").
_NUMBER_ALPHABET_RE: Final = re.compile(r"[0-9+\-. \t\r\n]*")
_USCC_LUT: Final = np.full(256, -1, dtype=np.int64)
for _i, _c in enumerate(CHARSET):
    _USCC_LUT[ord(_c)] = _i


def _first_bad(spec: FactSpec, strs: Sequence[str]) -> _CellError:
    """Find the first cell :func:`parse_cell` refuses (the slow path, only once a check failed)."""
    for i, text in enumerate(strs):
        try:
            parse_cell(spec, text)
        except ValueError as exc:
            return _CellError(i, str(exc))
    raise AssertionError("a column check failed but every cell parses")  # pragma: no cover


def _number_column(spec: FactSpec, strs: Sequence[str]) -> Column:
    # One pass over the whole column instead of one parse per cell; numpy then converts it.
    if not _NUMBER_ALPHABET_RE.fullmatch("".join(strs)):
        raise _first_bad(spec, strs)
    raw = np.char.strip(np.asarray(strs, dtype=str))
    unknown = raw == ""
    try:
        values = np.where(unknown, "0", raw).astype(np.float64)
    except ValueError:
        raise _first_bad(spec, strs) from None
    bad = np.zeros(len(strs), np.bool_)
    if spec.integer:
        bad |= values != np.floor(values)
    if spec.minimum is not None:
        bad |= values < spec.minimum
    bad &= ~unknown
    if bad.any():
        raise _first_bad(spec, strs)
    return Column(values, unknown if unknown.any() else None)


def _coded_column(spec: FactSpec, strs: Sequence[str]) -> Column:
    """bool / date / enum / text: parse each distinct text once, then index by the inverse."""
    if not strs:
        return build_column(spec, [])
    uniq, inverse = np.unique(np.asarray(strs, dtype=str), return_inverse=True)
    parsed: list[Any] = []
    bad: list[int] = []
    for k, text in enumerate(uniq.tolist()):
        try:
            parsed.append(parse_cell(spec, text))
        except ValueError:
            parsed.append(None)
            bad.append(k)
    if bad:
        first = int(np.flatnonzero(np.isin(inverse, bad))[0])
        try:
            parse_cell(spec, strs[first])
        except ValueError as exc:
            raise _CellError(first, str(exc)) from None
    column = build_column(spec, parsed)
    unknown = None if column.unknown is None else column.unknown[inverse]
    if unknown is not None and not unknown.any():
        unknown = None
    return Column(column.values[inverse], unknown, column.categories)


def _uscc_column(strs: Sequence[str]) -> list[str]:
    """Validate every USCC at once (same rules as fugong.core.uscc.validate, whose message is
    used for the first bad one) and refuse empty and duplicate codes."""
    codes = [s.strip().upper() for s in strs]
    n = len(codes)
    ok = np.zeros(n, np.bool_)
    try:
        raw = np.asarray(codes, dtype="S18")
        lengths = np.fromiter((len(c) for c in codes), np.int64, n)
        digits = _USCC_LUT[np.frombuffer(raw.tobytes(), np.uint8).reshape(n, 18)]
        total = digits[:, :17] @ np.asarray(WEIGHTS, dtype=np.int64)
        ok = (lengths == 18) & (digits >= 0).all(axis=1) & (digits[:, 17] == (31 - total % 31) % 31)
    except (UnicodeEncodeError, ValueError):
        pass  # non-ASCII somewhere: let the per-code check below find and word it
    if not ok.all():
        for i in np.flatnonzero(~ok).tolist():
            if codes[i] == "":
                raise _CellError(i, "the USCC is empty")
            try:
                validate_uscc(codes[i])
            except USCCError as exc:
                raise _CellError(i, str(exc)) from None
    if len(set(codes)) != n:
        first: dict[str, int] = {}
        for i, code in enumerate(codes):
            if code in first:
                raise _CellError(i, f"duplicate USCC {code} (first at row {first[code] + 1})")
            first[code] = i
    return codes


def read_csv_table(
    path: str | Path,
    facts: Mapping[str, FactSpec],
    id_fact: str,
    needed: Mapping[str, Iterable[str]],
) -> Table:
    """Read a UTF-8 CSV with a header into a Table.

    ``needed`` maps each column a measure reads to the measures that read it: a missing one is an
    InputError naming the column and those measures. Columns the pack does not declare are
    ignored; declared columns that no measure needs are read when present. Every bad cell is an
    InputError naming its data row (1-based, blank lines skipped), file line and column; USCCs
    must be valid and unique. Cells are checked column by column with numpy, and the first bad
    cell in file order of the first bad column is the one reported.
    """
    p = Path(path)
    try:
        handle = p.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror or exc}") from None
    records: list[list[str]] = []
    lines: list[int] = []
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                raise InputError(f"{p} is empty; expected a header row")
            names = [h.strip() for h in header]
            seen: dict[str, int] = {}
            for i, h in enumerate(names):
                if h in seen and h in facts:
                    raise InputError(f"column {h!r} appears twice in the header", column=h)
                seen[h] = i
            if id_fact not in seen:
                raise InputError(f"missing column {id_fact!r}: every row needs its USCC")
            for col, measures in needed.items():
                if col not in seen:
                    users = ", ".join(sorted(set(measures)))
                    raise InputError(f"missing column {col!r}, needed by {users}", column=col)
            width = len(names)
            for record in reader:
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue  # blank lines (often a trailing one) carry no enterprise
                if len(record) != width:
                    raise InputError(
                        f"has {len(record)} cells, the header has {width}",
                        row=len(records) + 1,
                        line=reader.line_num,
                    )
                records.append(record)
                lines.append(reader.line_num)
        except csv.Error as exc:
            raise InputError(f"malformed CSV: {exc}", line=reader.line_num) from None
        except UnicodeDecodeError:
            raise InputError(f"{p} is not UTF-8 text") from None

    wanted = [name for name in facts if name in seen]
    columns: dict[str, Column] = {}
    ids: list[str] = []
    for name in wanted:
        idx = seen[name]
        strs = [r[idx] for r in records]
        spec = facts[name]
        try:
            if name == id_fact:
                ids = _uscc_column(strs)
            elif spec.kind == "number":
                columns[name] = _number_column(spec, strs)
            else:
                columns[name] = _coded_column(spec, strs)
        except _CellError as exc:
            raise InputError(
                exc.message, row=exc.index + 1, column=name, line=lines[exc.index]
            ) from None
    return Table(tuple(ids), columns)
