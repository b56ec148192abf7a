"""A streamed XLSX writer for large flat tables (one sheet, one header, rows of cells).

The workbook is written as it goes: each batch of rows becomes deflated bytes of the ZIP
archive right away (:func:`stream`), so a report of thousands of rows is served with
constant memory and its first bytes leave before the last row is written. Text is always
written as a shared string, never as a formula; ``None`` is an empty cell; a ``date`` is a
serial day number with a date format.
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import quote
from xml.sax.saxutils import escape

# Cell styles (indexes into styles.xml's cellXfs).
PLAIN, BOLD, TITLE, DATE, BOLD_DATE = range(5)

_EPOCH = date(1899, 12, 30)  # Excel's day 0 (with its 1900 leap-year bug accounted for)
_ROWS_PER_CHUNK = 200
# Characters XML 1.0 cannot carry: written as Excel's ``_xHHHH_`` escapes (so is a literal
# ``_xHHHH_``, whose underscore is escaped first).
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|_(?=x[0-9A-Fa-f]{4}_)")

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    '</Types>')
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/styles" Target="styles.xml"/>'
    '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>')
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="DD.MM.YYYY"/></numFmts>'
    '<fonts count="3">'
    '<font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="13"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
    '</cellStyleXfs>'
    '<cellXfs count="5">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="0" fontId="2" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="164" fontId="1" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" '
    'applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '</styleSheet>')


@dataclass(frozen=True)
class Sheet:
    """What the sheet looks like: its name, column widths (characters) and the frozen
    rows and columns (the pane below and right of them scrolls)."""

    name: str
    widths: tuple[float, ...] = ()
    freeze_rows: int = 0
    freeze_cols: int = 0


class _Sink:
    """A write-only file for ``zipfile``: collects the bytes written since the last drain."""

    def __init__(self):
        self.parts: list[bytes] = []

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def _column(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        name = chr(65 + rem) + name
    return name


def _workbook(name: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f'<sheets><sheet name="{escape(name, {chr(34): "&quot;"})}" sheetId="1" '
            'r:id="rId1"/></sheets></workbook>')


def _sheet_head(sheet: Sheet) -> str:
    view = ""
    if sheet.freeze_rows or sheet.freeze_cols:
        top_left = f"{_column(sheet.freeze_cols)}{sheet.freeze_rows + 1}"
        split = (f' xSplit="{sheet.freeze_cols}"' if sheet.freeze_cols else "") + (
            f' ySplit="{sheet.freeze_rows}"' if sheet.freeze_rows else "")
        pane = ("bottomRight" if sheet.freeze_rows and sheet.freeze_cols
                else "bottomLeft" if sheet.freeze_rows else "topRight")
        view = (f'<pane{split} topLeftCell="{top_left}" activePane="{pane}" state="frozen"/>'
                f'<selection pane="{pane}" activeCell="{top_left}" sqref="{top_left}"/>')
    cols = "".join(f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>'
                   for i, w in enumerate(sheet.widths, start=1))
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f'<sheetViews><sheetView workbookViewId="0">{view}</sheetView></sheetViews>'
            '<sheetFormatPr defaultRowHeight="15"/>'
            + (f"<cols>{cols}</cols>" if cols else "") + "<sheetData>")


def stream(sheet: Sheet, rows: Iterable[tuple[int, list, list]]) -> Iterator[bytes]:
    """The bytes of an XLSX workbook with one sheet, in chunks as they are written.

    ``rows``: ``(row index, values, styles)`` in increasing row order (0-based); ``styles``
    gives each value's style (:data:`PLAIN`, :data:`BOLD`, ...), a shorter list meaning
    :data:`PLAIN` for the rest.
    """
    sink = _Sink()
    strings: dict[str, int] = {}
    # A cell's opening tag is its column's prefix, the row number and its style's suffix.
    opens = [f'<c r="{_column(i)}' for i in range(64)]
    styled = {}  # style -> what follows the row number
    # The fastest deflate level: a report's XML still shrinks about tenfold.
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("_rels/.rels", _ROOT_RELS)
        zf.writestr("xl/workbook.xml", _workbook(sheet.name))
        zf.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        zf.writestr("xl/styles.xml", _STYLES)
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as out:
            out.write(_sheet_head(sheet).encode())
            parts: list[str] = []
            for r, values, styles in rows:
                number = str(r + 1)
                cells = [f'<row r="{number}">']
                add = cells.append
                n_styles = len(styles)
                for c, value in enumerate(values):
                    style = styles[c] if c < n_styles else PLAIN
                    after = styled.get(style)
                    if after is None:
                        after = styled[style] = f'" s="{style}"' if style else '"'
                    kind = type(value)
                    if kind is int or kind is float:
                        add(f"{opens[c]}{number}{after}><v>{value}</v></c>")
                    elif kind is str:
                        index = strings.get(value)
                        if index is None:
                            index = strings[value] = len(strings)
                        add(f'{opens[c]}{number}{after} t="s"><v>{index}</v></c>')
                    elif value is None:
                        if style:
                            add(f"{opens[c]}{number}{after}/>")
                    elif isinstance(value, bool):
                        add(f'{opens[c]}{number}{after} t="b"><v>{int(value)}</v></c>')
                    elif isinstance(value, date):
                        day = value.date() if isinstance(value, datetime) else value
                        add(f"{opens[c]}{number}{after}><v>{(day - _EPOCH).days}</v></c>")
                    elif isinstance(value, str):
                        index = strings.setdefault(str(value), len(strings))
                        add(f'{opens[c]}{number}{after} t="s"><v>{index}</v></c>')
                    else:
                        add(f"{opens[c]}{number}{after}><v>{value}</v></c>")
                add("</row>")
                parts.append("".join(cells))
                if len(parts) >= _ROWS_PER_CHUNK:
                    out.write("".join(parts).encode())
                    parts = []
                    data = sink.drain()
                    if data:
                        yield data
            parts.append("</sheetData></worksheet>")
            out.write("".join(parts).encode())
        yield sink.drain()
        with zf.open("xl/sharedStrings.xml", "w", force_zip64=True) as out:
            out.write(('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                       '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                       f'count="{len(strings)}" uniqueCount="{len(strings)}">').encode())
            chunk: list[str] = []
            for text in strings:
                space = ' xml:space="preserve"' if text != text.strip() else ""
                if _UNSAFE.search(text):
                    text = _UNSAFE.sub(lambda m: f"_x{ord(m.group()):04X}_", text)
                chunk.append(f"<si><t{space}>{escape(text)}</t></si>")
                if len(chunk) >= 1000:
                    out.write("".join(chunk).encode())
                    chunk = []
            out.write(("".join(chunk) + "</sst>").encode())
    yield sink.drain()


def attachment(name: str, ascii_name: str | None = None) -> dict:
    """``Content-Disposition`` options of a download named ``name`` (as ``send_file`` sets
    them: a plain ASCII name - ``ascii_name``, or ``name`` stripped of what ASCII lacks -
    and the UTF-8 one when they differ)."""
    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        simple = ascii_name or unicodedata.normalize("NFKD", name).encode(
            "ascii", "ignore").decode("ascii")
        return {"filename": simple, "filename*": "UTF-8''" + quote(name, safe="!#$&+^`|~")}
    return {"filename": name}
