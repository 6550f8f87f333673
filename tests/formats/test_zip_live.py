"""formats/mjpeg and formats/zip over real servers."""

import io
import zipfile

import pytest

from snippets.zip import app as zip_app
from tests.servers import open_request, read_to_close

pytestmark = pytest.mark.live


def response_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(4096)
        if not piece:
            break
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    return lines[0], headers, rest


def test_sized_zip_goes_out_with_content_length_not_chunked(live_server):
    url = live_server(zip_app)
    sock = open_request(url, "/bundle.zip?file=ndjson.py&file=mjpeg.py", timeout=20)
    with sock:
        status, headers, rest = response_head(sock)
        body = rest + read_to_close(sock)
    assert status == "HTTP/1.1 200 OK"
    assert "transfer-encoding" not in headers
    assert int(headers["content-length"]) == len(body)
    assert zipfile.ZipFile(io.BytesIO(body)).testzip() is None


def test_zip_with_generated_member_is_chunked(live_server):
    url = live_server(zip_app)
    sock = open_request(url, "/bundle.zip?rows=100000", timeout=20)
    with sock:
        status, headers, rest = response_head(sock)
        body = rest + read_to_close(sock)
    assert status == "HTTP/1.1 200 OK"
    assert headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers
    assert body.endswith(b"\r\n0\r\n\r\n")
