"""Reading an uploaded offer sheet (CSV or XLSX) into rows keyed by field name.

The file formats are core's (UTF-8 or GB18030 CSV, the first sheet of an XLSX); only the header
mapping differs, so this reuses core's readers and maps our own columns (English field names or
their Chinese labels)."""

from __future__ import annotations

from typing import Any

from fugong.core.tabular import XLSX_MAGIC, _cell, _read_csv, _read_xlsx
from fugong.errors import FieldError, ValidationFailed


def read_rows(
    content: bytes, filename: str, columns: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    if filename.lower().endswith(".xlsx") or content.startswith(XLSX_MAGIC):
        header, rows = _read_xlsx(content)
    else:
        header, rows = _read_csv(content)
    if not header:
        raise ValidationFailed([FieldError("(文件)", "文件为空或没有表头")])
    aliases = {label: name for name, label in columns} | {name: name for name, _ in columns}
    fields = [aliases.get(str(h).strip(), str(h).strip()) for h in header]
    required = ("item", "stock", "unit_price", "districts")
    missing = [label for name, label in columns if name in required and name not in fields]
    if missing:
        raise ValidationFailed([FieldError("(表头)", f"缺少必需列：{'、'.join(missing)}", 1)])
    return [
        {f: _cell(v) for f, v in zip(fields, values, strict=False) if f}
        for values in rows
        if any(str(v).strip() for v in values if v is not None)
    ]
