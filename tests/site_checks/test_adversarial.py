"""The adversarial tier: bad requests at every route of every snippet.

Every ``snippets/*.py`` that defines a Flask ``app`` at import time is found
here on its own, and every rule of its ``url_map`` gets Hypothesis-made
requests (derandomized, a bounded number per route): hostile query values
under the names the view reads (harvested from its source) and random names,
hostile path segments for its converters, hostile headers, JSON and form
bodies, and methods. Each answer must be below 500, and its body (a bounded
part of it, then the response is closed) must be produced without an
exception, except on the routes in ON_PURPOSE, whose pages show a failure.
Afterwards no file may be left in any folder a snippet writes to.

Sleeps and timed waits on a threading.Event in the snippets run on a virtual
clock, so a stream that waits (SSE heartbeats, MJPEG frames, job polling, a
graceful_stream tick, an asgi_bridge interval) runs at full speed and a stream
that never ends is cut after MAX_CHUNKS chunks. One test client per app.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import importlib
import json
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from quart import Quart

from tests import snippet_index
from tests.servers import ROOT

# Snippets whose app needs a store or a worker at import or request time: the
# tier would measure the missing store, not the route. Their own live tests
# run them against the real store.
NEEDS_STORE = {
    "celery": "every route talks to Redis through Celery (a broker)",
    "flask_session": "its session lives in memcached/Redis (Flask-Session)",
    "scale_out": "its log is a Redis stream, read on every request",
    "flask_sqlalchemy": "its tables are made by the page's set-up first",
    "object_storage": "every route talks to an S3 store",
    "celery_reports": "every route talks to Redis through Celery (a broker)",
    "flask_session_stores": "its sessions live in memcached or Redis",
    # Not a store, but the same rule: importing it calls sentry_sdk.init(),
    # which wraps every Flask app in this process (the downloads and
    # middleware tests then saw Sentry's response wrapper, not the server's
    # file wrapper). Its tests run it in an interpreter of its own.
    "opentelemetry_sentry": "importing it patches Flask for the whole process",
}
# Routes whose page demonstrates a failure on purpose (a 5xx, or an exception
# while the body is produced, is what the page shows) say so in a comment
# right above the route: "# Fails on purpose: ..." (tests/snippet_index.py).
ON_PURPOSE = snippet_index.on_purpose() | {
    # Made in a loop (add_url_rule), not by a decorator a comment can sit on.
    ("middleware", "/broken/feed"): "docs/deploy/middleware.rst",
    ("middleware", "/broken/file"): "docs/deploy/middleware.rst",
    ("middleware", "/broken/text"): "docs/deploy/middleware.rst",
    ("downloads_reports", "/leaky-report.csv"): "docs/files/downloads.rst",
    ("flask_login", "/report-broken"): "docs/extensions/flask_login.rst",
}

EXAMPLES = int(os.environ.get("FSP_ADVERSARIAL_EXAMPLES", "12"))  # per route
MAX_CHUNKS = 64
MAX_BYTES = 256 * 1024
SHARED_TMP = Path(tempfile.gettempdir())
# The SQLite stores the snippets keep (and their -wal, -shm): not strays.
STORES = (
    "flask-jobs.sqlite3",
    "fsp-reports.sqlite3",
    "stock.sqlite3",
    "flask_sqlalchemy_stock.sqlite3",
    "lifetime.db",
)


def snippet_apps(kind):
    """(name, module, app) for every snippet whose ``app`` is a ``kind``:
    Flask, or Quart (QUART_ROUTES below)."""
    found = []
    for path in sorted((ROOT / "snippets").glob("*.py")):
        if path.stem not in snippet_index.apps() or path.stem in NEEDS_STORE:
            continue
        module = importlib.import_module(f"snippets.{path.stem}")
        app = getattr(module, "app", None)
        if isinstance(app, kind):
            found.append((path.stem, module, app))
    return found


APPS = snippet_apps(Flask)
ROUTES = [
    (name, rule)
    for name, _module, app in APPS
    for rule in sorted(app.url_map.iter_rules(), key=str)
    if rule.endpoint != "static"
]
MODULES = {name: module for name, module, _app in APPS}
QUART_MODULES = {name: module for name, module, _app in snippet_apps(Quart)}
QUART_ROUTES = [
    (name, rule)
    for name, module in QUART_MODULES.items()
    for rule in sorted(module.app.url_map.iter_rules(), key=str)
    if rule.endpoint != "static"
]

NAME = r"""["']([\w-]+)["']"""
ACCESS = re.compile(
    r"request\.(args|form|values|headers|cookies|files)"
    rf"(?:\.get(?:list)?\(\s*{NAME}|\[\s*{NAME}\s*\])"
)
HELPER = re.compile(r"^def (\w+)\(name\b.*?\n((?:[ \t]+.*\n|\n)+)", re.M)
VARIABLE_ACCESS = re.compile(r"request\.(args|form|values|headers)\.get\(\s*name\b")
JSON_KEY = re.compile(rf"(?:payload|data|body|message)(?:\.get\(\s*{NAME}|\[{NAME}\])")


def harvest(module):
    """The parameter names a snippet's views read, by where they read them."""
    source = Path(module.__file__).read_text()
    names = {"args": set(), "form": set(), "headers": set(), "json": set()}
    for where, a, b in ACCESS.findall(source):
        where = {"values": "args", "cookies": "headers", "files": "form"}.get(
            where, where
        )
        names[where].add(a or b)
    names["json"] |= {a or b for a, b in JSON_KEY.findall(source)}
    # A helper that reads a name it is given (read_int(name, ...)): the
    # literals its calls pass are parameter names of the same kind.
    for helper, body in HELPER.findall(source):
        for where in VARIABLE_ACCESS.findall(body):
            where = "args" if where == "values" else where
            names[where] |= set(re.findall(rf"\b{helper}\(\s*{NAME}", source))
    names["form"] |= names["args"]  # a form field is often read as request.form
    return {k: sorted(v) for k, v in names.items()}


NAMES = {name: harvest(module) for name, module in {**MODULES, **QUART_MODULES}.items()}

# --- the hostile values -------------------------------------------------------
NASTY_TEXT = [
    "", "0", "-1", "1", "3", "10", "-0", "+1", " 1", "1 ", "1.5", "1e3", "1e309",
    "nan", "inf", "-inf", "0x10", "٣", "５", "²", "9" * 5000, "-" + "9" * 400,
    "yes", "no", "true", "null", "[]", "{}", "a" * 5000, "\x00", "é", "😀",
    "\r\n", "=1+1", "../../etc/passwd", "%00", "\ud800",
]  # fmt: skip
SEGMENTS = [
    "..", "%2e%2e", "%2E%2E%2F..", "..%2f..%2fetc%2fpasswd", "%00", "a%00b",
    "x" * 300, "x" * 5000, "9" * 5000, "١٢٣", "%ef%bc%95", "%ff", "%c0%ae",
    ".", "~", "-", "0", "-1", "alphabet.txt", "alphabet.txt%2f..%2falphabet.txt",
    "a%2f..%2f..%2fb", "%5c..%5c", "CON", "nul", ".hidden", "a b", "%0d%0a",
]  # fmt: skip
PATH_SEGMENTS = [
    *SEGMENTS, "../../../../etc/passwd", "alphabet.txt/../alphabet.txt",
    "a/b/c", "/etc/passwd", "sub//x", "a/./b", "files/../../x",
]  # fmt: skip
HEADER_VALUES = {
    "Last-Event-ID": ["0", "-1", "999999999", "9" * 5000, "abc", "1.5", "٣", ""],
    "Range": [
        "bytes=0-0",
        "bytes=100-",
        "bytes=-1",
        "bytes=5-1",
        "bytes=0-",
        "bytes=99999999999-",
        "bytes=0-1,2-3,4-5",
        "items=1-2",
        "bytes=",
        "bytes=" + "9" * 5000 + "-",
    ],
    "If-None-Match": ['"x"', "*", 'W/"1"', "garbage", '""'],
    "If-Modified-Since": [
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "yesterday",
        "",
    ],
    "If-Range": ['"x"', "Thu, 01 Jan 1970 00:00:00 GMT"],
    "Accept-Encoding": ["gzip", "br, zstd", "*;q=0", "identity;q=0", "x" * 2000],
    "Accept": ["text/event-stream", "application/json", "*/*", "x/y;q=oops"],
    "X-Forwarded-For": ["1.2.3.4, 5.6.7.8", "not an ip"],
    "Cookie": ["session=garbage", "session=" + "a" * 4000, "a=b; c"],
}
CONTENT_TYPES = [
    "application/json", "application/x-www-form-urlencoded",
    "multipart/form-data", "multipart/form-data; boundary=x", "text/plain",
    "application/json; charset=utf-16", "application/octet-stream",
]  # fmt: skip
JSON_BODIES = [
    b"[" * 5000, b"{" * 5000, b'{"a":' * 5000, b'"\\ud800"', b'["\\udfff"]',
    b'{"prompt": "\xed\xa0\x80"}', b"\xff\xfe", b"1" * 5000, b"1e999999",
    b"-" + b"9" * 5000, b"null", b"[]", b'"text"', b"true", b"{", b"",
    b'{"a": NaN}', b'{"a": Infinity}', b"\x00",
]  # fmt: skip
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]

