"""Runs a page's examples in Pyodide, in the tryit worker (tryit-worker.mjs).

The worker calls ``run(steps, upto, fresh, pause)``: the page's set-up code
and ``>>>`` blocks, in order, as Sybil runs them, in one namespace. Every
output of the block whose button was pressed is posted as it is written;
every chunk a test client's streamed response yields is posted as it comes,
so the page shows the stream arriving. Where the browser has JavaScript
Promise Integration, Python can wait for the page without blocking it: a
"Stop" closes the response being read (its generator's ``finally`` runs),
``time.sleep`` lets the page in, and "Pause at each chunk" waits for
"Next chunk".
"""

import asyncio
import doctest
import io
import json
import sys
import time
import traceback

import js
from pyodide.ffi import can_run_sync, run_sync

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE  # as conftest.py
CHECKER = doctest.OutputChecker()
SHOWN_CHUNKS = 200  # chunks listed per response; the rest are counted


def post(kind, **data):
    js.tryitPost(kind, json.dumps(data))


class Stopped(KeyboardInterrupt):
    """The reader pressed Stop."""


class Live(io.TextIOBase):
    """sys.stdout while an example runs: kept, and posted as written when
    the example belongs to the block the reader ran."""

    def __init__(self, show):
        self.parts, self.show = [], show

    def writable(self):
        return True

    def write(self, text):
        self.parts.append(text)
        if self.show and text:
            post("out", text=text)
        return len(text)

    def getvalue(self):
        return "".join(self.parts)


class State:
    namespace = {}
    pause = False
    showing = False
    responses = 0
    last_yield = 0.0


def let_the_page_in():
    """Let the worker's event loop run, so a Stop or a Next reaches Python."""
    if can_run_sync():
        run_sync(asyncio.sleep(0))
        State.last_yield = time.monotonic()


def stop_requested():
    return bool(js.tryitStopRequested())


class Watched:
    """A streamed body as the test client returns it, posting each chunk."""

    def __init__(self, inner):
        self.inner = iter(inner)
        self.closable = inner
        State.responses += 1
        self.number = State.responses
        self.made = 0

    def __iter__(self):
        return self

    def __next__(self):
        if stop_requested():
            self.stop()
        chunk = next(self.inner)
        self.made += 1
        if State.showing:
            if self.made <= SHOWN_CHUNKS:
                post("chunk", response=self.number, n=self.made, text=repr(chunk))
            else:
                post("more", response=self.number, n=self.made)
        if State.pause and State.showing and can_run_sync():
            post("paused", response=self.number, n=self.made)
            run_sync(js.tryitWaitForNext())
            post("resumed")
        elif time.monotonic() - State.last_yield > 0.05:
            let_the_page_in()
        if stop_requested():
            self.stop()
        return chunk

    def stop(self):
        self.close()
        raise Stopped("the reader pressed Stop: the response was closed")

    def close(self):
        close = getattr(self.closable, "close", None)
        if close is not None:
            close()


def watch_test_client():
    import werkzeug.test

    original = werkzeug.test.run_wsgi_app
    if getattr(original, "tryit", False):
        return

    def run_wsgi_app(app, environ, buffered=False):
        app_iter, status, headers = original(app, environ, buffered=buffered)
        if not buffered:
            app_iter = Watched(app_iter)
        return app_iter, status, headers

    run_wsgi_app.tryit = True
    werkzeug.test.run_wsgi_app = run_wsgi_app


def sleep_that_lets_the_page_in():
    real_sleep = time.sleep

    def sleep(seconds):
        if seconds <= 0 or not can_run_sync():
            return real_sleep(seconds)
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0 and not stop_requested():
            run_sync(asyncio.sleep(min(left, 0.05)))
        State.last_yield = time.monotonic()

    time.sleep = sleep


def fresh_namespace():
    for name in list(sys.modules):
        if name == "snippets" or name.startswith("snippets."):
            del sys.modules[name]
    State.namespace = {"__name__": "__main__"}


def run_code(code):
    saved = sys.stdout
    sys.stdout = Live(False)
    try:
        exec(compile(code, "<set-up>", "exec"), State.namespace)
    finally:
        sys.stdout = saved


def run_block(text, show, differs):
    """Run one block's examples; return what each printed or raised."""
    results = []
    for example in doctest.DocTestParser().get_examples(text):
        live = Live(show)
        saved = sys.stdout, sys.displayhook
        sys.stdout, sys.displayhook = live, sys.__displayhook__
        exc = None
        try:
            code = compile(example.source, "<example>", "single")
            exec(code, State.namespace)
        except Stopped:
            exc = "Stopped: the reader pressed Stop, the response was closed\n"
            results.append(result(example, live.getvalue(), exc, {}, stopped=True))
            raise StopBlock(results) from None
        except BaseException as error:
            exc = traceback.format_exception_only(type(error), error)[-1]
        finally:
            sys.stdout, sys.displayhook = saved
        results.append(result(example, live.getvalue(), exc, differs))
    return results


class StopBlock(Exception):
    def __init__(self, results):
        self.results = results


def result(example, got, exc, differs, stopped=False):
    """What the example printed, and whether it is what the page shows (or,
    for a difference the page documents, what the page says Run prints)."""
    documented = example.source in differs
    if documented and exc is None:
        ok = CHECKER.check_output(differs[example.source], got, FLAGS)
    elif exc is not None and example.exc_msg is not None:
        ok = CHECKER.check_output(example.exc_msg, exc, FLAGS)
    elif exc is not None:
        ok = False
    else:
        ok = CHECKER.check_output(example.want, got, FLAGS)
    return {
        "source": example.source,
        "want": example.want,
        "got": got,
        "exc": exc,
        "ok": bool(ok) and not stopped,
        "documented": documented,
        "stopped": stopped,
    }


def run(steps_json, upto, fresh, pause):
    """Run steps[0..upto]; post the results of the last one (a block)."""
    steps = json.loads(steps_json)
    State.pause = bool(pause)
    if fresh:
        fresh_namespace()
    earlier_failures = 0
    for index, step in enumerate(steps[: upto + 1]):
        last = index == upto
        State.showing = last
        if step["kind"] == "clear-skip":  # ran before, in this namespace
            continue
        if step["kind"] == "clear":
            State.namespace = {"__name__": "__main__"}
        elif step["kind"] == "code":
            try:
                run_code(step["code"])
            except BaseException as error:
                message = traceback.format_exception_only(type(error), error)[-1]
                post("error", text=f"The page's set-up failed: {message}")
                return
        else:
            try:
                results = run_block(step["text"], last, step.get("differs", {}))
            except StopBlock as stop:
                post("done", results=stop.results, earlier=earlier_failures)
                return
            if last:
                post("done", results=results, earlier=earlier_failures)
            else:
                earlier_failures += sum(not r["ok"] for r in results)


watch_test_client()
sleep_that_lets_the_page_in()
fresh_namespace()
post("ready", python=sys.version.split()[0])
