"""Import files are read within hard limits (rows, columns, size, compression ratio), and a
broken or hostile XLSX answers a clear error, fast, on the web form and the command line
alike; hypothesis feeds the parsers arbitrary bytes: nothing but documented errors."""

from __future__ import annotations

import dataclasses
import io
import re
import time
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from sqlmodel import select

from migrator.imports import parser
from migrator.imports.parser import parse
from migrator.org.models import Organisation

LIMIT = 20 * 1024 * 1024


def _xlsx(rows) -> bytes:
    wb = Workbook()
    for row in rows:
        wb.active.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _patched(data: bytes, sheet_xml) -> bytes:
    """The workbook with its first sheet's XML replaced by ``sheet_xml(old_xml)``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(
            out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            content = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = sheet_xml(content.decode()).encode()
            dst.writestr(item.filename, content)
    return out.getvalue()


ORGS = [("code", "name"), ("EDU", "Образование")]


def _messages(result) -> str:
    return " ".join(str(e.reason) for e in result.errors)


def test_a_declared_huge_range_is_read_fast():
    bomb = _patched(_xlsx(ORGS), lambda x: re.sub(r'<dimension ref="[^"]*"/>',
                                                  '<dimension ref="A1:XFD1048576"/>', x))
    assert len(bomb) < 10_000
    started = time.monotonic()
    result = parse("organisations", "bomb.xlsx", bomb, LIMIT)
    assert time.monotonic() - started < 5
    assert not result.errors and [r.values for r in result.rows] == [
        {"code": "EDU", "name": "Образование"}]


def test_a_far_row_stops_at_the_row_limit():
    far = ('<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>X</t></is></c>'
           '<c r="XFD1048576" t="inlineStr"><is><t>Y</t></is></c></row></sheetData>')
    bomb = _patched(_xlsx(ORGS), lambda x: x.replace("</sheetData>", far))
    started = time.monotonic()
    result = parse("organisations", "far.xlsx", bomb, LIMIT)
    assert time.monotonic() - started < 10
    assert result.fatal and "200000" in _messages(result)


def test_too_many_columns():
    wide = _xlsx([ORGS[0], ["EDU", "x"] + [""] * 48 + ["value in column 51"]])
    assert "50" in _messages(parse("organisations", "wide.xlsx", wide, LIMIT))
    csv = ("code,name\nEDU,x" + "," * 60 + "far\n").encode()
    result = parse("organisations", "wide.csv", csv, LIMIT)
    assert result.fatal and "50" in _messages(result)


def test_too_many_csv_rows(monkeypatch):
    assert {k: s.max_rows for k, s in parser.SPECS.items()} == {
        "organisations": 200_000, "employees": 200_000, "groups": 200_000,
        "members": 500_000, "transition_acts": 200_000, "channels": 200_000}
    monkeypatch.setitem(parser.SPECS, "organisations",
                        dataclasses.replace(parser.SPECS["organisations"], max_rows=5))
    data = ("code,name\n" + "".join(f"C{i},n\n" for i in range(6))).encode()
    result = parse("organisations", "long.csv", data, LIMIT)
    assert result.fatal and not result.rows and "5 " in _messages(result)
    assert not parse("organisations", "ok.csv", data[: data.rindex(b"C5")], LIMIT).fatal


def test_a_zip_bomb_is_refused_before_unpacking():
    padding = " " * (30 * 1024 * 1024)
    bomb = _patched(_xlsx(ORGS), lambda x: x.replace("<sheetData>", padding + "<sheetData>"))
    assert len(bomb) < 200_000
    started = time.monotonic()
    result = parse("organisations", "zip.xlsx", bomb, LIMIT)
    assert time.monotonic() - started < 3
    assert result.fatal and "ZIP" in _messages(result)


@pytest.mark.parametrize("broken", [
    lambda x: x.replace("</sheetData>", "<row><c><v>1</sheetData>"),
    lambda x: x[: len(x) // 2],
    lambda x: '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
])
def test_malformed_sheet_xml_is_a_clear_error(broken):
    result = parse("organisations", "broken.xlsx", _patched(_xlsx(ORGS), broken), LIMIT)
    assert result.fatal and "XLSX" in _messages(result)


def test_web_form_answers_a_bomb_with_a_russian_error(client, make_user, login, ctx):
    login(client, make_user("admin"))
    broken = _patched(_xlsx(ORGS), lambda x: x.replace("</sheetData>", "<row><c></sheetData>"))
    resp = client.post("/imports/", data={"kind": "organisations",
                                          "file": (io.BytesIO(broken), "orgs.xlsx")},
                       content_type="multipart/form-data")
    assert resp.status_code == 422
    assert "файл не является читаемой книгой XLSX" in resp.get_data(as_text=True)
    assert ctx.exec(select(Organisation)).all() == []


def test_cli_answers_a_bomb_with_exit_1(runner, tmp_path, ctx):
    far = ('<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>X</t></is></c></row>'
           '</sheetData>')
    path = tmp_path / "far.xlsx"
    path.write_bytes(_patched(_xlsx(ORGS), lambda x: x.replace("</sheetData>", far)))
    ctx.rollback()
    result = runner.invoke(args=["import", "organisations", str(path)])
    assert result.exit_code == 1 and "200000" in result.output
    assert ctx.exec(select(Organisation)).all() == []


# --- fuzzing ---------------------------------------------------------------------------------

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])


@FUZZ
@given(kind=st.sampled_from(parser.KINDS), data=st.binary(max_size=2000),
       name=st.sampled_from(["f.csv", "f.xlsx", "f.txt"]))
def test_parser_survives_arbitrary_bytes(app, kind, data, name):
    with app.app_context():
        result = parse(kind, name, data, LIMIT)
    assert all(isinstance(e, parser.RowError) for e in result.errors)
    assert result.fatal or result.rows


@FUZZ
@given(kind=st.sampled_from(parser.KINDS),
       cells=st.lists(st.lists(st.text(max_size=20), max_size=6), max_size=8),
       delimiter=st.sampled_from([",", ";"]))
def test_parser_survives_arbitrary_csv_text(app, kind, cells, delimiter):
    text = "\n".join(delimiter.join(row) for row in cells)
    with app.app_context():
        result = parse(kind, "f.csv", text.encode("utf-8"), LIMIT)
    assert all(isinstance(e, parser.RowError) for e in result.errors)


@FUZZ
@given(cut=st.integers(min_value=0, max_value=4000), byte=st.integers(0, 255))
def test_parser_survives_damaged_xlsx(app, cut, byte):
    data = bytearray(_xlsx(ORGS))
    data[cut % len(data)] = byte
    with app.app_context():
        result = parse("organisations", "f.xlsx", bytes(data), LIMIT)
    assert all(isinstance(e, parser.RowError) for e in result.errors)
