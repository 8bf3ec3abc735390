"""Reading and writing tables as CSV (UTF-8, with or without BOM) and Excel (.xlsx).

Headers may be the English field names or their Chinese labels; both map to field names, so a
file exported from the platform imports back unchanged."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from fugong.errors import FieldError, ValidationFailed

ENTERPRISE_COLUMNS: list[tuple[str, str]] = [
    ("uscc", "统一社会信用代码"),
    ("name", "企业名称"),
    ("district", "区"),
    ("street", "街道"),
    ("address", "地址"),
    ("industry", "行业"),
    ("size", "规模"),
    ("key_category", "重点类别"),
    ("headcount", "从业人数"),
    ("insured_employees", "参保人数"),
    ("resumption_status", "复工状态"),
    ("resumption_date", "复工日期"),
    ("staff_back_pct", "返岗比例"),
    ("manager", "客户经理"),
    ("contact_name", "联系人"),
    ("contact_phone", "联系电话"),
]
_HEADER_ALIASES = {label: name for name, label in ENTERPRISE_COLUMNS} | {
    name: name for name, _ in ENTERPRISE_COLUMNS
}
XLSX_MAGIC = b"PK\x03\x04"


def _cell(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.date().isoformat() if v.time() == datetime.min.time() else v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return "" if v is None else str(v)


def read_table(content: bytes, filename: str) -> list[dict[str, Any]]:
    """Parse an uploaded CSV or XLSX into rows keyed by field name (unknown headers are kept
    under their own name so validation can name them)."""
    if filename.lower().endswith(".xlsx") or content.startswith(XLSX_MAGIC):
        header, rows = _read_xlsx(content)
    else:
        header, rows = _read_csv(content)
    if not header:
        raise ValidationFailed([FieldError("(文件)", "文件为空或没有表头")])
    fields = [_HEADER_ALIASES.get(h.strip(), h.strip()) for h in header]
    missing = [
        label
        for name, label in ENTERPRISE_COLUMNS[:7]
        if name not in fields and name not in ("street", "address")
    ]
    if missing:
        raise ValidationFailed([FieldError("(表头)", f"缺少必需列：{'、'.join(missing)}", 1)])
    out = []
    for values in rows:
        if not any(str(v).strip() for v in values):
            continue  # a blank line in a spreadsheet is not a record
        row = {f: _cell(v) for f, v in zip(fields, values, strict=False) if f}
        out.append(row)
    return out


def _read_csv(content: bytes) -> tuple[list[str], list[list[Any]]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = content.decode("gb18030")  # files saved by Chinese Excel
        except UnicodeDecodeError:
            raise ValidationFailed(
                [FieldError("(文件)", "无法识别文件编码，请保存为 UTF-8 CSV")]
            ) from None
    reader = csv.reader(io.StringIO(text))
    rows = list(reader)
    return (rows[0], rows[1:]) if rows else ([], [])


def _read_xlsx(content: bytes) -> tuple[list[str], list[list[Any]]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many types for a broken file
        raise ValidationFailed(
            [FieldError("(文件)", f"无法读取 Excel 文件：{type(e).__name__}")]
        ) from None
    ws = wb.active
    if ws is None:
        return [], []
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    wb.close()
    if not rows:
        return [], []
    header = [_cell(h) for h in rows[0]]
    return header, rows[1:]


def _safe(v: Any) -> Any:
    """Neutralise spreadsheet formulas in exported text (CSV injection): a cell a user typed
    as ``=HYPERLINK(...)`` must not run when an official opens the export in Excel."""
    v = _cell(v)
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(v)
        except ValueError:
            return "'" + v
    return v


def write_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterable[str]:
    """Stream CSV text (with a BOM so Excel on Windows opens the Chinese correctly)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    buf.write("\ufeff")
    w.writerow(header)
    for row in rows:
        w.writerow([_safe(v) for v in row])
        if buf.tell() > 64_000:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def write_xlsx(header: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "Sheet") -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title[:31])
    ws.append(list(header))
    for row in rows:
        ws.append([_safe(v) for v in row])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