text_values = st.one_of(st.sampled_from(NASTY_TEXT), st.text(max_size=40))
json_values = st.sampled_from(
    [None, True, False, 0, -1, 1, 10**400, -(10**400), 1.5, 1e308, [], {},
     [1, 2], {"a": 1}, "x" * 5000, *NASTY_TEXT]
) | st.integers() | st.text(max_size=20)  # fmt: skip


def segment_for(converter, is_path):
    pool = PATH_SEGMENTS if is_path else SEGMENTS
    typed = st.sampled_from(pool) | st.text(min_size=1, max_size=30).map(
        lambda s: quote(s, safe="/" if is_path else "")
    )
    if converter in {"IntegerConverter", "FloatConverter"}:
        typed = st.sampled_from(["0", "1", "9" * 5000, "١", "-1"]) | typed
    return typed


def names_or_text(names, **text):
    """A parameter name the view reads, or any other name."""
    own = st.sampled_from(names) if names else st.nothing()
    return own | st.text(**text)


# Built once: a strategy made inside the draw is validated again on every
# example, which cost more than sending the requests.
HEADER_NAMES = st.sets(st.sampled_from(sorted(HEADER_VALUES)), max_size=3)
HEADER_VALUE = {name: st.sampled_from(values) for name, values in HEADER_VALUES.items()}
ONE_LINE = text_values.filter(lambda v: "\n" not in v)
BODY_KINDS = st.sampled_from(["none", "json", "raw-json", "form", "bytes"])
RAW_JSON = st.sampled_from(JSON_BODIES)
BYTES = st.binary(max_size=200)
CONTENT_TYPE = st.sampled_from(CONTENT_TYPES)
LIES = st.sampled_from(["zero", "half", "over", "huge"])  # a Content-Length that lies
COIN, ONE_IN_FOUR = st.booleans(), st.integers(0, 3)


