"""formats/spreadsheets: both exports open in openpyxl with every cell and
type right; memory and temporary files measured; nothing left on disk.

The 100,000-row figures on the page come from this module, run as a script
(it writes docs/formats/_data/spreadsheets.csv; it takes several minutes,
because tracemalloc slows xlsxwriter down a lot):

    .venv/bin/python -m tests.formats.test_spreadsheets 100000

The tests below measure the same things at small sizes, and check that the
committed file says what the page says.
"""

import contextlib
import csv
import io
import math
import os
import sys
import tempfile
import threading
import time
import tracemalloc
import zipfile
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from flask import send_file
from openpyxl.utils.exceptions import IllegalCharacterError

from snippets import spreadsheets as spreadsheet
from snippets import spreadsheets_built
from snippets.csv_export import csv_chunks, neutralise
from snippets.spreadsheets import (
    HEADER,
    MAX_ROWS,
    NOT_XML,
    app,
    cell,
    fetch_rows,
    streamed_xlsx,
)
from tests.basics.test_csv_export import FORMULA_LIKE, run_recipe_alone

DATA = Path(__file__).resolve().parents[2] / "docs" / "formats" / "_data"
MiB = 1024 * 1024


# --- reading a file back -----------------------------------------------------


def client(path):
    """A test client of the app that serves ``path``: /built.xlsx is in
    snippets/spreadsheets_built.py, the streamed export here."""
    built = path.startswith("/built.xlsx")
    return (spreadsheets_built.app if built else app).test_client()


def read_back(body):
    """Every row of the first sheet as (value, data_type) pairs, read with
    openpyxl in read-only mode."""
    workbook = openpyxl.load_workbook(io.BytesIO(body), read_only=True)
    try:
        rows = [
            [(c.value, c.data_type) for c in row]
            for row in workbook.worksheets[0].iter_rows()
        ]
    finally:
        workbook.close()
    return rows


def expected_rows(count):
    """What the export must contain: the header, then each row with the
    formula guard applied, characters XML cannot hold removed, and a date
    read back as a midnight datetime (Excel has no date-only type)."""
    yield [(name, "s") for name in HEADER]
    for row in fetch_rows(count):
        number, customer, note, amount, joined, active = row
        yield [
            (number, "n"),
            (customer, "s"),
            (NOT_XML.sub("", neutralise(note)), "s"),
            (amount, "n"),
            (datetime.combine(joined, datetime.min.time()), "d"),
            (active, "b"),
        ]


def test_streamed_export_reads_back_cell_for_cell_with_types():
    response = app.test_client().get("/export.xlsx?rows=1000")
    assert response.status_code == 200
    assert response.mimetype == spreadsheet.XLSX
    assert response.is_streamed and "Content-Length" not in response.headers
    got = read_back(response.data)
    assert got == list(expected_rows(1000))
    assert all(isinstance(row[3][0], float) for row in got[1:])  # -21.0 too
    assert not any(kind == "f" for row in got for _, kind in row)  # no formula


def test_built_export_reads_back_cell_for_cell_with_types():
    response = spreadsheets_built.app.test_client().get("/built.xlsx?rows=1000")
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.data)
    got = read_back(response.data)
    expected = list(expected_rows(1000))
    assert len(got) == len(expected) == 1001
    for row, want in zip(got, expected, strict=True):
        assert row[:2] == want[:2] and row[3:] == want[3:]  # -21 == -21.0
        # xlsxwriter keeps a control character, escaped as _x0007_.
        assert row[2] == want[2] or row[2] == ("bell_x0007_", "s")
    assert not any(kind == "f" for row in got for _, kind in row)


def test_xlsxwriter_writes_whole_floats_as_ints_and_escapes_control_chars():
    out = io.BytesIO()
    workbook = xlsxwriter.Workbook(out)
    workbook.add_worksheet().write_row(0, 0, [-21.0, "bell\x07"])
    workbook.close()
    assert read_back(out.getvalue()) == [[(-21, "n"), ("bell_x0007_", "s")]]


def test_streamed_export_escapes_markup_and_keeps_unicode():
    body = app.test_client().get("/export.xlsx?rows=1").data
    got = read_back(body)
    assert got[1][1] == ("Zoë, Countess", "s")
    assert got[1][2] == ('said "hi" <b>&</b>', "s")


