"""A large Excel export: the sheet's XML generated row by row and zipped while
it downloads. snippets/spreadsheets_built.py builds one with XlsxWriter."""

# [recipe]
import itertools
import math
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from xml.sax.saxutils import escape
from zipfile import ZIP_DEFLATED

from flask import Flask, Response
from xlsxwriter.utility import xl_rowcol_to_cell
from zipstream import ZipStream

app = Flask(__name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ROWS = 1000  # rows in the demo report
CHUNK_SIZE = 64 * 1024  # bytes of sheet XML per piece
HEADER = ("id", "customer", "note", "amount", "joined", "active")
EPOCH = datetime(1899, 12, 30)  # Excel's day 0
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
SURROGATE = re.compile("[\ud800-\udfff]")  # no UTF-8 form


@app.get("/report.xlsx")
def report():
    name = "attachment; filename=report.xlsx"
    return Response(
        streamed_xlsx(fetch_rows(ROWS)),
        mimetype=XLSX,
        headers={"Content-Disposition": name},
    )


def streamed_xlsx(rows):
    """A whole .xlsx as an iterable of bytes: four small
    parts and the sheet, made while the archive is read."""
    archive = ZipStream(compress_type=ZIP_DEFLATED)
    for name, xml in PARTS.items():
        archive.add(xml.encode(), name)
    sheet = sheet_xml(itertools.chain([HEADER], rows))
    archive.add(sheet, "xl/worksheets/sheet1.xml")
    return archive


def cell(row, col, value):
    """One <c> element. Text is an inline string: never a formula."""
    ref, value = xl_rowcol_to_cell(row, col), plain(value)  # (0, 0) is "A1"
    if value is None:
        return ""  # an empty cell is left out
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{value:d}</v></c>'
    if isinstance(value, int | float):
        return f'<c r="{ref}"><v>{value!r}</v></c>'
    if isinstance(value, datetime):  # style 2 in PARTS: a date and a time
        days = (value - EPOCH) / timedelta(days=1)
        return f'<c r="{ref}" s="2"><v>{days!r}</v></c>'
    if isinstance(value, date):  # style 1: a date
        return f'<c r="{ref}" s="1"><v>{(value - EPOCH.date()).days}</v></c>'
    text = escape(value, {"\r": "&#13;"})  # a bare \r would read back as \n
    return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


def sheet_xml(rows):
    """The worksheet, about 64 KiB at a time; no row is kept once written."""
    yield f'<?xml version="1.0"?>\n<worksheet xmlns="{NS}"><sheetData>'.encode()
    batch, size = [], 0
    for r, row in enumerate(rows):
        cells = "".join(cell(r, c, value) for c, value in enumerate(row))
        batch.append(f'<row r="{r + 1}">{cells}</row>'.encode())
        size += len(batch[-1])
        if size >= CHUNK_SIZE:
            yield b"".join(batch)
            batch, size = [], 0
    yield b"".join(batch) + b"</sheetData></worksheet>"


def plain(value):
    """What both exports write: numbers Excel can hold, dates without a time
    zone (Excel has none: UTC), text XML can carry and the CSV guard passes;
    None, an empty cell, for NaN and infinity (Excel has neither)."""
    if isinstance(value, Decimal):
        value = float(value)  # Excel keeps 15 significant digits
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    if value is None or isinstance(value, int | float | date):
        return value
    text = SURROGATE.sub("\ufffd", str(value))
    return guard(NOT_XML.sub("", text))


# An inline string is never a formula: text stays text.
# (Below the recipe, the CSV export's guard replaces this.)
guard = str


def fetch_rows(count):
    """Stand-in for a database cursor: text, numbers, dates and booleans."""
    notes = ['said "hi" <b>&</b>', '=HYPERLINK("http://x")', "bell\x07", "@SUM(A1)"]
    start = date(2024, 1, 1)
    for i in range(1, count + 1):
        note = notes[(i - 1) % len(notes)]
        yield i, "Zoë, Countess", note, -10.5 * i, start + timedelta(i), i % 2 == 0


NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006"
CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
XF = '<xf numFmtId="{}" fontId="0" fillId="0" borderId="0" xfId="0"'
XF += ' applyNumberFormat="1"/>'
PARTS = {
    "[Content_Types].xml": f'<Types xmlns="{PKG}/content-types">'
    '<Default Extension="rels"'
    ' ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{CT}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{CT}.worksheet+xml"/>'
    f'<Override PartName="/xl/styles.xml" ContentType="{CT}.styles+xml"/></Types>',
    "_rels/.rels": f'<Relationships xmlns="{PKG}/relationships">'
    f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>",
    "xl/workbook.xml": f'<workbook xmlns="{NS}" xmlns:r="{REL}"><sheets>'
    '<sheet name="Export" sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{PKG}/relationships">'
    f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{REL}/styles" Target="styles.xml"/>'
    "</Relationships>",
    # Styles 0, 1 and 2: Excel's built-in formats 0 (General), 14 (a date)
    # and 22 (a date and a time).
    "xl/styles.xml": f'<styleSheet xmlns="{NS}">'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border>'
    '</borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0"'
    ' borderId="0"/></cellStyleXfs><cellXfs count="3">'
    + "".join(XF.format(n) for n in (0, 14, 22))
    + '</cellXfs><cellStyles count="1">'
    '<cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>',
}

# [recipe-end]

# The same export with ?rows= and ?name=, and the CSV export's formula guard,
# so text reads the same in both formats.
from flask import request  # noqa: E402
from werkzeug.utils import secure_filename  # noqa: E402

from snippets.checks import whole_number  # noqa: E402
from snippets.csv_export import neutralise as guard  # noqa: E402, F811

MAX_ROWS = 1_048_575  # Excel's limit is 1,048,576 rows; one is the header


def attachment_name():
    name = secure_filename(request.args.get("name", "")) or "export"
    return f"{name}-{date.today().isoformat()}.xlsx"


# [view]
@app.get("/export.xlsx")
def export():
    rows = whole_number("rows", 1, MAX_ROWS, default=1000)
    disposition = f'attachment; filename="{attachment_name()}"'
    return Response(
        streamed_xlsx(fetch_rows(rows)),
        mimetype=XLSX,
        headers={"Content-Disposition": disposition},
    )


# [view-end]