def every_json_body(name, rule):
    """Besides Hypothesis's draws: each hostile JSON body once, to every route
    that takes a body (a dozen draws may miss the one that breaks it), and
    each JSON key the snippet reads holding a lone surrogate."""
    if not rule.methods & {"POST", "PUT", "PATCH"}:
        return []
    method = sorted(rule.methods & {"POST", "PUT", "PATCH"})[0]
    path = re.sub(r"<(?:[^:<>]+:)?\w+>", "1", rule.rule)
    headers = {"Content-Type": "application/json"}
    keys = [b'{"%s": "\\ud800"}' % key.encode() for key in NAMES[name]["json"]]
    return [(method, path, headers, body, None) for body in [*JSON_BODIES, *keys]]


STRATEGIES: dict = {}  # (snippet, endpoint, rule) -> what build_strategies made


def route_strategies(name, rule):
    """Everything ``requests`` draws for one route, built once."""
    key = (name, rule.endpoint, rule.rule)
    if key not in STRATEGIES:
        STRATEGIES[key] = build_strategies(name, rule)
    return STRATEGIES[key]


def build_strategies(name, rule):
    names = NAMES[name]
    own = sorted(rule.methods - {"HEAD", "OPTIONS"})
    keys = names_or_text(names["json"], max_size=8)
    return {
        "segments": {
            arg: segment_for(
                type(conv).__name__, type(conv).__name__ == "PathConverter"
            )
            for arg, conv in rule._converters.items()
        },
        "method": st.sampled_from(own) | st.sampled_from(METHODS),
        "query": st.dictionaries(
            names_or_text(names["args"], min_size=1, max_size=8), text_values
        ),
        "own_headers": (
            st.sets(st.sampled_from(names["headers"]), max_size=2)
            if names["headers"]
            else st.just(set())
        ),
        "json": st.dictionaries(keys, json_values, max_size=4) | json_values,
        "form": st.dictionaries(
            names_or_text(names["form"], min_size=1, max_size=8), text_values
        ),
    }


