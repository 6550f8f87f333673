"""The ``:test:`` role (docs/_ext/proofs.py): a proof is one click away, and a
stale or misspelt test name fails the build.

The first tests build a tiny site of their own; the others read the real
site that ``make html`` built (``make test`` builds it first).
"""

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.servers import STRICT, server_env

# The built pages' HTML, parsed here, and Sphinx builds in subprocesses: no
# snippet runs in this process, so coverage's tracer would only cost CPU.
pytestmark = pytest.mark.no_cover

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
GENERATED = ("proof", "code", "_static", "_sources", "_images")

CONF = f"""
import sys
sys.path.insert(0, {str(ROOT / "docs" / "_ext")!r})
extensions = ["proofs"]
"""
TESTS = '''
def test_cited():
    """What this proves."""
    assert True


class TestGroup:
    def test_method(self):
        assert True
'''


def build(tmp_path, page):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "conf.py").write_text(CONF)
    (tmp_path / "docs" / "index.rst").write_text("Title\n=====\n\n" + page)
    (tmp_path / "tests" / "part").mkdir(parents=True)
    (tmp_path / "tests" / "part" / "test_index.py").write_text(TESTS)
    (tmp_path / "snippets").mkdir()
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html",
         str(tmp_path / "docs"), str(tmp_path / "out")],
        env=server_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_misspelt_test_name_fails_the_build(tmp_path):
    result = build(tmp_path, "Proven (:test:`tests/part/test_index.py::test_cietd`).\n")
    assert result.returncode != 0
    assert "no test test_cietd in tests/part/test_index.py" in result.stderr


def test_unknown_module_fails_the_build(tmp_path):
    result = build(tmp_path, "Proven (:test:`tests/part/test_nope.py::test_cited`).\n")
    assert result.returncode != 0
    assert "no test module tests/part/test_nope.py" in result.stderr


def lock(tmp_path, text):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "requirements.txt").write_text(text)


def test_installed_shows_the_pin_when_make_html_alone_did_not_install_it(tmp_path):
    # make html installs only the site's lock: a page names packages that only
    # make test installs, at the version the full lock pins.
    lock(tmp_path, "not-in-this-venv[extra]==1.2.3 \\\n    --hash=sha256:00\n")
    result = build(tmp_path, "Verified against :installed:`Not_In.This-Venv`.\n")
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "out" / "index.html").read_text()
    code = re.search(r'<code class="installed [^"]*">(.*?)</code>', page)[1]
    assert re.sub(r"<[^>]+>", "", code) == "Not_In.This-Venv 1.2.3"


def test_installed_fails_the_build_for_a_wrong_version_or_a_missing_pin(tmp_path):
    lock(tmp_path, "flask==0.1\n")  # Flask 3.1.3 is installed here
    page = "Verified against :installed:`Flask` and :installed:`flask-nope`.\n"
    result = build(tmp_path, page)
    assert result.returncode != 0
    assert (
        "`Flask`: 3.1.3 is installed, tests/requirements.txt pins 0.1" in result.stderr
    )
    assert "`flask-nope`: not pinned in tests/requirements.txt" in result.stderr


def test_cited_test_links_to_its_anchor_with_the_full_id_on_hover(tmp_path):
    page = (
        "Proven (:test:`tests/part/test_index.py::test_cited`) and "
        "(:test:`tests/part/test_index.py::TestGroup::test_method`).\n"
    )
    result = build(tmp_path, page)
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "out" / "index.html").read_text()
    assert (
        'href="proof/part/test_index.html#proof-part-test-index-test-cited" '
        'title="tests/part/test_index.py::test_cited"'
    ) in html
    # A mark, not the name; the parentheses around a citation are gone.
    assert '<span class="proof-mark">\u2713</span></a> and<a' in html
    assert "Proven<a " in html
    assert '<span class="proof-mark">\u2713</span></a>.</p>' in html
    assert '<code class="proof docutils literal notranslate"' not in html
    proof = (tmp_path / "out" / "proof" / "part" / "test_index.html").read_text()
    assert 'id="proof-part-test-index-test-cited"' in proof
    assert "What this proves." in proof
    assert 'id="proof-part-test-index-testgroup-test-method"' in proof
    assert re.search(r"Cited by <a [^>]*href=\"../../index.html\"", proof)


def test_testname_shows_the_name_and_keeps_the_parentheses(tmp_path):
    page = "Settled by (:testname:`tests/part/test_index.py::test_cited`).\n"
    result = build(tmp_path, page)
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "out" / "index.html").read_text()
    assert "Settled by (<a " in html
    assert '<code class="proof docutils literal notranslate">' in html
    assert "test_cited</span></code></a>).</p>" in html


# -- the real site ---------------------------------------------------------------


@pytest.fixture(scope="module")
def built_pages():
    if not (HTML / "index.html").exists():
        reason = "the site is not built: run make html (make test does)"
        if STRICT:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return [
        p
        for p in sorted(HTML.rglob("*.html"))
        if p.relative_to(HTML).parts[0] not in GENERATED
        and p.name not in ("genindex.html", "search.html")
    ]


class Links(HTMLParser):
    """Text outside links, and the targets of the proof links."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.outside = []
        self.proofs = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.depth += 1
            attrs = dict(attrs)
            if "proof-link" in (attrs.get("class") or ""):
                self.proofs.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "a":
            self.depth -= 1

    def handle_data(self, data):
        if not self.depth:
            self.outside.append(data)


def parse(path):
    parser = Links()
    parser.feed(path.read_text())
    return parser


def test_no_test_id_is_literal_text_outside_a_link(built_pages):
    found = {}
    for path in built_pages:
        text = "".join(parse(path).outside)
        ids = re.findall(r"tests/\S+\.py::\w+", text)
        if ids:
            found[str(path.relative_to(HTML))] = ids
    assert not found


def test_every_cited_test_opens_on_the_site(built_pages):
    count = 0
    for path in built_pages:
        for href in parse(path).proofs:
            target, _, anchor = href.partition("#")
            page = (path.parent / target).resolve()
            assert page.exists(), f"{path.name}: {href}"
            if anchor:
                assert f'id="{anchor}"' in page.read_text(), f"{path.name}: {href}"
            count += 1
    assert count > 100  # the site cites its proofs; a broken role would cite none
