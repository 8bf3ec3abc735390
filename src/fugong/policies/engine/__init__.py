"""Relief measures as code: a pure, vectorised, explainable policy engine.

No framework imports (numpy, PyYAML and the standard library only), so the web, the CLI and
batch jobs share it. Typical use::

    pack = load_pack("huangpu-2020")
    table = read_enterprises_csv("enterprises.csv", pack)
    results = evaluate(pack, table, at=date(2020, 6, 30), explain=[0, 1])
    for uscc, measure, status, amount in results.rows(): ...
"""

from __future__ import annotations

from pathlib import Path

from fugong.policies.engine.errors import (
    EvaluationError,
    ExpressionError,
    InputError,
    PackError,
    PolicyError,
)
from fugong.policies.engine.evaluation import (
    STATUS_NAMES,
    MeasureResult,
    Results,
    evaluate,
    explain_rows,
    format_cents,
)
from fugong.policies.engine.expr import parse, tokenize, unparse
from fugong.policies.engine.pack import PACKS_DIR, Measure, Pack, load_pack
from fugong.policies.engine.params import Parameter, Period
from fugong.policies.engine.scenarios import Report, run_scenarios
from fugong.policies.engine.table import Column, FactSpec, Table, read_csv_table, table_from_records


def read_enterprises_csv(path: str | Path, pack: Pack) -> Table:
    """Read an enterprise CSV for ``pack``; InputError names the row and column of a bad cell
    (USCC, number, yes/no, date, enum) and any missing column a measure needs."""
    return read_csv_table(path, pack.facts, pack.id_fact, pack.needed_columns())


__all__ = [
    "PACKS_DIR",
    "STATUS_NAMES",
    "Column",
    "EvaluationError",
    "ExpressionError",
    "FactSpec",
    "InputError",
    "Measure",
    "MeasureResult",
    "Pack",
    "PackError",
    "Parameter",
    "Period",
    "PolicyError",
    "Report",
    "Results",
    "Table",
    "evaluate",
    "explain_rows",
    "format_cents",
    "load_pack",
    "parse",
    "read_enterprises_csv",
    "run_scenarios",
    "table_from_records",
    "tokenize",
    "unparse",
]