@st.composite
def requests(draw, name, rule):
    strategies = route_strategies(name, rule)
    path = rule.rule
    for arg, segments in strategies["segments"].items():
        seg = draw(segments)
        path = re.sub(rf"<(?:[^:<>]+:)?{arg}>", lambda _m, s=seg: s, path)
    method = draw(strategies["method"])

    query = draw(strategies["query"])
    if query:
        path += "?" + urlencode(
            {k: v.encode("utf-8", "surrogatepass") for k, v in query.items()}
        )

    headers = {}
    for header in draw(HEADER_NAMES):
        headers[header] = draw(HEADER_VALUE[header])
    for header in draw(strategies["own_headers"]):
        headers[header] = draw(ONE_LINE)

    kind = draw(BODY_KINDS)
    body = b""
    if kind == "json":
        body = json.dumps(draw(strategies["json"])).encode()
        headers.setdefault("Content-Type", "application/json")
    elif kind == "raw-json":
        body = draw(RAW_JSON)
        headers.setdefault("Content-Type", "application/json")
    elif kind == "form":
        form = draw(strategies["form"])
        body = urlencode(
            {k: v.encode("utf-8", "surrogatepass") for k, v in form.items()}
        ).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif kind == "bytes":
        body = draw(BYTES)
    if draw(COIN):
        headers["Content-Type"] = draw(CONTENT_TYPE)
    length = None
    if body and draw(ONE_IN_FOUR) == 0:
        lie = draw(LIES)
        length = {"zero": 0, "half": len(body) // 2, "over": len(body) + 10}.get(
            lie, 10**9
        )
    return method, path, headers, body, length


# --- a virtual clock for the snippets ----------------------------------------
class VirtualTime:
    """Stands in for the ``time`` module inside the snippets: ``sleep`` moves
    a virtual clock instead of waiting, so deadlines and heartbeats pass at
    once while the rest of ``time`` is the real one."""

    def __init__(self):
        self.offset = 0.0
        self.lock = threading.Lock()

    def sleep(self, seconds):
        with self.lock:
            self.offset += max(0.0, seconds)
        time.sleep(0)  # let other threads run

    def monotonic(self):
        return time.monotonic() + self.offset

    def time(self):
        return time.time() + self.offset

    def perf_counter(self):
        return time.perf_counter() + self.offset

    def __getattr__(self, name):
        return getattr(time, name)


