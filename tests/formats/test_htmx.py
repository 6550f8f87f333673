"""snippets/htmx.py in process: the pages load the pinned, vendored
scripts from the app, and notes are bounded."""

import pytest

from snippets import htmx


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setattr(htmx, "notes", htmx.deque(["hello"], maxlen=100))
    return htmx.app.test_client()


@pytest.mark.parametrize(
    ("path", "scripts"),
    [
        ("/", ["htmx.org-2.0.11/htmx.min.js", "htmx-ext-sse-2.2.4/sse.js"]),
        ("/htmx4", ["htmx.org-4.0.1/htmx.min.js", "htmx.org-4.0.1/hx-sse.js"]),
    ],
)
def test_pages_load_pinned_scripts_from_the_app(client, path, scripts):
    page = client.get(path).get_data(as_text=True)
    for script in scripts:
        assert f'src="/vendor/{script}"' in page
        reply = client.get(f"/vendor/{script}")
        assert reply.status_code == 200
        reply.close()
    assert "//" not in page.replace("<!doctype", "")  # no CDN URL


def test_vendor_route_stays_in_its_folder(client):
    assert client.get("/vendor/../../snippets/htmx.py").status_code == 404


def test_notes_are_cut_to_200_characters_and_100_kept(client):
    for n in range(150):
        assert client.post("/notes", data={"text": f"{n}" * 300}).status_code == 204
    assert len(htmx.notes) == 100
    assert htmx.notes[-1] == ("149" * 300)[:200]
