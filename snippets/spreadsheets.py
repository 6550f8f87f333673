"""A large Excel export: the sheet's XML generated row by row and zipped while
it downloads, or built by xlsxwriter into a temporary file first."""

import itertools
import re
import tempfile
from datetime import date, timedelta
from xml.sax.saxutils import escape
from zipfile import ZIP_DEFLATED

import xlsxwriter
from flask import Flask, Response, abort, request, send_file
from werkzeug.utils import secure_filename
from xlsxwriter.utility import xl_rowcol_to_cell
from zipstream import ZipStream

app = Flask(__name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_ROWS = 1_048_575  # Excel's limit is 1,048,576 rows; one is the header
CHUNK_SIZE = 64 * 1024
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # XML 1.0 forbids
HEADER = ("id", "customer", "note", "amount", "joined", "active")
EPOCH = date(1899, 12, 30)  # Excel stores a date as the days since this one


def fetch_rows(count):
    """Stand-in for a database cursor: text, numbers, dates and booleans."""
    notes = ['said "hi" <b>&</b>', '=HYPERLINK("http://x")', "bell\x07", "@SUM(A1)"]
    start = date(2024, 1, 1)
    for i in range(1, count + 1):
        note = notes[(i - 1) % len(notes)]
        yield i, "Zoë, Countess", note, -10.5 * i, start + timedelta(i), i % 2 == 0


def neutralise(value):
    """The guard from the CSV page: text that looks like a formula stays text.

    >>> neutralise("=1+1"), neutralise("-2"), neutralise(-2), neutralise("ok")
    ("'=1+1", "'-2", -2, 'ok')
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


# [cell]
def cell(row, col, value):
    """One <c> element. Text is an inline string: never a formula."""
    ref = xl_rowcol_to_cell(row, col)  # (0, 0) is "A1"
    if value is None:
        return ""  # an empty cell is left out
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{value:d}</v></c>'
    if isinstance(value, int | float):
        return f'<c r="{ref}"><v>{value!r}</v></c>'
    if isinstance(value, date):  # style 1 in STYLES shows the number as a date
        return f'<c r="{ref}" s="1"><v>{(value - EPOCH).days}</v></c>'
    text = escape(NOT_XML.sub("", neutralise(str(value))))
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


# [cell-end]


# [parts]
NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006"
CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
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
    "xl/styles.xml": f'<styleSheet xmlns="{NS}">'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border>'
    '</borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0"'
    ' borderId="0"/></cellStyleXfs><cellXfs count="2"><xf numFmtId="0" fontId="0"'
    ' fillId="0" borderId="0" xfId="0"/><xf numFmtId="14" fontId="0" fillId="0"'
    ' borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs><cellStyles count="1">'
    '<cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>',
}


def streamed_xlsx(rows):
    """A whole .xlsx as an iterable of bytes: four small parts and the sheet."""
    archive = ZipStream(compress_type=ZIP_DEFLATED)
    for name, xml in PARTS.items():
        archive.add(xml.encode(), name)
    archive.add(sheet_xml(itertools.chain([HEADER], rows)), "xl/worksheets/sheet1.xml")
    return archive


# [parts-end]


def requested_rows():
    raw = request.args.get("rows", "1000")
    # ASCII digits only, and short: int() refuses strings of over 4,300 digits.
    short = raw.isascii() and raw.isdecimal() and len(raw) <= len(str(MAX_ROWS))
    if not short or not 1 <= int(raw) <= MAX_ROWS:
        abort(400, f"rows must be a whole number from 1 to {MAX_ROWS:,}")
    return int(raw)


def attachment_name():
    name = secure_filename(request.args.get("name", "")) or "export"
    return f"{name}-{date.today().isoformat()}.xlsx"


# [view]
@app.get("/export.xlsx")
def export():
    rows = requested_rows()
    disposition = f'attachment; filename="{attachment_name()}"'
    return Response(
        streamed_xlsx(fetch_rows(rows)),
        mimetype=XLSX,
        headers={"Content-Disposition": disposition},
    )


# [view-end]


# [built]
OPTIONS = {
    "constant_memory": True,  # each row goes to a temporary file, not memory
    "strings_to_formulas": False,  # else write("=...") makes text a formula
    "strings_to_urls": False,  # else text that looks like a URL becomes a link
}


@app.get("/built.xlsx")
def built():
    rows = requested_rows()
    out = tempfile.TemporaryFile()  # noqa: SIM115  has no name: nothing to delete
    try:
        # "with": close() runs even when a row fails, and removes xlsxwriter's
        # own temporary files; without it, they stay in the temporary folder.
        with xlsxwriter.Workbook(out, OPTIONS) as workbook:
            sheet = workbook.add_worksheet("Export")
            dates = workbook.add_format({"num_format": "yyyy-mm-dd"})
            sheet.write_row(0, 0, HEADER)
            for r, row in enumerate(fetch_rows(rows), start=1):
                for c, value in enumerate(map(neutralise, row)):
                    if isinstance(value, date):
                        sheet.write_datetime(r, c, value, dates)
                    else:
                        sheet.write(r, c, value)
    except BaseException:
        out.close()
        raise
    size = out.tell()
    out.seek(0)
    response = send_file(
        out, mimetype=XLSX, as_attachment=True, download_name=attachment_name()
    )
    response.content_length = size  # send_file cannot tell for a file object
    return response


# [built-end]