class VirtualEvent(threading.Event):
    """A threading.Event whose timed wait moves the virtual clock: a stream
    that waits on an event (graceful_stream's shutdown, asgi_bridge's client
    gone) instead of sleeping runs at full speed too."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def wait(self, timeout=None):
        if timeout is None or self.is_set():
            return super().wait(timeout)
        self.clock.sleep(timeout)
        return self.is_set()


class VirtualThreading:
    """Stands in for the ``threading`` module inside the snippets: its Event
    is a VirtualEvent, the rest is the real module."""

    def __init__(self, clock):
        self.clock = clock

    def Event(self):  # the name the snippets call
        return VirtualEvent(self.clock)

    def __getattr__(self, name):
        return getattr(threading, name)


STATS = {
    "requests": 0,
    "reflection_requests": 0,
    "head_requests": 0,
    "failures": [],
    "on_purpose": 0,
    "stored": 0,
}


def folders_written():
    """Every folder a snippet writes to (their configured ones and the temp dir)."""
    folders = {Path(tempfile.gettempdir())}
    for _name, module, app in APPS:
        for key, value in app.config.items():
            if isinstance(value, str) and key.endswith(("_DIR", "_FOLDER")):
                folders.add(Path(value))
            if isinstance(value, str) and key.endswith(("_DB", "DATABASE")):
                folders.add(Path(value).parent)  # a store's folder: no strays
        for attr in ("DATABASE", "REPORTS_DIR", "UPLOAD_DIR", "DATA_DIR"):
            if isinstance(getattr(module, attr, None), (str, Path)):
                path = Path(getattr(module, attr))
                folders.add(path.parent if path.suffix else path)
        folders.add(Path(app.instance_path))
    # The machine's own temp dir is shared with every other process: the
    # snippets' folders in it are moved to the tier's own (virtual_clock).
    return sorted(folders - {SHARED_TMP})


def snapshot():
    found = set()
    for folder in folders_written():
        if folder.is_dir():
            found |= {(folder, p.name) for p in folder.iterdir()}
    return found


@pytest.fixture(scope="module", autouse=True)
def virtual_clock(tmp_path_factory):
    """Every snippet sleeps on the virtual clock; heartbeat waits are short;
    the temp dir is this tier's own, so other runs' files do not count."""
    clock = VirtualTime()
    with pytest.MonkeyPatch.context() as mp:
        private = tmp_path_factory.mktemp("tmp")
        shared = tempfile.gettempdir()
        mp.setattr(tempfile, "tempdir", str(private))
        for _name, _module, app in APPS:  # stores and folders under /tmp: ours
            for key, value in list(app.config.items()):
                if isinstance(value, str) and value.startswith(shared + os.sep):
                    mine = private / Path(value).name
                    if key.endswith("_DIR"):
                        mine.mkdir(exist_ok=True)
                    mp.setitem(app.config, key, str(mine))
        for module in MODULES.values():
            if getattr(module, "time", None) is time:
                mp.setattr(module, "time", clock)
            if getattr(module, "threading", None) is threading:
                mp.setattr(module, "threading", VirtualThreading(clock))
            for attr, value in list(vars(module).items()):
                if type(value) is threading.Event:  # a module-level event
                    mp.setattr(module, attr, VirtualEvent(clock))
        if "broadcast" in MODULES:  # a queue wait, not a sleep
            mp.setattr(MODULES["broadcast"], "HEARTBEAT_SECONDS", 0.001)
        for _name, _module, app in APPS:
            mp.setattr(app, "testing", False)  # errors become 500s, as served
        yield clock


CONTAINERS = (list, dict, set, collections.deque)


@pytest.fixture(autouse=True)
def module_state_restored():
    """What the hostile requests put in a snippet's module-level lists, dicts,
    sets and deques (htmx's notes, a broker's history) is taken out again:
    the pages share these modules, and their examples show the state the
    snippet starts with."""
    saved = [
        (value, copy.copy(value))
        for module in [*MODULES.values(), *QUART_MODULES.values()]
        for value in vars(module).values()
        if type(value) in CONTAINERS
    ]
    yield
    for value, before in saved:
        if value != before:
            value.clear()
            if isinstance(value, dict | set):
                value.update(before)
            else:
                value.extend(before)


@pytest.fixture(scope="module")
def files_before(virtual_clock):
    return snapshot()


CLIENTS: dict = {}  # one test client per app


BUSY = 0  # what send() returns for a 503 with Retry-After


def send(app, method, path, headers, body, length):
    """One request; consume a bounded part of the body, then close it."""
    overrides = {} if length is None else {"CONTENT_LENGTH": str(length)}
    client = CLIENTS.get(app) or CLIENTS.setdefault(app, app.test_client())
    response = client.open(
        path,
        method=method,
        headers=headers,
        data=body,
        buffered=False,
        environ_overrides=overrides,
    )
    try:
        size = 0
        deadline = time.monotonic() + 5
        for count, chunk in enumerate(response.response):
            size += len(chunk)
            if count >= MAX_CHUNKS or size >= MAX_BYTES or time.monotonic() > deadline:
                break
    finally:
        response.close()
    # A 503 that says when to come back is back-pressure, not a failure: a
    # route that caps its work (jobs, commands) answers it past the cap.
    if response.status_code == 503 and response.headers.get("Retry-After"):
        return BUSY
    return response.status_code


# The same for every route, Flask's and Quart's: repeatable, no time limit.
SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.parametrize(("name", "rule"), ROUTES, ids=[f"{n}:{r}" for n, r in ROUTES])
def test_route_answers_bad_input_below_500(name, rule, files_before):
    """No 5xx and no exception while the body is produced, on any input."""
    app = MODULES[name].app
    on_purpose = (name, rule.rule) in ON_PURPOSE

    @SETTINGS
    @given(requests(name, rule))
    def check(request):
        method, path, headers, body, length = request
        STATS["requests"] += 1
        try:
            status = send(app, method, path, headers, body, length)
        except Exception as exc:
            if on_purpose:
                STATS["on_purpose"] += 1
                return
            STATS["failures"].append((name, rule.rule, request, repr(exc)))
            raise
        if status == 201 and name == "uploads":  # a whole upload, stored: the
            for stored in Path(app.config["UPLOAD_DIR"]).glob("[!.]*"):  # output
                stored.unlink()  # (a half one would be a ".upload-*.part")
                STATS["stored"] += 1
        if status >= 500 and not on_purpose:
            STATS["failures"].append((name, rule.rule, request, status))
        if on_purpose and status >= 500:
            STATS["on_purpose"] += 1
        assert status < 500 or on_purpose, (method, path, headers, body[:200])

    before = snapshot()
    check()
    for request in every_json_body(name, rule):
        check.hypothesis.inner_test(request)
    if on_purpose:
        remove_what_the_page_shows(before)


def remove_what_the_page_shows(before):
    """A route that fails on purpose may leave a file: its page shows that."""
    for folder, leftover in snapshot() - before:
        if (folder / leftover).is_file() and not leftover.startswith(STORES):
            (folder / leftover).unlink()


MARKER = "<script>fsp(1)</script>"


def read_some(app, method, path, **kwargs):
    """(status, mimetype, the first chunks of the body) of one request."""
    client = CLIENTS.get(app) or CLIENTS.setdefault(app, app.test_client())
    response = client.open(path, method=method, buffered=False, **kwargs)
    body, deadline = b"", time.monotonic() + 5
    try:
        for count, chunk in enumerate(response.response):
            body += chunk if isinstance(chunk, bytes) else chunk.encode()
            if count >= MAX_CHUNKS or len(body) >= MAX_BYTES:
                break
            if time.monotonic() > deadline:
                break
    except Exception:  # a failure mid-stream is the other test's business
        pass
    finally:
        response.close()
    return response.status_code, response.mimetype, body


def reflections(name, rule):
    """Every way a route could echo a request value: each parameter the
    snippet reads, in the query string, the form, a header and a JSON body,
    and each path segment, all at once, holding MARKER."""
    names = NAMES[name]
    path = re.sub(r"<(?:[^:<>]+:)?\w+>", quote(MARKER, safe=""), rule.rule)
    query = urlencode(dict.fromkeys(names["args"] or ["q"], MARKER))
    methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
    for method in methods:
        yield (
            method,
            f"{path}?{query}",
            {
                "headers": dict.fromkeys(names["headers"], MARKER),
                **(
                    {"data": dict.fromkeys(names["form"] or ["q"], MARKER)}
                    if method != "GET"
                    else {}
                ),
            },
        )
        if method != "GET" and names["json"]:
            yield method, path, {"json": dict.fromkeys(names["json"], MARKER)}


@pytest.mark.parametrize(("name", "rule"), ROUTES, ids=[f"{n}:{r}" for n, r in ROUTES])
def test_no_route_reflects_request_data_into_html_unescaped(name, rule, files_before):
    """A view that streams what the request holds gives it a non-HTML type,
    or escapes it: a bare generator is text/html, so a ``<script>`` in a query
    value would run in the reader's browser (a reflected XSS)."""
    app = MODULES[name].app
    before = snapshot()
    for method, path, kwargs in reflections(name, rule):
        try:
            status, mimetype, body = read_some(app, method, path, **kwargs)
        except Exception:
            if (name, rule.rule) in ON_PURPOSE:
                continue  # its page shows this failure
            raise
        STATS["reflection_requests"] += 1
        if mimetype in {"text/html", "application/xhtml+xml"}:
            assert MARKER.encode() not in body, (method, path, kwargs, status)
    if (name, rule.rule) in ON_PURPOSE:
        remove_what_the_page_shows(before)


