"""snippets/sse_auth.py and sse_auth_tickets.py in process: Flask-CORS's
answers, tickets that expire, bounded stores, and bad input."""

import pytest
from flask import Flask
from flask_cors import CORS

from snippets import sse_auth
from snippets import sse_auth_tickets as tickets_app

PASSWORD = "correct horse"


@pytest.fixture
def api(monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", PASSWORD)
    monkeypatch.setattr(tickets_app, "TICK_SECONDS", 0)
    return tickets_app.app.test_client()


def test_flask_cors_without_origins_lets_any_site_read_with_credentials():
    """Flask-CORS 6 with supports_credentials and no origins does not send
    `*` (which browsers would refuse): it echoes whatever Origin came, with
    Allow-Credentials, so every site can read the response with cookies."""
    app = Flask(__name__)
    CORS(app, supports_credentials=True)
    app.get("/events")(lambda: "data: private\n\n")
    reply = app.test_client().get("/events", headers={"Origin": "https://evil.test"})
    assert reply.headers["Access-Control-Allow-Origin"] == "https://evil.test"
    assert reply.headers["Access-Control-Allow-Credentials"] == "true"


def test_unlisted_origin_gets_no_cors_headers():
    """FRONT_END_ORIGINS is empty here: no origin is allowed to read."""
    reply = sse_auth.app.test_client().get(
        "/events", headers={"Origin": "https://evil.test"}
    )
    assert "Access-Control-Allow-Origin" not in reply.headers


@pytest.mark.parametrize(
    "form",
    [{}, {"user": "ada"}, {"user": "ada", "password": "wrong"}],
    ids=["nothing", "no-password", "wrong-password"],
)
def test_login_and_token_refuse_a_wrong_password(monkeypatch, form):
    monkeypatch.setenv("DEMO_PASSWORD", PASSWORD)
    assert sse_auth.app.test_client().post("/login", data=form).status_code == 401
    assert tickets_app.app.test_client().post("/token", data=form).status_code == 401


def test_without_a_demo_password_nobody_signs_in(monkeypatch):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    form = {"user": "ada", "password": ""}
    assert sse_auth.app.test_client().post("/login", data=form).status_code == 401


def test_token_for_a_bad_user_name_is_400(api):
    reply = api.post("/token", data={"user": "a b", "password": PASSWORD})
    assert reply.status_code == 400
    assert b"1 to 40 letters or digits" in reply.data


def test_issued_token_opens_the_bearer_stream(api):
    token = api.post("/token", data={"user": "bo", "password": PASSWORD}).json["token"]
    try:
        reply = api.get(
            "/events/bearer?limit=1", headers={"Authorization": f"Bearer {token}"}
        )
        assert reply.get_data(as_text=True) == "id: 1\ndata: bo #1\n\n"
    finally:
        tickets_app.tokens.pop(token)


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Bearer nope", "Basic t0ken"], ids=repr
)
def test_bearer_stream_without_a_known_token_is_401(api, monkeypatch, header):
    monkeypatch.setitem(tickets_app.tokens, "t0ken", "ada")
    reply = api.get("/events/bearer", headers={"Authorization": header})
    assert reply.status_code == 401


def test_bad_last_event_id_is_400_before_the_stream(api, monkeypatch):
    monkeypatch.setitem(tickets_app.tokens, "t0ken", "ada")
    reply = api.get(
        "/events/bearer",
        headers={"Authorization": "Bearer t0ken", "Last-Event-ID": "x"},
    )
    assert reply.status_code == 400


def test_expired_ticket_is_401_and_expired_tickets_are_dropped(api, monkeypatch):
    """A ticket past TICKET_SECONDS opens nothing; the next POST /ticket
    drops it from memory."""
    monkeypatch.setitem(tickets_app.tokens, "t0ken", "ada")
    monkeypatch.setattr(tickets_app, "TICKET_SECONDS", -1)
    bearer = {"Authorization": "Bearer t0ken"}
    old = api.post("/ticket", headers=bearer).json["ticket"]
    assert api.get(f"/events?ticket={old}").status_code == 401
    stale = api.post("/ticket", headers=bearer).json["ticket"]
    api.post("/ticket", headers=bearer)
    assert stale not in tickets_app.tickets
    tickets_app.tickets.clear()


def test_ticket_and_token_stores_are_bounded(api, monkeypatch):
    """Past MAX_TICKETS outstanding tickets (or tokens), a 503, not more
    memory."""
    monkeypatch.setitem(tickets_app.tokens, "t0ken", "ada")
    monkeypatch.setattr(tickets_app, "MAX_TICKETS", 0)
    assert (
        api.post("/ticket", headers={"Authorization": "Bearer t0ken"}).status_code
        == 503
    )
    form = {"user": "ada", "password": PASSWORD}
    assert api.post("/token", data=form).status_code == 503


def test_demo_page_and_vendored_client_are_served(api):
    page = api.get("/")
    assert b"fetch-event-source-2.0.1/fetch.js" in page.data
    script = api.get("/vendor/fetch-event-source-2.0.1/fetch.js")
    assert script.status_code == 200
    assert b"export function fetchEventSource" in script.data
    script.close()
    assert api.get("/vendor/../../snippets/sse_auth.py").status_code == 404
