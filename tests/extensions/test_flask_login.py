"""extensions/flask_login: current_user inside a streaming generator, on
Flask 3.1.1 and on the locked Flask."""

import pytest
from flask_login import current_user

from snippets.flask_login import app


def test_outside_a_request_current_user_is_a_proxy_to_none():
    """Why the error reads so strangely: Flask-Login returns None, where
    request would raise 'Working outside of request context'."""
    assert not current_user
    assert current_user == None  # noqa: E711 the proxy compares as None
    assert current_user is not None  # ... but it is a LocalProxy
    with pytest.raises(AttributeError, match="'NoneType' object has no attr"):
        current_user.is_authenticated  # noqa: B018


def test_broken_report_sends_first_line_then_fails():
    client = app.test_client()
    client.post("/login/1")
    response = client.get("/report-broken")
    assert response.status_code == 200
    assert next(response.response) == b"Report\n"
    with pytest.raises(AttributeError, match="'NoneType' object has no attr"):
        next(response.response)
    response.close()


@pytest.mark.parametrize(
    ("path", "status"),
    [("/report", 401), ("/report-wrapped", 401), ("/report-broken", 401)],
)
def test_anonymous_gets_401_before_the_stream(path, status):
    assert app.test_client().get(path).status_code == status


@pytest.mark.parametrize(
    "lines", ["0", "1001", "x", "", pytest.param("9" * 5000, id="huge")]
)
def test_bad_lines_are_refused(lines):
    client = app.test_client()
    client.post("/login/1")
    response = client.get(f"/report?lines={lines}")
    assert response.status_code == 400
    assert b"lines must be a whole number from 1 to 1,000" in response.data


def test_unknown_user_cannot_log_in():
    assert app.test_client().post("/login/9").status_code == 404
