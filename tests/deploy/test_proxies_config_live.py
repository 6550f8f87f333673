"""deploy/proxies: the nginx location the page shows, included as it is
(docs/deploy/_conf/nginx-streams.conf) in front of gunicorn."""

from pathlib import Path

import pytest

from tests.deploy.test_proxies_live import lines_per_piece, streams, timeline
from tests.servers import gunicorn, nginx_http

pytestmark = [pytest.mark.live, pytest.mark.nginx]

LOCATION = Path(__file__).resolve().parents[2] / "docs/deploy/_conf/nginx-streams.conf"


@pytest.fixture(scope="module")
def proxied():
    """nginx with the location file, in front of the probe of deploy/servers
    (which sends no X-Accel-Buffering: only the location can make it stream)."""
    options = {"worker_class": "gthread", "args": ("--threads", "4")}
    with gunicorn("snippets.servers:app", **options) as (app, _):
        address = app.split("//")[1]
        upstream = f"upstream flask_app {{ server {address}; }}"
        with nginx_http(upstream, f"include {LOCATION};") as url:
            yield url


def test_the_nginx_location_passes_each_line_as_it_is_made(proxied):
    pieces, stream = timeline(proxied, "/stream?chunks=3&interval_ms=300")
    assert stream.complete
    assert stream.headers["transfer-encoding"] == "chunked"
    assert lines_per_piece(pieces) == [1, 1, 1]
    assert streams(pieces)