def test_cell_writes_each_type_and_leaves_none_out():
    assert cell(0, 0, None) == ""
    assert cell(0, 1, True) == '<c r="B1" t="b"><v>1</v></c>'
    assert cell(1, 0, 7) == '<c r="A2"><v>7</v></c>'
    assert cell(1, 0, 0.1) == '<c r="A2"><v>0.1</v></c>'
    assert cell(2, 27, date(1900, 3, 1)) == '<c r="AB3" s="1"><v>61</v></c>'
    assert 't="inlineStr"' in cell(0, 0, "=1+1") and "'=1+1" in cell(0, 0, "=1+1")


def test_a_row_with_an_empty_cell_reads_back_as_none():
    archive = streamed_xlsx([(1, None, "x")])
    got = read_back(b"".join(archive))
    assert [value for value, _ in got[1]] == [1, None, "x"]


# --- formula injection ---------------------------------------------------------


def test_xlsxwriter_write_makes_text_starting_with_equals_a_formula():
    """xlsxwriter's default ``strings_to_formulas=True``: text from a user
    becomes a live formula. The snippet turns it off (and guards the text)."""
    out = io.BytesIO()
    workbook = xlsxwriter.Workbook(out)
    workbook.add_worksheet().write(0, 0, '=HYPERLINK("http://x")')
    workbook.close()
    assert read_back(out.getvalue()) == [[('=HYPERLINK("http://x")', "f")]]


def test_openpyxl_refuses_control_characters():
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet()
    with pytest.raises(IllegalCharacterError):
        sheet.append(["bell\x07"])


def test_guarded_text_is_text_in_both_exports():
    for path in ("/export.xlsx?rows=4", "/built.xlsx?rows=4"):
        got = read_back(client(path).get(path).data)
        assert got[2][2] == ('\'=HYPERLINK("http://x")', "s")
        assert got[4][2] == ("'@SUM(A1)", "s")
        assert got[1][3] == (-10.5, "n")  # a negative number stays a number


# --- the request -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/export.xlsx", "/built.xlsx"])
@pytest.mark.parametrize(
    "rows", ["0", "1048576", "-1", "abc", "", "9" * 5000, "\u0663"]
)
def test_bad_row_count_is_a_400(path, rows):
    response = client(path).get(f"{path}?rows={rows}")
    assert response.status_code == 400
    assert b"rows must be a whole number from 1 to 1,048,575" in response.data


def test_excel_row_limit_is_accepted_lazily():
    """1,048,575 rows plus the header fill Excel's 1,048,576: accepted, and
    nothing is generated until the body is read."""
    response = app.test_client().get(f"/export.xlsx?rows={MAX_ROWS}")
    assert response.status_code == 200
    response.close()


def test_file_name_is_made_safe():
    response = app.test_client().get("/export.xlsx?rows=1&name=../../etc/passwd")
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="etc_passwd-')
    assert disposition.endswith('.xlsx"')


# --- streaming -----------------------------------------------------------------


def counting(rows, seen):
    for row in rows:
        seen.append(1)
        yield row


def test_streamed_first_bytes_come_before_most_rows_are_read():
    seen = []
    chunks = iter(streamed_xlsx(counting(fetch_rows(5000), seen)))
    first = next(chunks)
    assert first.startswith(b"PK\x03\x04")  # a ZIP's first local header
    assert len(seen) < 1000  # of 5,000
    rest = sum(len(chunk) for chunk in chunks)
    assert len(seen) == 5000 and rest > 0


def test_built_export_reads_every_row_before_the_first_byte(monkeypatch):
    seen = []
    original = spreadsheets_built.fetch_rows
    monkeypatch.setattr(
        spreadsheets_built, "fetch_rows", lambda n: counting(original(n), seen)
    )
    response = spreadsheets_built.app.test_client().get("/built.xlsx?rows=2000")
    assert len(seen) == 2000  # before a single byte of the body is read
    response.close()


# --- measuring memory and temporary files ----------------------------------------


