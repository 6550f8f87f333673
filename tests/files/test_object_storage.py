"""snippets/object_storage.py against a real S3-compatible server (moto in
server mode, tests/launchers/s3.py) on 127.0.0.1, in-process with the test
client: the stream, Range, errors before the stream, the presigned link,
and peak memory for a 100 MB object."""

import contextlib
import tracemalloc

import pytest

from snippets import object_storage
from snippets.object_storage import CHUNK_BYTES, app
from tests.launchers.s3 import s3_server

BIG = 100 * 2**20  # 100 MB
HELLO = b"Hello, object storage!\n"


@contextlib.contextmanager
def storage(**objects):
    """A fresh S3 server with a ``media`` bucket holding ``objects``; the
    snippet's client points at it meanwhile."""
    with s3_server() as server:
        client = server.client()
        client.create_bucket(Bucket="media")
        for key, data in objects.items():
            client.put_object(
                Bucket="media", Key=key.replace("_", "."), Body=data,
                ContentType="text/plain" if key.endswith("txt") else "video/mp4",
            )  # fmt: skip
        previous = object_storage.s3
        object_storage.s3 = server.client()  # no connection in its pool yet
        try:
            yield server
        finally:
            object_storage.s3 = previous


@pytest.fixture(scope="module")
def stored():
    with storage(hello_txt=HELLO, big_mp4=b"\x00" * BIG) as server:
        yield server


@pytest.fixture
def client(stored):
    return app.test_client()


def test_the_object_streams_with_its_length_and_type(client):
    response = client.get("/files/hello.txt")
    assert response.status_code == 200
    assert response.data == HELLO
    assert response.headers["Content-Length"] == str(len(HELLO))
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.mimetype == "text/plain"


def test_peak_memory_stays_flat_for_a_100_mb_object(client):
    """tracemalloc over the whole download, chunk by chunk: the peak stays
    a few chunks (measured: 0.3 MB for 100 MB)."""
    tracemalloc.start()
    try:
        response = client.get("/files/big.mp4", buffered=False)
        size = sum(len(chunk) for chunk in response.response)
        response.close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert size == BIG
    print(f"peak {peak:,} bytes for {size:,}")
    assert peak < 32 * CHUNK_BYTES < BIG / 40


@pytest.mark.parametrize(
    ("asked", "content_range", "body"),
    [
        ("bytes=0-4", "bytes 0-4/23", b"Hello"),
        ("bytes=7-", "bytes 7-22/23", b"object storage!\n"),
        ("bytes=-8", "bytes 15-22/23", b"torage!\n"),
    ],
)
def test_a_range_passes_through_as_a_206(client, asked, content_range, body):
    response = client.get("/files/hello.txt", headers={"Range": asked})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == content_range
    assert response.headers["Content-Length"] == str(len(body))
    assert response.data == body


@pytest.mark.parametrize("asked", ["bytes=0-1,5-6", "items=0-4", "bytes=x-"])
def test_a_range_the_recipe_does_not_pass_gets_the_whole_object(client, asked):
    response = client.get("/files/hello.txt", headers={"Range": asked})
    assert (response.status_code, response.data) == (200, HELLO)


def test_a_range_past_the_end_is_a_416(client):
    response = client.get("/files/hello.txt", headers={"Range": "bytes=100-"})
    assert response.status_code == 416


@pytest.mark.parametrize("key", ["missing.txt", "..", "a b", "x" * 201])
def test_a_missing_or_unsafe_key_is_a_404(client, key):
    assert client.get(f"/files/{key}").status_code == 404
    if key != "..":  # Werkzeug's router already refuses ".."
        assert client.get(f"/links/{key}").status_code == (
            302 if key == "missing.txt" else 404
        )


def test_the_presigned_link_redirects_to_the_store(client, stored):
    response = client.get("/links/hello.txt")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{stored.url}/media/hello.txt?")
    assert "Signature=" in location and "Expires=" in location


def test_an_unreachable_store_or_missing_credentials_is_a_502(monkeypatch):
    """No server listens there, and the client has no credentials: both are
    a 502 before the stream, not a 500."""
    import boto3
    from botocore.config import Config

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    # A session of its own: boto3's default one keeps the credentials it
    # found first, and another test of this process may have set some.
    unsigned = boto3.session.Session().client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
    )
    monkeypatch.setattr(object_storage, "s3", unsigned)
    client = app.test_client()
    for path in ("/files/hello.txt", "/links/hello.txt"):
        assert client.get(path).status_code == 502


def test_another_store_error_is_a_server_error(client, monkeypatch):
    """A missing bucket is the app's misconfiguration, not the client's
    request: botocore's error propagates, and Flask answers 500."""
    monkeypatch.setattr(object_storage, "BUCKET", "no-such-bucket")
    assert client.get("/files/hello.txt").status_code == 500