HEAD_ROUTES = [
    (name, rule)
    for name, rule in ROUTES
    if "HEAD" in rule.methods and (name, rule.rule) not in ON_PURPOSE
]


@pytest.mark.parametrize(
    ("name", "rule"), HEAD_ROUTES, ids=[f"{n}:{r}" for n, r in HEAD_ROUTES]
)
def test_head_is_below_500_on_every_route(name, rule, files_before):
    """HEAD, which Flask answers from the GET view, on every GET route but
    those whose page shows a failure: the view runs, its body is not sent."""
    path = re.sub(r"<(?:[^:<>]+:)?\w+>", "1", rule.rule)
    status, _mimetype, body = read_some(MODULES[name].app, "HEAD", path)
    STATS["head_requests"] += 1
    assert status < 500, (path, body[:200])


async def send_quart(app, method, path, headers, body, length):
    """The same request to a Quart app, through Quart's test client; the
    whole body is produced (its streams are short), within 5 s."""
    if length is not None:
        headers = {**headers, "Content-Length": str(length)}
    response = await app.test_client().open(
        path, method=method, headers=headers, data=body
    )
    await asyncio.wait_for(response.get_data(), 5)
    return response.status_code


@pytest.mark.parametrize(
    ("name", "rule"), QUART_ROUTES, ids=[f"{n}:{r}" for n, r in QUART_ROUTES]
)
def test_quart_route_answers_bad_input_below_500(name, rule, monkeypatch):
    """The Quart snippets get the same hostile requests: no 5xx, and no
    exception while the body is produced. (The model's delay is set to 0.)"""
    assert QUART_ROUTES  # the Quart snippet was found
    module = QUART_MODULES[name]
    monkeypatch.setattr(module, "TOKEN_DELAY", 0, raising=False)

    @SETTINGS
    @given(requests(name, rule))
    def check(request):
        STATS["requests"] += 1
        try:
            status = asyncio.run(send_quart(module.app, *request))
        except Exception as exc:
            STATS["failures"].append((name, rule.rule, request, repr(exc)))
            raise
        if status >= 500:
            STATS["failures"].append((name, rule.rule, request, status))
        assert status < 500, request

    check()
    for request in every_json_body(name, rule):
        check.hypothesis.inner_test(request)


def test_no_file_left_behind(files_before):
    """Run after the routes: every file in a snippet's folders was there before."""
    left = {
        (folder, name)
        for folder, name in snapshot() - files_before
        if not name.startswith(STORES)
    }
    print(
        f"\nadversarial tier: {STATS['requests']} requests, "
        f"{len(ROUTES) + len(QUART_ROUTES)} routes "
        f"of {len(APPS) + len(QUART_MODULES)} snippets, "
        f"{len(STATS['failures'])} failures found, "
        f"{STATS['on_purpose']} on-purpose failures, {STATS['stored']} whole uploads"
    )
    assert not left, sorted(left)
