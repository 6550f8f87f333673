"""No snippet signs cookies with a key written in its code."""

import re

import pytest

from snippets.checks import secret_key
from tests.servers import ROOT


def test_secret_key_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("FLASK_SECRET_KEY", "from-the-environment")
    assert secret_key() == "from-the-environment"


def test_without_a_key_the_app_refuses_to_start(monkeypatch):
    monkeypatch.delenv("FLASK_SECRET_KEY")
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    with pytest.raises(RuntimeError, match="set FLASK_SECRET_KEY"):
        secret_key()


def test_flask_run_debug_without_a_key_gets_a_random_one(monkeypatch):
    monkeypatch.delenv("FLASK_SECRET_KEY")
    monkeypatch.setenv("FLASK_DEBUG", "1")
    first, second = secret_key(), secret_key()
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert first != second


@pytest.mark.parametrize(
    "path", sorted((ROOT / "snippets").glob("*.py")), ids=lambda p: p.name
)
def test_no_snippet_writes_a_secret_key_in_its_code(path):
    """A literal after SECRET_KEY or secret_key (``= "dev"``,
    ``SECRET_KEY="..."``, ``.get("SECRET_KEY", "dev")``) is a key anyone who
    reads the code can sign cookies with."""
    source = path.read_text()
    literal = re.compile(
        r"""(?i)secret_key["']?\s*(?:=|,|:)\s*(?:[a-z_.]+\()?\s*(?:["'][^"']*["']\s*,\s*)?["'][^"']+["']"""
    )
    assert not literal.search(source), literal.search(source).group(0)
