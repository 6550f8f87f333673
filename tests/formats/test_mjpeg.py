"""formats/mjpeg: the multipart body parses back into distinct JPEG frames."""

import io
import itertools
import time

import pytest
from PIL import Image, ImageChops

from snippets.mjpeg import BOUNDARY, app


def read_parts(body):
    """Split a multipart/x-mixed-replace body into (headers, payload) pairs,
    trusting each part's Content-Length rather than searching for the
    boundary (JPEG bytes may contain anything)."""
    parts, pos = [], 0
    while pos < len(body):
        line_end = body.index(b"\r\n", pos)
        assert body[pos:line_end] == f"--{BOUNDARY}".encode()
        head_end = body.index(b"\r\n\r\n", line_end)
        headers = dict(
            line.split(": ", 1)
            for line in body[line_end + 2 : head_end].decode().split("\r\n")
        )
        start = head_end + 4
        end = start + int(headers["Content-Length"])
        assert body[end : end + 2] == b"\r\n", "a part ends with CRLF"
        parts.append((headers, body[start:end]))
        pos = end + 2
    return parts


def test_response_is_multipart_x_mixed_replace_with_the_boundary():
    response = app.test_client().get("/stream.mjpg?frames=2&fps=30")
    assert response.headers["Content-Type"] == (
        f"multipart/x-mixed-replace; boundary={BOUNDARY}"
    )
    assert response.headers["Cache-Control"] == "no-store"
    assert response.is_streamed


def test_every_part_is_a_jpeg_that_pillow_opens_and_frames_differ():
    body = app.test_client().get("/stream.mjpg?frames=4&fps=30").data
    parts = read_parts(body)
    assert len(parts) == 4
    images = []
    for headers, payload in parts:
        assert headers == {
            "Content-Type": "image/jpeg",
            "Content-Length": str(len(payload)),
        }
        image = Image.open(io.BytesIO(payload))
        assert (image.format, image.size) == ("JPEG", (320, 180))
        images.append(image.convert("RGB"))
    for before, after in itertools.pairwise(images):
        assert ImageChops.difference(before, after).getbbox() is not None


def test_each_yield_is_exactly_one_part():
    response = app.test_client().get("/stream.mjpg?frames=3&fps=30")
    chunks = list(response.response)
    assert len(chunks) == 3
    assert all(len(read_parts(chunk)) == 1 for chunk in chunks)


def test_frame_rate_is_limited_by_fps():
    started = time.monotonic()
    body = app.test_client().get("/stream.mjpg?frames=6&fps=10").data
    elapsed = time.monotonic() - started
    assert len(read_parts(body)) == 6
    # Six frames at 10 fps: five intervals of 0.1 s between them, at least.
    assert elapsed >= 0.5


def test_unbounded_stream_runs_until_the_client_closes_it():
    response = app.test_client().get("/stream.mjpg?fps=30")
    chunks = iter(response.response)
    frames = [next(chunks) for _ in range(5)]
    response.close()
    assert len(frames) == 5
    with pytest.raises(StopIteration):
        next(chunks)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("fps=0", b"fps must be a whole number from 1 to 30"),
        ("fps=31", b"fps must be a whole number from 1 to 30"),
        ("fps=2.5", b"fps must be a whole number from 1 to 30"),
        ("fps=", b"fps must be a whole number from 1 to 30"),
        ("frames=0", b"frames must be a whole number from 1 to 10,000"),
        ("frames=10001", b"frames must be a whole number from 1 to 10,000"),
        ("frames=lots", b"frames must be a whole number from 1 to 10,000"),
    ],
)
def test_bad_fps_or_frames_is_a_400(query, message):
    response = app.test_client().get(f"/stream.mjpg?{query}")
    assert response.status_code == 400
    assert message in response.data


def test_page_points_its_img_at_the_stream():
    client = app.test_client()
    html = client.get("/?fps=5").get_data(as_text=True)
    assert '<img id="video" src="/stream.mjpg?fps=5"' in html
    assert client.get("/?fps=99").status_code == 400


def test_the_recipe_video_streams_parts_at_fps_until_closed():
    """/video.mjpg reads nothing from the query string and never ends by
    itself: the viewer leaving (here, close()) ends it."""
    response = app.test_client().get("/video.mjpg?frames=1")
    assert response.headers["Content-Type"] == (
        f"multipart/x-mixed-replace; boundary={BOUNDARY}"
    )
    assert response.headers["X-Accel-Buffering"] == "no"
    body = iter(response.response)
    parts = [next(body) for _ in range(3)]  # frames=1 is ignored
    response.close()
    assert all(
        part.startswith(b"--frame\r\nContent-Type: image/jpeg") for part in parts
    )
