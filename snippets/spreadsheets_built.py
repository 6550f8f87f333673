"""The same Excel export built by XlsxWriter into a temporary file first,
then sent: every XlsxWriter feature, a Content-Length, no first byte early."""

import tempfile
from datetime import date, datetime

import xlsxwriter
from flask import Flask, send_file

from snippets.checks import whole_number
from snippets.spreadsheets import (
    HEADER,
    MAX_ROWS,
    XLSX,
    attachment_name,
    fetch_rows,
    plain,
)

app = Flask(__name__)

# [built]
OPTIONS = {
    "constant_memory": True,  # each row goes to a temporary file, not memory
    "strings_to_formulas": False,  # else write("=...") makes text a formula
    "strings_to_urls": False,  # else text that looks like a URL becomes a link
}


def built_xlsx(rows, out):
    """Write the header and ``rows`` to the file ``out`` as an .xlsx."""
    # "with": close() runs even when a row fails, and removes xlsxwriter's
    # own temporary files; without it, they stay in the temporary folder.
    with xlsxwriter.Workbook(out, OPTIONS) as workbook:
        sheet = workbook.add_worksheet("Export")
        dates = workbook.add_format({"num_format": "yyyy-mm-dd"})
        stamps = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        sheet.write_row(0, 0, HEADER)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(map(plain, row)):  # the same values
                if isinstance(value, date):
                    style = stamps if isinstance(value, datetime) else dates
                    sheet.write_datetime(r, c, value, style)
                else:
                    sheet.write(r, c, value)  # None: nothing is written


@app.get("/built.xlsx")
def built():
    rows = whole_number("rows", 1, MAX_ROWS, default=1000)
    out = tempfile.TemporaryFile()  # noqa: SIM115  has no name: nothing to delete
    try:
        built_xlsx(fetch_rows(rows), out)
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
