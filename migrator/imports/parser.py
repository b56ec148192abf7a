"""Reading import files: CSV (UTF-8 with or without BOM, or cp1251; ``,`` or ``;``) or XLSX.

The parser only turns bytes into rows of trimmed strings keyed by lower-cased column name,
and reports file-level and header problems. Checking the values is the service's job.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import NamedTuple

from flask_babel import lazy_gettext as _l

# Hard limits, enforced while reading (an XLSX may declare ``A1:XFD1048576`` in 1.5 KB).
MAX_ROWS = 200_000  # data rows of a file (memberships: MAX_MEMBER_ROWS)
MAX_MEMBER_ROWS = 500_000
MAX_COLUMNS = 50
MAX_XLSX_RATIO = 100  # uncompressed / compressed size of any part of an XLSX package
MAX_XLSX_UNPACKED = 200 * 1024 * 1024  # all parts of an XLSX package together, unpacked


@dataclass(frozen=True)
class Spec:
    """The columns of one import kind, with the longest value each may hold."""

    required: tuple[str, ...]
    optional: tuple[str, ...]
    max_length: dict[str, int]
    max_rows: int = MAX_ROWS

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


SPECS: dict[str, Spec] = {
    "organisations": Spec(
        ("code", "name"), ("parent_code", "head_email"),
        {"code": 64, "name": 500, "parent_code": 64, "head_email": 320},
    ),
    "employees": Spec(
        ("email", "full_name", "org_code"), ("position", "phone"),
        {"email": 320, "full_name": 300, "org_code": 64, "position": 300, "phone": 64},
    ),
    "groups": Spec(
        ("key", "name", "platform", "org_code"), ("owner_email",),
        {"key": 128, "name": 500, "platform": 16, "org_code": 64, "owner_email": 320},
    ),
    "members": Spec(("group_key", "email"), (), {"group_key": 128, "email": 320},
                    MAX_MEMBER_ROWS),
    "transition_acts": Spec(
        ("org_code",), ("act_number", "act_date", "exemption", "exemption_reason"),
        {"org_code": 64, "act_number": 100, "act_date": 32, "exemption": 64,
         "exemption_reason": 500},
    ),
    "channels": Spec(
        ("org_code", "platform", "url", "title", "status"), ("max_url",),
        {"org_code": 64, "platform": 16, "url": 500, "title": 500, "max_url": 500,
         "status": 16},
    ),
}
KINDS = tuple(SPECS)


VALUE_SHOWN = 80  # an offending value is echoed up to this many characters


def shown_value(value: str | None) -> str:
    """An offending value as echoed back to the person who uploaded it (cut when long)."""
    value = (value or "").replace("\r", " ").replace("\n", " ")
    return value if len(value) <= VALUE_SHOWN else value[: VALUE_SHOWN - 1] + "…"


class RowError(NamedTuple):
    """One problem as ``(line, column, reason, value)``: line 0 is the whole file, column ""
    the row; ``value`` the offending cell as read (cut, "" when none or empty).

    ``reason`` is a lazy translatable string: English on the command line, Russian in the UI.
    """

    line: int
    column: str
    reason: object
    value: str = ""

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        if self.column:
            where += f", column {self.column}"
        text = f"{where}: {self.reason}"
        return f"{text} (value: \"{self.value}\")" if self.value else text


@dataclass(slots=True)
class Row:
    line: int
    values: dict[str, str]  # column → trimmed value ("" when empty)


@dataclass
class ParsedFile:
    columns: list[str] = field(default_factory=list)  # known columns present in the header
    rows: list[Row] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def fatal(self) -> bool:
        """The file or its header is unusable (row-level problems are not fatal)."""
        return any(e.line <= 1 or not e.column for e in self.errors) or not self.rows


def is_xlsx(filename: str, data: bytes) -> bool:
    return filename.lower().endswith((".xlsx", ".xlsm")) or data[:4] == b"PK\x03\x04"


def decode(data: bytes) -> str:
    """UTF-8 (BOM optional) when it decodes strictly, else cp1251; ``ValueError`` if neither."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1251")  # raises UnicodeDecodeError (a ValueError) on bad bytes


def detect_delimiter(header_line: str) -> str:
    return ";" if header_line.count(";") > header_line.count(",") else ","


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _records_csv(data: bytes, errors: list[RowError]):
    """Yield ``(line, [cells])`` of a CSV file, header first."""
    if b"\x00" in data:
        errors.append(RowError(0, "", _l("the file contains binary data; save it as CSV or XLSX")))
        return
    try:
        text = decode(data)
    except UnicodeDecodeError:
        errors.append(RowError(0, "", _l("the file is neither UTF-8 nor Windows-1251 text")))
        return
    first = text.lstrip("\r\n").split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=detect_delimiter(first))
    line = 1
    try:
        for cells in reader:
            yield line, cells
            line = reader.line_num + 1
    except csv.Error as exc:
        errors.append(RowError(line, "", _l("unreadable CSV: %(error)s", error=str(exc))))


