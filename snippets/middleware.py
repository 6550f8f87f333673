"""Hooks and WSGI middleware that break streaming, and versions that do not."""

# [recipe]
import logging

from flask import Flask, Response

app = Flask(__name__)
log = logging.getLogger(__name__)


@app.get("/")
def feed():
    def generate():
        for i in range(3):
            yield f"event {i}\n"

    return Response(generate(), mimetype="text/plain")


@app.after_request
def etag_when_buffered(response):
    if response.is_streamed or response.direct_passthrough:
        return response  # a stream or a file: leave it alone
    response.add_etag()
    return response


class ByteCounter:
    """Logs each response's size as its chunks pass."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        body = self.wsgi_app(environ, start_response)
        wrapper = environ.get("wsgi.file_wrapper", ())
        if isinstance(body, wrapper):
            return body  # the server's sendfile: keep it
        return CountingBody(body, environ["PATH_INFO"])


class CountingBody:
    def __init__(self, body, path):
        self.body, self.path, self.size = body, path, 0

    def __iter__(self):
        for chunk in self.body:  # one chunk at a time
            self.size += len(chunk)
            yield chunk

    def close(self):  # pass it on, or cleanup is lost
        try:
            if hasattr(self.body, "close"):
                self.body.close()
        finally:
            log.info("%s: %d bytes", self.path, self.size)


app.wsgi_app = ByteCounter(app.wsgi_app)
# [recipe-end]

import io  # noqa: E402  (the broken versions, for comparison)

from flask import Blueprint, send_file  # noqa: E402


def small_file():
    return send_file(io.BytesIO(b"file body\n"), mimetype="text/plain")


# [broken-hook]
def etag_everything(response):
    # add_etag() calls get_data(): the whole stream is drained into memory
    # before the first byte leaves, and a send_file response raises (500).
    response.add_etag()
    return response


# [broken-hook-end]

for name, hook in [("broken", etag_everything), ("safe", etag_when_buffered)]:
    blueprint = Blueprint(name, __name__, url_prefix=f"/{name}")
    blueprint.add_url_rule("/feed", view_func=feed)
    blueprint.add_url_rule("/file", view_func=small_file)
    blueprint.add_url_rule("/text", view_func=lambda: "not streamed\n")
    blueprint.after_request(hook)
    app.register_blueprint(blueprint)


# [broken-middleware]
class BodyLogger:
    """Logs each response's size by joining its body: this buffers."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        body = b"".join(self.wsgi_app(environ, start_response))
        log.info("%s: %d bytes", environ["PATH_INFO"], len(body))
        return [body]  # and close() of the real body is never called


# [broken-middleware-end]
