"""snippets/logs.py with its INFO lines printed, as a server sees it run:
the live tests read "client left after N lines" from the server's output."""

import logging

logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")

from snippets.logs import app  # noqa: E402

__all__ = ["app"]
