# [recipe]
import io
import threading
import time

from flask import Flask, Response
from PIL import Image, ImageDraw

app = Flask(__name__)
FPS = 10
IDLE_SECONDS = 2.0  # close the camera this long after the last viewer
WAIT_SECONDS = 5.0  # a viewer gives up on a camera this silent


class Camera:
    """One device, opened on the first viewer's arrival and closed
    IDLE_SECONDS after the last one leaves. Viewers always get
    the newest frame: a slow one skips frames, and never holds
    up the camera or the other viewers."""

    def __init__(self):
        self.changed = threading.Condition()
        self.frame, self.number = b"", 0
        self.viewers, self.left_at = 0, 0.0
        self.running = False
        self.opened = 0  # how often the device was opened

    def capture(self, n):  # stands in for device.read()
        image = Image.new("RGB", (160, 90), (n * 40 % 256, 40, 90))
        ImageDraw.Draw(image).text((10, 40), f"frame {n}")
        jpeg = io.BytesIO()
        image.save(jpeg, "JPEG")
        return jpeg.getvalue()

    def run(self):
        self.opened += 1  # open the device here
        while True:
            frame = self.capture(self.number + 1)
            with self.changed:
                self.frame, self.number = frame, self.number + 1
                self.changed.notify_all()
                idle = time.monotonic() - self.left_at
                if not self.viewers and idle > IDLE_SECONDS:
                    self.running = False  # close the device here
                    return
            time.sleep(1 / FPS)

    def frames(self):
        with self.changed:
            self.viewers += 1
            if not self.running:
                self.running = True
                threading.Thread(target=self.run, daemon=True).start()
            seen = self.number
        try:
            while True:
                with self.changed:
                    if not self.changed.wait_for(
                        lambda seen=seen: self.number != seen, WAIT_SECONDS
                    ):
                        return
                    frame, seen = self.frame, self.number
                yield (  # outside the lock: a slow write waits alone
                    b"--frame\r\nContent-Type: image/jpeg\r\n\r\n" + frame + b"\r\n"
                )
        finally:
            with self.changed:
                self.viewers -= 1
                self.left_at = time.monotonic()


camera = Camera()


@app.get("/stream.mjpg")
def stream():
    return Response(
        camera.frames(),
        mimetype="multipart/x-mixed-replace; boundary=frame",
    )


# [recipe-end]