# What a broken or hostile workbook raises inside openpyxl (XML parsed with defusedxml).
_XLSX_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, KeyError, OSError,
                ValueError, TypeError, IndexError, AttributeError, SyntaxError, EOFError)


def _xlsx_package_ok(data: bytes, errors: list[RowError]) -> bool:
    """Refuse a ZIP bomb before anything is unpacked: each part's compression ratio and
    the unpacked size of all parts are bounded."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        errors.append(RowError(0, "", _l("the file is not a readable XLSX workbook")))
        return False
    total = sum(p.file_size for p in parts)
    if total > MAX_XLSX_UNPACKED or any(
            p.file_size > 1024 * 1024 and p.file_size > MAX_XLSX_RATIO * max(p.compress_size, 1)
            for p in parts):
        errors.append(RowError(0, "", _l("the XLSX file is packed suspiciously densely "
                                         "(a ZIP bomb?); save it again or use CSV")))
        return False
    return True


def _records_xlsx(data: bytes, errors: list[RowError]):
    from openpyxl import load_workbook

    if not _xlsx_package_ok(data, errors):
        return
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except _XLSX_ERRORS:
        errors.append(RowError(0, "", _l("the file is not a readable XLSX workbook")))
        return
    try:
        if not wb.worksheets:
            return
        sheet = wb.worksheets[0]
        if hasattr(sheet, "reset_dimensions"):
            sheet.reset_dimensions()  # never pad rows to a declared (possibly huge) range
        # One column more than allowed, to notice a value there; cells beyond are not read.
        rows = sheet.iter_rows(max_col=MAX_COLUMNS + 1, values_only=True)
        empty = (None,) * (MAX_COLUMNS + 1)
        for number, values in enumerate(rows, 1):
            yield number, ([] if values == empty else [_cell(v) for v in values])
    except _XLSX_ERRORS:
        errors.append(RowError(0, "", _l("the file is not a readable XLSX workbook")))
    finally:
        wb.close()


def parse(kind: str, filename: str, data: bytes, max_bytes: int) -> ParsedFile:
    """Read ``data`` as an import file of ``kind``; collect every file and header problem."""
    spec = SPECS[kind]
    result = ParsedFile()
    errors = result.errors
    if len(data) > max_bytes:
        errors.append(RowError(0, "", _l("the file is larger than %(max)d bytes", max=max_bytes)))
        return result
    if not data.strip():
        errors.append(RowError(0, "", _l("the file is empty")))
        return result
    records = _records_xlsx(data, errors) if is_xlsx(filename, data) else _records_csv(
        data, errors)
    header: list[str] | None = None
    for line, cells in records:
        if line > spec.max_rows + 1:  # the header and max_rows data rows
            errors.append(RowError(0, "", _l("the file has more than %(max)d rows; split it",
                                             max=spec.max_rows)))
            result.rows = []
            return result
        if len(cells) > MAX_COLUMNS and any(c.strip() for c in cells[MAX_COLUMNS:]):
            errors.append(RowError(line, "", _l("more than %(max)d columns",
                                                max=MAX_COLUMNS)))
            result.rows = []
            return result
        cells = [c.strip() for c in cells[:MAX_COLUMNS]]
        if not any(cells):
            continue  # blank lines (and Excel's empty trailing rows) carry nothing
        if header is None:
            header = [c.lower() for c in cells]
            if not _check_header(header, spec, line, errors):
                return result
            result.columns = [c for c in header if c in spec.columns]
            width, plain_header = len(header), all(header)
            continue
        if len(cells) == width and plain_header:  # the usual row: one value per column
            result.rows.append(Row(line, dict(zip(header, cells, strict=True))))
            continue
        values: dict[str, str] = {}
        for i, cell in enumerate(cells):
            name = header[i] if i < len(header) else ""
            if name:
                values[name] = cell
            elif cell:
                errors.append(RowError(line, str(i + 1),
                                       _l("a value in a column without a header"),
                                       shown_value(cell)))
        result.rows.append(Row(line, values))
    if header is None:
        if not errors:
            errors.append(RowError(0, "", _l("the file is empty")))
    elif not result.rows and not errors:
        errors.append(RowError(0, "", _l("the file has a header but no data rows")))
    return result


def _check_header(header: list[str], spec: Spec, line: int, errors: list[RowError]) -> bool:
    before = len(errors)
    seen = set()
    for name in header:
        if not name:
            continue
        if name not in spec.columns:
            errors.append(RowError(line, name, _l("unknown column; expected: %(columns)s",
                                                  columns=", ".join(spec.columns))))
        elif name in seen:
            errors.append(RowError(line, name, _l("the column appears twice")))
        seen.add(name)
    for name in spec.required:
        if name not in seen:
            errors.append(RowError(line, name, _l("required column is missing")))
    return len(errors) == before
