"""In-process proof for basics/csv_export: quoting and the formula guard hold
for every string, not only for the examples on the page."""

import csv
import importlib
import io
import os
import subprocess
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.csv_export import (
    FORMULA_PREFIXES,
    HEADER,
    csv_chunks,
    looks_like_formula,
    neutralise,
)
from tests.servers import ROOT

# Text with many of the characters that matter: line ends, quotes, commas,
# formula characters, their full-width forms, spaces and invisible ones.
TRICKY = (
    "\r\n\t\"',;=+-@ aZ1\u00a0\u200b\u200d\u2060\ufeff\u3000\uff1d\uff0b\uff0d\uff20"
)
cells = st.one_of(st.text(), st.text(alphabet=TRICKY))
values = st.one_of(cells, st.integers(), st.floats(allow_nan=False))


def read_back(rows):
    body = "".join(csv_chunks(iter(rows), chunk_size=64))
    return list(csv.reader(io.StringIO(body, newline="")))


def spreadsheet_view(cell):
    """What a spreadsheet might look at: look-alikes made plain, leading
    whitespace and invisible (format) characters removed."""
    plain = unicodedata.normalize("NFKC", cell)
    return plain.lstrip(
        "".join(c for c in set(plain) if c.isspace() or unicodedata.category(c) == "Cf")
    )


@settings(max_examples=150, deadline=None, database=None)  # no .hypothesis folder
@given(st.lists(st.lists(values, min_size=1, max_size=4), max_size=5))
def test_every_row_reads_back_as_written_and_no_text_cell_is_a_formula(rows):
    parsed = read_back(rows)
    assert parsed[0] == HEADER
    assert len(parsed) == len(rows) + 1  # no value split a row in two
    for row, cells_read in zip(rows, parsed[1:], strict=True):
        assert cells_read == [str(neutralise(value)) for value in row]
        for value, cell in zip(row, cells_read, strict=True):
            if isinstance(value, str):
                assert not spreadsheet_view(cell).startswith(FORMULA_PREFIXES[:4])
                assert not cell.startswith(FORMULA_PREFIXES)


def test_bare_carriage_return_is_quoted_so_a_reader_keeps_one_row():
    """With lineterminator="\\n" csv left "ok\\r=1+1" unquoted: a reader
    split the row at the \\r and "=1+1" started an unguarded cell."""
    body = "".join(csv_chunks([(1, "ok\r=1+1")]))
    assert body == 'id,customer,note,amount\r\n1,"ok\r=1+1"\r\n'
    assert list(csv.reader(io.StringIO(body, newline="")))[1] == ["1", "ok\r=1+1"]


def test_neutralised_carriage_return_alone_is_quoted():
    assert neutralise("\r") == "'\r"
    assert "".join(csv_chunks([("\r",)])).endswith('"\'\r"\r\n')


# Text a spreadsheet may read as a formula: OWASP's first characters, their
# full-width forms, and formula characters behind spaces and invisible ones.
# tests/formats/test_spreadsheets.py checks that both Excel exports guard
# the same 22.
FORMULA_LIKE = [
    "=1+1",
    "+1",
    "-1",
    "@SUM(A1)",
    "\t=1",
    "\r=1",
    '=HYPERLINK("http://x")',
    "\uff1d1+1",  # FULLWIDTH EQUALS SIGN
    "\uff0b1",  # FULLWIDTH PLUS SIGN
    "\uff0d1",  # FULLWIDTH HYPHEN-MINUS
    "\uff20A1",  # FULLWIDTH COMMERCIAL AT
    "\ufe66HYPERLINK()",  # SMALL EQUALS SIGN
    " =1+1",
    "   @SUM(A1)",
    "\u00a0=1+1",  # NO-BREAK SPACE
    "\u2003+1",  # EM SPACE
    "\u3000+1",  # IDEOGRAPHIC SPACE
    "\u200b=1+1",  # ZERO WIDTH SPACE
    "\u2060-1",  # WORD JOINER
    "\ufeff=1+1",  # BYTE ORDER MARK
    "\ufeff \u200b\uff1d1",
    "\n=1+1",
]


@pytest.mark.parametrize("value", FORMULA_LIKE)
def test_formula_behind_look_alikes_spaces_or_invisible_characters_is_guarded(value):
    assert looks_like_formula(value)
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize("value", ["ok", " hello", "a=b", "\u00a0x", "", "'=1"])
def test_text_that_is_not_a_formula_is_left_alone(value):
    assert neutralise(value) == value


# --- the recipe ------------------------------------------------------------------


def recipe_text(snippet):
    source = (ROOT / "snippets" / f"{snippet}.py").read_text()
    return source.split("# [recipe]\n")[1].split("# [recipe-end]")[0]


def run_recipe_alone(tmp_path, snippet, check):
    """Write the recipe region of ``snippets/<snippet>.py`` alone to
    ``app.py`` and run ``check`` (Python source that imports ``app``) in a
    fresh interpreter where the snippets package is not on the path."""
    recipe = recipe_text(snippet)
    assert "snippets" not in recipe
    (tmp_path / "app.py").write_text(recipe)
    env = {"PATH": os.defpath}  # no PYTHONPATH: the snippets package is not there
    subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, check=True)


def test_the_recipe_alone_runs_as_a_file(tmp_path):
    """The recipe region, pasted alone into app.py: its first route answers
    a plain GET with a streamed 200 of every seeded row, quoted and guarded."""
    check = (
        "import csv, io\n"
        "from app import app\n"
        "response = app.test_client().get('/orders.csv')\n"
        "assert response.status_code == 200 and response.is_streamed\n"
        "assert response.mimetype == 'text/csv'\n"
        "rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))\n"
        'assert len(rows) == 10_001 and rows[2][2] == "\'=HYPERLINK(\\"http://x\\")"\n'
    )
    run_recipe_alone(tmp_path, "csv_export", check)


@pytest.mark.parametrize(
    ("module", "path"),
    [("csv_export", "/orders.csv"), ("csv_export_limits", "/export.csv?rows=5")],
)
def test_head_answers_like_get_with_no_body(module, path):
    app = importlib.import_module(f"snippets.{module}").app
    client = app.test_client()
    get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.headers == get.headers and head.data == b""
    get.close()
    head.close()
