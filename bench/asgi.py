"""The same WSGI app (:mod:`bench.apps`) behind the two WSGI-to-ASGI bridges,
so an ASGI server (uvicorn) can serve it: ``bench.asgi:a2wsgi_app`` and
``bench.asgi:asgiref_app``. hypercorn serves the WSGI app itself.
"""

from a2wsgi import WSGIMiddleware
from asgiref.wsgi import WsgiToAsgi

from bench.apps import app

a2wsgi_app = WSGIMiddleware(app)
asgiref_app = WsgiToAsgi(app)
