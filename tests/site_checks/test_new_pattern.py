"""Adding a pattern touches its page, its snippet, its tests and the toctree:
the cross-cutting checks read the rest from the snippet's code. A throwaway
snippet, in a copy of snippets/, is picked up by each of them."""

from __future__ import annotations

import shutil

import pytest

from tests import snippet_index, tiers
from tests.site_checks import test_number_reads

THROWAWAY = """
import redis
from flask import Flask, Response

from snippets.checks import whole_number

app = Flask(__name__)


@app.get("/ticks")
def ticks():
    n = whole_number("n", 1, 100, default=3)
    return Response((f"{i}\\n" for i in range(n)), mimetype="text/plain")


# Fails on purpose: the page shows a broken stream.
@app.get("/broken")
def broken():
    raise RuntimeError("shown on the page")


def store():
    return redis.Redis()
"""


@pytest.fixture
def with_throwaway(tmp_path, monkeypatch):
    folder = tmp_path / "snippets"
    shutil.copytree(snippet_index.SNIPPETS, folder)
    (folder / "throwaway.py").write_text(THROWAWAY)
    monkeypatch.setattr(snippet_index, "SNIPPETS", folder)
    monkeypatch.setattr(tiers, "ROOT", tmp_path)
    snippet_index.tree.cache_clear()
    yield folder
    snippet_index.tree.cache_clear()


def test_a_new_snippet_is_an_app_served_by_flask(with_throwaway):
    assert "throwaway" in snippet_index.apps()  # test_snippets_run serves it
    assert snippet_index.cli("throwaway") == "flask"


def test_a_new_snippet_that_talks_to_redis_joins_the_redis_tier(with_throwaway):
    assert snippet_index.stores("throwaway") == {"redis-server"}
    assert "snippets/throwaway.py" in tiers.only_reached_by("redis-server")


def test_a_new_route_that_fails_on_purpose_is_known_as_such(with_throwaway):
    assert ("throwaway", "/broken") in snippet_index.on_purpose()
    assert ("throwaway", "/ticks") not in snippet_index.on_purpose()


def test_a_new_number_is_found_and_must_get_bad_values(with_throwaway):
    assert test_number_reads.whole_number_reads("throwaway") == [("n", "query")]
    assert test_number_reads.hand_parsed(snippet_index.tree("throwaway")) == []
    with pytest.raises(AssertionError):  # no bad-numbers case for it yet
        test_number_reads.test_every_number_a_view_reads_gets_bad_values("throwaway")
