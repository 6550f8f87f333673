"""snippets/uwsgi.py's app, with a line in the server's log each time
the server closes a response: the proof, for tests/deploy/test_uwsgi_live.py,
of whether uWSGI closed a stream (closing it is what runs the generator's
``finally``) or killed the worker first."""

import sys

from snippets.uwsgi import app as flask_app


class Closing:
    def __init__(self, body, request):
        self.body, self.request = body, request

    def __iter__(self):
        return iter(self.body)

    def close(self):
        try:
            self.body.close()
        finally:
            print(f"closed: {self.request}", file=sys.stderr, flush=True)


def app(environ, start_response):
    request = f"{environ['PATH_INFO']}?{environ['QUERY_STRING']}"
    return Closing(flask_app(environ, start_response), request)
