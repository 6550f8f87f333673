"""What a docs project ships: the Read the Docs and GitHub Actions configs
are valid (against check-jsonschema's vendored schemas, offline) and run the
project's own two commands, and the built site carries its metadata."""

import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path

import pytest
from generated import GENERATED  # docs/_ext, on the path (root conftest)
from ruamel.yaml import YAML

from tests.servers import server_env

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
from installed import canonical, read_lock  # noqa: E402  the :installed: role's

load = YAML(typ="safe").load
HTML = ROOT / "_build" / "html"


@pytest.mark.parametrize(
    ("schema", "path"),
    [
        ("vendor.readthedocs", ".readthedocs.yaml"),
        ("vendor.github-workflows", ".github/workflows/test.yml"),
    ],
)
def test_config_is_valid_against_its_schema(schema, path):
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema,
         str(ROOT / path)],
        env=server_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_jsonschema_refuses_a_broken_config(tmp_path):
    broken = tmp_path / "rtd.yaml"
    broken.write_text("version: 2\nbuild:\n  os: windows-95\n")
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema",
         "vendor.readthedocs", str(broken)],
        env=server_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1


def test_read_the_docs_builds_with_make_html():
    config = load((ROOT / ".readthedocs.yaml").read_text())
    assert config["build"]["commands"] == ["make html BUILDDIR=$READTHEDOCS_OUTPUT"]


def test_the_workflow_runs_ci_run_in_shards_and_combines_their_coverage():
    workflow = load((ROOT / ".github/workflows/test.yml").read_text())
    test, coverage = workflow["jobs"]["test"], workflow["jobs"]["coverage"]
    assert {"run": "bash .ci/run"} in test["steps"]
    shards = test["strategy"]["matrix"]["shard"]
    assert test["env"]["FSP_SHARD"] == "${{ matrix.shard }}/" + str(len(shards))
    assert shards == list(range(1, len(shards) + 1))
    assert coverage["needs"] == "test"
    assert {"run": "bash .ci/coverage shards"} in coverage["steps"]


def built(name):
    path = HTML / name
    if not path.exists():
        pytest.fail(f"{name} is not built: run make html (make test does)")
    return path.read_text()


def test_the_site_ships_a_sitemap_llms_txt_and_a_favicon():
    assert "<loc>" in built("sitemap.xml")
    assert built("llms.txt").startswith("# Flask Streaming Patterns")
    icon = '<link rel="shortcut icon" href="_static/favicon.svg">'
    assert icon in built("index.html")


LOOPBACK = ("127.0.0.1", "localhost")


def test_no_link_points_at_the_loopback_address():
    """Hand-written pages; the generated proof and code pages show test code,
    this test's own strings among it."""
    linked = [
        str(p.relative_to(HTML))
        for p in HTML.rglob("*.html")
        if p.relative_to(HTML).parts[0] not in GENERATED
        and any(f'href="http://{host}' in p.read_text() for host in LOOPBACK)
    ]
    assert not linked


def test_every_page_has_a_description_and_opengraph_tags():
    pages = [
        p
        for p in HTML.rglob("*.html")
        if p.relative_to(HTML).parts[0] not in ("_static", "_sources")
        and p.name not in ("genindex.html", "search.html")
    ]
    missing = [
        str(p.relative_to(HTML))
        for p in pages
        if '<meta name="description"' not in (text := p.read_text())
        or '<meta property="og:title"' not in text
    ]
    assert pages
    assert not missing


# --- the two locks ---------------------------------------------------------------


SITE_LOCK = read_lock(ROOT / "requirements-docs.txt")
FULL_LOCK = read_lock(ROOT / "tests" / "requirements.txt")


def test_the_site_lock_is_a_part_of_the_full_lock():
    # make html installs the site's lock, make test the full one on top of it:
    # every package the two share has the same version and the same hashes.
    assert len(SITE_LOCK) < len(FULL_LOCK) / 2
    assert all(hashes for _, hashes in FULL_LOCK.values())
    assert {name: FULL_LOCK.get(name) for name in SITE_LOCK} == SITE_LOCK


def test_make_html_does_not_install_what_only_the_tests_need():
    for heavy in ("playwright", "numpy", "matplotlib", "celery", "pytest"):
        assert heavy in FULL_LOCK and heavy not in SITE_LOCK


def test_every_package_of_the_full_lock_is_installed_at_its_pin():
    installed = {canonical(d.metadata["Name"]): d.version for d in distributions()}
    wrong = {
        name: (version, installed.get(name))
        for name, (version, _) in FULL_LOCK.items()
        if installed.get(name) != version
    }
    assert not wrong  # {name: (pinned, installed)}
