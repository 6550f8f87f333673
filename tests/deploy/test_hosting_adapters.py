"""The adapters people deploy Flask with on serverless platforms, run in
process: does the first chunk leave before the generator ends?

Each adapter turns one platform event into one return value (a dict, an
HttpResponse). The generator below stops at a checkpoint after its first
chunk and notes whether the handler had returned anything yet: a handler
that streams would have to hand the first chunk on before the generator
finishes. None does."""

import asyncio
import base64
import threading

import pytest
from flask import Flask, Response

EVENTS = 3


def app_with_checkpoint():
    """A Flask app whose /stream generator notes, after its first chunk,
    whether the adapter's handler had already returned."""
    app = Flask(__name__)
    app.returned = threading.Event()
    app.seen_at_checkpoint = []

    @app.get("/stream")
    def stream():
        def generate():
            yield "data: 1\n\n"
            # The checkpoint: has anything left the handler yet?
            app.seen_at_checkpoint.append(app.returned.is_set())
            for n in range(2, EVENTS + 1):
                yield f"data: {n}\n\n"

        return Response(generate(), mimetype="text/event-stream")

    return app


WHOLE_BODY = "".join(f"data: {n}\n\n" for n in range(1, EVENTS + 1))

REST_EVENT = {  # API Gateway REST API (payload 1.0)
    "httpMethod": "GET",
    "path": "/stream",
    "headers": {"Host": "example.com", "X-Forwarded-Proto": "https"},
    "multiValueHeaders": None,
    "queryStringParameters": None,
    "multiValueQueryStringParameters": None,
    "requestContext": {"stage": "prod", "requestId": "1", "httpMethod": "GET"},
    "body": None,
    "isBase64Encoded": False,
}

HTTP_API_EVENT = {  # API Gateway HTTP API and Lambda function URLs (2.0)
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": "/stream",
    "rawQueryString": "",
    "headers": {"host": "example.com", "x-forwarded-proto": "https"},
    "requestContext": {
        "http": {"method": "GET", "path": "/stream", "sourceIp": "192.0.2.1",
                 "protocol": "HTTP/1.1"},
        "stage": "$default", "requestId": "1",
    },
    "isBase64Encoded": False,
}  # fmt: skip


class Context:
    function_name = "stream"
    aws_request_id = "1"

    def get_remaining_time_in_millis(self):
        return 30_000


def body_of(reply):
    body = reply["body"]
    return base64.b64decode(body).decode() if reply.get("isBase64Encoded") else body


def run_serverless_wsgi(app):
    import serverless_wsgi

    return body_of(serverless_wsgi.handle_request(app, dict(REST_EVENT), Context()))


def run_apig_wsgi(app):
    from apig_wsgi import make_lambda_handler

    handler = make_lambda_handler(app)
    return body_of(handler(dict(HTTP_API_EVENT), Context()))


def run_mangum_over_a2wsgi(app):
    from a2wsgi import WSGIMiddleware
    from mangum import Mangum

    asyncio.set_event_loop(asyncio.new_event_loop())  # Mangum uses the current loop
    try:
        handler = Mangum(WSGIMiddleware(app), lifespan="off")
        return body_of(handler(dict(HTTP_API_EVENT), Context()))
    finally:
        asyncio.get_event_loop().close()
        asyncio.set_event_loop(None)


def run_azure_functions(app):
    import azure.functions as func

    request = func.HttpRequest(
        "GET", "https://example.com/stream", headers={}, body=b""
    )
    reply = func.WsgiMiddleware(app).handle(request)
    return reply.get_body().decode()


ADAPTERS = {
    "serverless-wsgi": run_serverless_wsgi,
    "apig-wsgi": run_apig_wsgi,
    "mangum+a2wsgi": run_mangum_over_a2wsgi,
    "azure-functions": run_azure_functions,
}


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_adapter_returns_nothing_until_the_generator_ends(adapter):
    """At the checkpoint after the first chunk, the handler has not
    returned: the first chunk has gone nowhere. The handler then returns
    the whole body, every event joined in memory."""
    app = app_with_checkpoint()
    body = ADAPTERS[adapter](app)
    app.returned.set()
    assert app.seen_at_checkpoint == [False]
    assert body == WHOLE_BODY