class TempWatch:
    """Poll a folder: the largest total size of the files in it, counting
    the unnamed (O_TMPFILE) ones this process holds open there too."""

    def __init__(self, folder):
        self.folder = str(folder)
        self.peak = 0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def size(self):
        total = 0
        for root, _dirs, files in os.walk(self.folder):
            for name in files:
                with contextlib.suppress(FileNotFoundError):
                    total += os.stat(os.path.join(root, name)).st_size
        for fd in open_fds(self.folder):  # may close while we look: skip it
            with contextlib.suppress(OSError):
                # Named files were counted above: add only the unnamed ones.
                if os.readlink(f"/proc/self/fd/{fd}").endswith(" (deleted)"):
                    total += os.stat(f"/proc/self/fd/{fd}").st_size
        return total

    def record(self):
        """Measure now and keep the larger. The lock makes it one step: a poll
        that read ``self.peak`` before a slow ``size()`` could otherwise write
        back less than a deletion's measurement taken meanwhile (on a loaded
        machine that lost most of a peak: 193 bytes a row, against 526-596)."""
        size = self.size()
        with self.lock:
            self.peak = max(self.peak, size)

    def run(self):
        while not self.done.is_set():
            self.record()
            time.sleep(0.002)

    def sample_then(self, delete):
        """os.unlink or os.remove, measuring first: files here only grow until
        they are deleted, so the peak is just before a deletion or at the
        end. (Polling alone missed it on a loaded machine.)"""

        def wrapper(path, *args, **kwargs):
            if str(path).startswith(self.folder):
                self.record()
            return delete(path, *args, **kwargs)

        return wrapper

    def __enter__(self):
        self.saved = os.unlink, os.remove
        os.unlink, os.remove = map(self.sample_then, self.saved)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        os.unlink, os.remove = self.saved
        self.done.set()
        self.thread.join()
        self.record()


