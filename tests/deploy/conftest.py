"""Until the browser fixtures move to tests/conftest.py: reuse them here."""

from tests.browser.conftest import browser, page  # noqa: F401
