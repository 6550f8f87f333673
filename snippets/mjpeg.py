"""Motion JPEG: a video an <img> tag plays, one JPEG per multipart part."""

import io
import itertools
import time
from datetime import datetime

from flask import Flask, Response, abort, render_template, request
from PIL import Image, ImageDraw, ImageFont

app = Flask(__name__)

BOUNDARY = "frame"
MAX_FPS = 30
MAX_FRAMES = 10_000
FONT = ImageFont.load_default(size=40)


def whole_number(name, default, low, high):
    raw = request.args.get(name, str(default))
    try:
        number = int(raw)
    except ValueError:
        abort(400, f"{name} must be a whole number from {low} to {high:,}")
    if not (raw.isascii() and raw.isdecimal()) or not low <= number <= high:
        abort(400, f"{name} must be a whole number from {low} to {high:,}")
    return number


# [frame]
def draw_frame(number):
    """One JPEG with a counter and the time: a camera stand-in."""
    image = Image.new("RGB", (320, 180), (number * 40 % 256, 40, 90))
    draw = ImageDraw.Draw(image)
    draw.text((16, 30), f"frame {number}", fill="white", font=FONT)
    draw.text((16, 100), datetime.now().strftime("%H:%M:%S.%f")[:-3], font=FONT)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


# [frame-end]


# [part]
def multipart_part(jpeg):
    # Each part: boundary line, its own headers, a blank line, the bytes.
    head = (
        f"--{BOUNDARY}\r\n"
        "Content-Type: image/jpeg\r\n"
        f"Content-Length: {len(jpeg)}\r\n\r\n"
    )
    return head.encode() + jpeg + b"\r\n"


# [part-end]


# [stream]
@app.get("/stream.mjpg")
def stream():
    fps = whole_number("fps", 10, 1, MAX_FPS)
    frames = request.args.get("frames")  # absent: until the viewer leaves
    count = None if frames is None else whole_number("frames", 0, 1, MAX_FRAMES)

    def generate():
        interval, due = 1 / fps, time.monotonic()
        for number in itertools.islice(itertools.count(1), count):
            yield multipart_part(draw_frame(number))
            # Sleep until the next frame is due, not a flat interval: the
            # time spent drawing counts towards it.
            due += interval
            time.sleep(max(0.0, due - time.monotonic()))

    return Response(
        generate(),
        content_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# [stream-end]


# [page]
@app.get("/")
def page():
    fps = whole_number("fps", 10, 1, MAX_FPS)
    return render_template("mjpeg_page.html", fps=fps)


# [page-end]
