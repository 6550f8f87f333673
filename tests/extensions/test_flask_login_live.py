"""extensions/flask_login over a real socket: what a client gets when
current_user fails inside the generator (Werkzeug's threaded server)."""

import httpx
import pytest

from snippets.login_stream import app

pytestmark = pytest.mark.live


def test_client_gets_200_and_a_body_cut_short(live_server):
    url = live_server(app)
    with httpx.Client(base_url=url, timeout=30) as client:
        client.post("/login/1").raise_for_status()
        with client.stream("GET", "/report-broken") as response:
            assert response.status_code == 200
            received = []
            with pytest.raises(httpx.RemoteProtocolError):
                for chunk in response.iter_raw():
                    received.append(chunk)
    assert b"".join(received) == b"Report\n"


def test_value_read_in_view_streams_whole_report(live_server):
    url = live_server(app)
    with httpx.Client(base_url=url, timeout=30) as client:
        client.post("/login/2").raise_for_status()
        body = client.get("/report?lines=3").text
    assert body == "Report\nline 1 for Grace\nline 2 for Grace\nline 3 for Grace\n"
