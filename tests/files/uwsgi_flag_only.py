"""snippets/request_bodies.py's app behind the flag alone (no UwsgiChunks):
what uWSGI gives a view for a chunked body then."""

from snippets.request_bodies import plain_app


def app(environ, start_response):
    environ["wsgi.input_terminated"] = True
    return plain_app(environ, start_response)
