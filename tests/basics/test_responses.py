"""In process: the Responses page's recipe."""

from types import SimpleNamespace

from snippets import responses


def test_recipe_sends_each_line_before_its_pause(monkeypatch):
    """The stand-in work sleeps after each yield: a line is handed to the
    server before the pause that follows it, not after."""
    pauses = []
    monkeypatch.setattr(responses, "time", SimpleNamespace(sleep=pauses.append))
    response = responses.app.test_client().get("/stream", buffered=False)
    body = iter(response.response)
    assert next(body) == b"line 1\n"
    assert pauses == []
    assert next(body) == b"line 2\n"
    assert pauses == [responses.PAUSE]
    response.close()
