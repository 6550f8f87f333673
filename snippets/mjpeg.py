"""Motion JPEG: a video an <img> tag plays, one JPEG per multipart part."""

# [recipe]
import io
import time
from datetime import datetime

from flask import Flask, Response
from PIL import Image, ImageDraw, ImageFont

app = Flask(__name__)

FPS = 10  # frames a second
BOUNDARY = "frame"
FONT = ImageFont.load_default(size=40)


@app.get("/video.mjpg")
def video():
    return Response(
        frames(FPS),
        content_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def frames(fps, count=None):
    """Parts of ``count`` frames (None: until the viewer leaves)."""
    number, due = 0, time.monotonic()
    while count is None or number < count:
        number += 1
        yield multipart_part(draw_frame(number))
        # Sleep until the next frame is due: drawing counts.
        due += 1 / fps
        time.sleep(max(0.0, due - time.monotonic()))


def multipart_part(jpeg):
    # Each part: boundary line, its own headers, a blank line, the bytes.
    head = (
        f"--{BOUNDARY}\r\n"
        "Content-Type: image/jpeg\r\n"
        f"Content-Length: {len(jpeg)}\r\n\r\n"
    )
    return head.encode() + jpeg + b"\r\n"


def draw_frame(number):
    """One JPEG with a counter and the time: a camera stand-in."""
    image = Image.new("RGB", (320, 180), (number * 40 % 256, 40, 90))
    draw = ImageDraw.Draw(image)
    draw.text((16, 30), f"frame {number}", fill="white", font=FONT)
    draw.text((16, 100), datetime.now().strftime("%H:%M:%S.%f")[:-3], font=FONT)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


# [recipe-end]

from flask import render_template, request  # noqa: E402

from snippets.checks import whole_number  # noqa: E402
from snippets.sse import STREAM_HEADERS  # noqa: E402

MAX_FPS = 30
MAX_FRAMES = 10_000


# [stream]
@app.get("/stream.mjpg")
def stream():
    fps = whole_number("fps", 1, MAX_FPS, default=10)
    count = None  # absent: until the viewer leaves
    if "frames" in request.args:
        count = whole_number("frames", 1, MAX_FRAMES)
    return Response(
        frames(fps, count),
        content_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers={**STREAM_HEADERS, "Cache-Control": "no-store"},
    )


# [stream-end]


# [page]
@app.get("/")
def page():
    fps = whole_number("fps", 1, MAX_FPS, default=10)
    return render_template("mjpeg_page.html", fps=fps)


# [page-end]
