"""In-process proofs for deploy/proxies: the snippet's gzip streams, and what
Flask-Compress 1.25 does with a streamed response."""

import random
import string
import zlib

import brotli
import pytest
from backports import zstd
from flask import Flask, Response
from flask_compress import Compress

from snippets.proxies import app as headers_app

BROWSER = "gzip, deflate, br, zstd"  # what Chromium sends
DECOMPRESSORS = {
    "deflate": lambda: zlib.decompressobj().decompress,
    "br": lambda: brotli.Decompressor().process,
    "zstd": lambda: zstd.ZstdDecompressor().decompress,
}


def test_snippet_gzip_chunk_decompresses_before_the_next_event_exists():
    """Z_SYNC_FLUSH per chunk: the client can read event n while the
    generator has not made event n + 1 yet (it runs only when pulled)."""
    client = headers_app.test_client()
    response = client.get(
        "/events?count=3&interval_ms=0", headers={"Accept-Encoding": "gzip"}
    )
    assert response.headers["Content-Encoding"] == "gzip"
    inflate = zlib.decompressobj(wbits=31)
    body = iter(response.response)
    for n in (1, 2, 3):
        text = inflate.decompress(next(body)).decode()
        assert text.startswith(f"id: {n}\ndata: ") and text.endswith("\n\n")
    assert inflate.decompress(next(body)) == b""  # the trailer
    assert inflate.eof
    response.close()


def test_snippet_refuses_gzip_with_quality_zero():
    client = headers_app.test_client()
    response = client.get(
        "/events?count=1", headers={"Accept-Encoding": "gzip;q=0, identity"}
    )
    assert "Content-Encoding" not in response.headers
    assert response.get_data(as_text=True).startswith("id: 1\n")


def compressed_app(**config):
    """An app with Flask-Compress and a stream that records what it made."""
    app = Flask(__name__)
    app.config.update(config)
    Compress(app)
    made = []

    @app.get("/")
    def events():
        def generate():
            for n in (1, 2, 3):
                made.append(n)
                yield f"data: event {n}\n\n"

        return Response(generate(), mimetype="text/plain")

    return app, made


@pytest.mark.parametrize("encoding", ["deflate", "br", "zstd"])
def test_flask_compress_holds_small_events_until_the_stream_ends(encoding):
    """Flask-Compress 1.25 compresses a stream chunk by chunk but never
    flushes: nothing of event 1 can be decoded before the generator is done."""
    app, made = compressed_app()
    response = app.test_client().get("/", headers={"Accept-Encoding": encoding})
    assert response.is_streamed
    assert response.headers["Content-Encoding"] == encoding
    decode = DECOMPRESSORS[encoding]()
    text, made_when_readable = b"", None
    for piece in response.response:
        text += decode(piece)
        if made_when_readable is None and b"event 1" in text:
            made_when_readable = list(made)
    assert made_when_readable == [1, 2, 3]  # readable only after the last event
    assert text == b"data: event 1\n\ndata: event 2\n\ndata: event 3\n\n"


def test_flask_compress_picks_zstd_for_a_browser_stream():
    """gzip is not among COMPRESS_ALGORITHM_STREAMING's defaults."""
    app, _ = compressed_app()
    response = app.test_client().get("/", headers={"Accept-Encoding": BROWSER})
    assert response.headers["Content-Encoding"] == "zstd"


def test_flask_compress_leaves_a_gzip_only_stream_uncompressed():
    app, made = compressed_app()
    response = app.test_client().get("/", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in response.headers
    body = iter(response.response)
    assert next(body) == b"data: event 1\n\n"
    assert made == [1]  # it streams: event 2 does not exist yet
    response.close()


def test_flask_compress_streams_false_passes_streams_through():
    app, made = compressed_app(COMPRESS_STREAMS=False)
    response = app.test_client().get("/", headers={"Accept-Encoding": BROWSER})
    assert "Content-Encoding" not in response.headers
    assert next(iter(response.response)) == b"data: event 1\n\n"
    assert made == [1]
    response.close()


def compressed_stream(chunks):
    """Flask-Compress over a generator of ``chunks``; yields (how many chunks
    the generator had made, the text decodable so far) per piece received."""
    produced = []
    app = Flask(__name__)
    Compress(app)

    @app.get("/")
    def view():
        def generate():
            for chunk in chunks:
                produced.append(chunk)
                yield chunk

        return Response(generate(), mimetype="text/plain")

    response = app.test_client().get("/", headers={"Accept-Encoding": "deflate"})
    assert response.headers["Content-Encoding"] == "deflate"
    decoder = zlib.decompressobj()
    for piece in response.response:
        yield len(produced), decoder.decompress(piece)


def test_compression_middleware_holds_small_yields_until_the_end():
    """Flask-Compress (1.25) compresses streams chunk by chunk, but never
    flushes: five short lines are all held until the generator ends."""
    readable = list(compressed_stream([f"line {i}\n" for i in range(5)]))
    assert all(text == b"" for _, text in readable[:-1])  # bytes, no content
    assert readable[-1] == (5, b"line 0\nline 1\nline 2\nline 3\nline 4\n")


def test_compression_middleware_passes_output_once_its_buffer_fills():
    """It never flushes, but zlib emits what fills its buffers: five 64 KiB
    chunks of text that does not compress well, and decodable text reaches
    the client before the generator has made the last one."""
    rng = random.Random(7)
    chunks = ["".join(rng.choices(string.ascii_letters, k=64 * 1024)) for _ in range(5)]
    readable = list(compressed_stream(chunks))
    early = [text for made, text in readable if made < 5 and text]
    assert early, readable
    assert b"".join(text for _, text in readable) == "".join(chunks).encode()