def open_fds(folder, pid="self"):
    """File descriptors of a process that point into ``folder``."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder)):
            found.append(int(fd))
    return found


def xlsxwriter_export(rows, options):
    out = io.BytesIO()
    workbook = xlsxwriter.Workbook(out, {"strings_to_formulas": False, **options})
    sheet = workbook.add_worksheet()
    dates = workbook.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, HEADER)
    for r, row in enumerate(fetch_rows(rows), start=1):
        for c, value in enumerate(map(neutralise, row)):
            if isinstance(value, date):
                sheet.write_datetime(r, c, value, dates)
            else:
                sheet.write(r, c, value)
    workbook.close()
    yield out.getvalue()


def openpyxl_write_only(rows):
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(HEADER)
    for row in fetch_rows(rows):
        values = map(neutralise, row)
        sheet.append([NOT_XML.sub("", v) if isinstance(v, str) else v for v in values])
    out = io.BytesIO()
    workbook.save(out)
    yield out.getvalue()


def built_view(rows):
    response = spreadsheets_built.app.test_client().get(f"/built.xlsx?rows={rows}")
    yield from response.response
    response.close()


APPROACHES = {
    "streamed (snippet /export.xlsx)": lambda n: streamed_xlsx(fetch_rows(n)),
    "xlsxwriter constant_memory, temporary file (snippet /built.xlsx)": built_view,
    "xlsxwriter default, to BytesIO": lambda n: xlsxwriter_export(n, {}),
    "xlsxwriter constant_memory, to BytesIO": lambda n: xlsxwriter_export(
        n, {"constant_memory": True}
    ),
    "xlsxwriter in_memory, to BytesIO": lambda n: xlsxwriter_export(
        n, {"in_memory": True}
    ),
    "openpyxl write_only, to BytesIO": openpyxl_write_only,
}


def measure(name, rows):
    """Python's peak memory (tracemalloc) and the peak size of temporary
    files while building ``rows`` rows, the file's size, and the files left.
    (tracemalloc slows the code down: do not time it here.)"""
    with tempfile.TemporaryDirectory() as folder:
        saved, tempfile.tempdir = tempfile.tempdir, folder
        try:
            tracemalloc.start()
            size = 0
            with TempWatch(folder) as watch:
                for chunk in APPROACHES[name](rows):
                    size += len(chunk)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            tempfile.tempdir = saved
        left = list(Path(folder).iterdir())
    return {"peak": peak, "temp_peak": watch.peak, "size": size, "left": len(left)}


STREAMED, BUILT, DEFAULT, CONSTANT, IN_MEMORY, OPENPYXL = APPROACHES


def per_row(name, key, small=200, large=800):
    """How much ``key`` grows for each extra row, and the two measurements."""
    a, b = measure(name, small), measure(name, large)
    return (b[key] - a[key]) / (large - small), a, b


def test_streamed_memory_stays_flat_and_writes_no_file():
    growth, small, large = per_row(STREAMED, "peak", 200, 2000)
    assert large["size"] > 5 * small["size"]
    assert large["peak"] < 1 * MiB and growth < 20  # bytes per row: flat
    assert small["temp_peak"] == large["temp_peak"] == 0


def test_xlsxwriter_default_memory_grows_with_the_rows():
    growth, _, large = per_row(DEFAULT, "peak")
    assert growth > 500  # bytes per row of six cells
    assert large["temp_peak"] > 0 and large["left"] == 0


def test_constant_memory_keeps_memory_flat_but_writes_temporary_files():
    growth, small, large = per_row(CONSTANT, "peak")
    # What grows is the finished file in its BytesIO, about 30 bytes a row.
    file_growth = (large["size"] - small["size"]) / 600
    assert growth - file_growth < 20
    temp_growth, _, _ = per_row(CONSTANT, "temp_peak")
    assert temp_growth > 200  # bytes of temporary file per row
    assert large["left"] == 0


def test_a_slow_poll_does_not_lose_a_deletions_measurement(monkeypatch):
    # A poll that is descheduled after measuring, as on a loaded machine,
    # must not write back less than a deletion recorded meanwhile.
    exact = measure(CONSTANT, 200)["temp_peak"]
    size = TempWatch.size

    def slow_in_the_poller(self):
        measured = size(self)
        if threading.current_thread() is self.thread:
            time.sleep(0.02)
        return measured

    monkeypatch.setattr(TempWatch, "size", slow_in_the_poller)
    assert measure(CONSTANT, 200)["temp_peak"] == exact > 0


def test_in_memory_writes_no_file_and_grows():
    growth, small, large = per_row(IN_MEMORY, "peak")
    assert small["temp_peak"] == large["temp_peak"] == 0
    assert growth > 500


def test_in_memory_turns_constant_memory_off():
    workbook = xlsxwriter.Workbook(
        io.BytesIO(), {"in_memory": True, "constant_memory": True}
    )
    assert workbook.constant_memory is False
    workbook.close()


# --- the committed 100,000-row measurements ----------------------------------------


def read_data():
    with open(DATA / "spreadsheets.csv", newline="") as f:
        return {row["approach"]: row for row in csv.DictReader(f)}


def test_committed_measurements_say_what_the_page_says():
    rows = read_data()
    assert set(rows) == set(APPROACHES)
    mib = {name: float(row["Python peak (MiB)"]) for name, row in rows.items()}
    temp = {
        name: float(row["temporary files, peak (MiB)"]) for name, row in rows.items()
    }
    assert all(row["rows"] == "100,000" for row in rows.values())
    assert all(row["files left"] == "0" for row in rows.values())
    assert mib[STREAMED] < 1 and temp[STREAMED] == 0
    assert mib[BUILT] < 2 and temp[BUILT] > 20
    assert mib[DEFAULT] > 50 * mib[STREAMED]
    size = {name: float(row["file (MiB)"]) for name, row in rows.items()}
    assert mib[CONSTANT] - size[CONSTANT] < 2 and temp[CONSTANT] > 20
    assert mib[IN_MEMORY] > mib[DEFAULT] and temp[IN_MEMORY] == 0


def data_row(name, rows):
    sizes = measure(name, rows)
    return [
        name,
        f"{rows:,}",
        f"{sizes['peak'] / MiB:.2f}",
        f"{sizes['temp_peak'] / MiB:.1f}",
        f"{sizes['size'] / MiB:.2f}",
        sizes["left"],
    ]


def write_data(rows):
    """Measure every approach at ``rows`` rows; write the table the page shows.
    No times: on a shared machine they say more about the load than the code
    (the page's claims about the first byte are tests instead)."""
    fields = [
        "approach",
        "rows",
        "Python peak (MiB)",
        "temporary files, peak (MiB)",
        "file (MiB)",
        "files left",
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    for name in APPROACHES:
        writer.writerow(data_row(name, rows))
        print(out.getvalue().splitlines()[-1], flush=True)
    DATA.mkdir(exist_ok=True)
    (DATA / "spreadsheets.csv").write_text(out.getvalue())


if __name__ == "__main__":
    write_data(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)


# --- temporary files: none left behind -------------------------------------------


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Point :mod:`tempfile` at an empty folder of this test's own."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def failing_rows(after):
    def rows(count):
        for i, row in enumerate(fetch_rows(count)):
            if i == after:
                raise RuntimeError("the database went away")
            yield row

    return rows


def test_xlsxwriter_leaves_its_temporary_file_when_a_build_fails(private_tmp):
    """constant_memory's row file is removed by close(); an exception before
    close() leaves it in the temporary folder."""
    workbook = xlsxwriter.Workbook(io.BytesIO(), {"constant_memory": True})
    sheet = workbook.add_worksheet()
    with pytest.raises(RuntimeError):
        for r, row in enumerate(failing_rows(500)(1000)):
            sheet.write_row(r, 0, [str(v) for v in row])
    assert len(list(private_tmp.iterdir())) == 1
    assert next(private_tmp.iterdir()).stat().st_size > 0


def test_built_view_leaves_nothing_when_the_build_fails(private_tmp, monkeypatch):
    monkeypatch.setattr(spreadsheets_built, "fetch_rows", failing_rows(500))
    response = spreadsheets_built.app.test_client().get("/built.xlsx?rows=1000")
    assert response.status_code == 500
    assert list(private_tmp.iterdir()) == []
    assert open_fds(private_tmp) == []


@pytest.mark.parametrize("path", ["/export.xlsx?rows=2000", "/built.xlsx?rows=2000"])
def test_a_finished_or_abandoned_download_leaves_nothing(private_tmp, path):
    for read_all in (True, False):
        response = client(path).get(path)
        chunks = iter(response.response)
        if read_all:
            assert sum(len(c) for c in chunks) > 0
        else:
            assert next(chunks)  # the client leaves after the first chunk
        response.close()
        assert list(private_tmp.iterdir()) == []
        assert open_fds(private_tmp) == []


def test_built_view_holds_one_unnamed_file_until_the_body_is_closed(private_tmp):
    response = spreadsheets_built.app.test_client().get("/built.xlsx?rows=100")
    assert list(private_tmp.iterdir()) == []  # no name in the folder at all
    (fd,) = open_fds(private_tmp)
    assert os.readlink(f"/proc/self/fd/{fd}").endswith("(deleted)")
    response.close()
    assert open_fds(private_tmp) == []


def test_send_file_has_no_length_for_a_temporary_file():
    with app.test_request_context(), tempfile.TemporaryFile() as out:
        out.write(b"data")
        out.seek(0)
        response = send_file(out, mimetype="application/octet-stream")
        assert response.content_length is None
        response.close()


def test_streamed_parts_are_deflated():
    body = b"".join(streamed_xlsx(fetch_rows(1000)))
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None
        infos = archive.infolist()
        assert [i.filename for i in infos] == [
            "[Content_Types].xml",
            "_rels/.rels",
            "xl/workbook.xml",
            "xl/_rels/workbook.xml.rels",
            "xl/styles.xml",
            "xl/worksheets/sheet1.xml",
        ]
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in infos)
        sheet = archive.getinfo("xl/worksheets/sheet1.xml")
        assert sheet.compress_size * 5 < sheet.file_size


# --- values a database hands back: each a cell, never a broken file ------------


def both_exports(rows):
    """The header and ``rows`` read back from the streamed export and from
    XlsxWriter's (spreadsheets_built.built_xlsx), in that order; each row
    cut to the width of the first (openpyxl pads to the header's)."""
    built = io.BytesIO()
    spreadsheets_built.built_xlsx(rows, built)
    width = len(rows[0])
    return [
        [row[:width] for row in read_back(body)]
        for body in (b"".join(streamed_xlsx(rows)), built.getvalue())
    ]


def test_a_datetime_is_a_date_and_time_in_both_exports():
    """A datetime was a TypeError in the middle of the stream, after the 200;
    an aware one is written in UTC, since Excel has no time zones."""
    stamp = datetime(2024, 5, 6, 7, 8, 9)
    aware = datetime(2024, 5, 6, 9, 8, 9, tzinfo=timezone(timedelta(hours=2)))
    for got in both_exports([(stamp, aware, date(2024, 5, 6))]):
        assert got[1] == [(stamp, "d"), (stamp, "d"), (datetime(2024, 5, 6), "d")]
    response = app.test_client().get("/export.xlsx?rows=1")
    assert response.status_code == 200 and read_back(response.data)[1][4][1] == "d"


def test_a_decimal_is_a_number_in_both_exports():
    for got in both_exports([(Decimal("12.50"), Decimal("-3"))]):
        assert got[1] == [(12.5, "n"), (-3, "n")]


def test_nan_and_infinity_are_empty_cells_in_both_exports():
    """Excel has no NaN or infinity: the cell is left empty, as for None
    (the streamed export wrote ``<v>nan</v>``, which no reader accepts)."""
    row = (1, float("nan"), float("inf"), -math.inf, Decimal("NaN"), 2)
    assert cell(0, 1, float("nan")) == ""
    for got in both_exports([row]):
        assert [value for value, _ in got[1]] == [1, None, None, None, None, 2]


def test_a_lone_surrogate_becomes_a_replacement_character_in_both_exports():
    """Half a UTF-16 pair has no UTF-8 form: .encode() raised mid-stream."""
    for got in both_exports([("a\ud800b", "\udfff=1")]):
        assert got[1] == [("a\ufffdb", "s"), ("\ufffd=1", "s")]


@pytest.mark.parametrize("text", FORMULA_LIKE)
def test_formula_like_text_reads_the_same_in_csv_and_both_excel_exports(text):
    """The one guard, snippets.csv_export.neutralise: each of the 22 inputs
    reads back from the CSV and from both .xlsx exports as the same text,
    quoted, and as text, never a formula."""
    body = "".join(csv_chunks([(text,)]))
    (csv_cell,) = list(csv.reader(io.StringIO(body, newline="")))[1]
    assert csv_cell == "'" + text
    streamed, built = both_exports([(text,)])
    assert streamed[1] == [(csv_cell, "s")]
    # XlsxWriter writes \r as Excel's escape _x000D_, which Excel reads back
    # as \r and openpyxl leaves as it is (as _x0007_ above).
    assert built[1] == [(csv_cell.replace("\r", "_x000D_"), "s")]


@pytest.mark.parametrize("path", ["/export.xlsx?rows=5", "/built.xlsx?rows=5"])
def test_head_answers_like_get_with_no_body(path):
    """The same headers, but for the built file's length: XlsxWriter stamps
    the file with the time it was made, and another second can compress to
    another size."""
    get, head = client(path).get(path), client(path).head(path)
    assert head.status_code == get.status_code == 200
    sized = [dict(r.headers) for r in (get, head)]
    for headers in sized:
        if path.startswith("/built"):
            assert int(headers.pop("Content-Length")) > 0
    assert sized[0] == sized[1] and head.data == b""
    get.close()
    head.close()


def test_the_recipe_alone_runs_as_a_file(tmp_path):
    """The recipe, pasted alone into app.py: a streamed 200 that openpyxl
    reads back, every demo row typed, text as text."""
    check = (
        "import io, openpyxl\n"
        "from app import app\n"
        "response = app.test_client().get('/report.xlsx')\n"
        "assert response.status_code == 200 and response.is_streamed\n"
        "book = openpyxl.load_workbook(io.BytesIO(response.data), read_only=True)\n"
        "rows = list(book.worksheets[0].iter_rows(values_only=True))\n"
        "assert len(rows) == 1001 and rows[2][2] == '=HYPERLINK(\"http://x\")'\n"
        "book.close()\n"
    )
    run_recipe_alone(tmp_path, "spreadsheets", check)


def test_below_the_recipe_the_csv_guard_replaces_the_recipes():
    assert spreadsheet.guard is neutralise
