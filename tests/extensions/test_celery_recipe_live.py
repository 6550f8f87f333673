"""The Celery page's recipe, snippets/celery.py, with a real worker and a
real redis-server (broker and result backend)."""

import importlib
import json

import pytest

import snippets.celery
from tests.servers import celery_worker, redis_server

pytestmark = [pytest.mark.live, pytest.mark.redis]


@pytest.fixture(scope="module")
def recipe():
    """The recipe's module, imported again with REDIS_URL pointing at this
    test's redis-server, and a solo worker of its own."""
    with redis_server() as url, pytest.MonkeyPatch.context() as patch:
        patch.setenv("REDIS_URL", url)
        module = importlib.reload(snippets.celery)
        with celery_worker("snippets.celery:celery_app", url):
            yield module


def sse(body):
    """(event name, data) of each event of a text/event-stream body."""
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return events


def test_recipe_streams_the_tasks_progress_to_its_end(recipe):
    client = recipe.app.test_client()
    started = client.post("/reports")
    assert started.status_code == 202
    response = client.get(started.json["events"])
    assert response.mimetype == "text/event-stream"
    assert response.headers["X-Accel-Buffering"] == "no"
    events = sse(response.get_data(as_text=True))
    assert events[-1] == ("end", "SUCCESS")
    assert events[-2] == ("message", {"state": "SUCCESS", "done": 10, "total": 10})
    states = [(data["state"], data["done"]) for _, data in events[:-1]]
    assert states == sorted(set(states), key=lambda s: (s[1], s[0] == "SUCCESS"))
    assert {state for state, _ in states[:-1]} <= {"PROGRESS"}  # then SUCCESS
    assert all(data["total"] == recipe.STEPS for _, data in events[:-1])


def test_recipe_refuses_a_task_another_session_started(recipe):
    started = recipe.app.test_client().post("/reports")
    other = recipe.app.test_client()
    assert other.get(started.json["events"]).status_code == 404


def test_head_on_the_recipe_stream_is_answered_like_get(recipe):
    client = recipe.app.test_client()
    events = client.post("/reports").json["events"]
    head = client.head(events)
    assert (head.status_code, head.data) == (200, b"")
    assert head.mimetype == "text/event-stream"
    assert client.head("/reports/made-up/events").status_code == 404


def test_the_recipe_task_body_in_process(recipe, monkeypatch):
    """The task run here, not in the worker (apply): in an app context, it
    stores each step's progress in the result backend, then its result."""
    monkeypatch.setattr(recipe, "STEP_SECONDS", 0)
    seen = []
    monkeypatch.setattr(
        recipe.build, "update_state", lambda **kwargs: seen.append(kwargs)
    )
    result = recipe.build.apply(args=[2])
    assert result.get() == {"done": 2, "total": 2}
    assert seen == [
        {"state": "PROGRESS", "meta": {"done": 1, "total": 2}},
        {"state": "PROGRESS", "meta": {"done": 2, "total": 2}},
    ]
