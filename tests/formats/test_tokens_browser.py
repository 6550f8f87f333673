"""A real Chromium against snippets/tokens.py: fetch() with a stream
reader renders tokens as they arrive, byte-exact; EventSource cannot POST."""

import threading

import pytest

from snippets import tokens as token_stream

pytestmark = pytest.mark.browser

PROMPT = "Say hello"  # the page's default prompt
EXPECTED = f"You said: {PROMPT}\n{token_stream.ANSWER}"
ANSWER_TEXT = "document.getElementById('answer').textContent"


def recording(app, seen):
    def wsgi(environ, start_response):
        seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        return app(environ, start_response)

    return wsgi


@pytest.fixture
def held_last_token(monkeypatch):
    """The model holds back its last token until the test sets the event."""
    release = threading.Event()
    real_model = token_stream.fake_model

    def model(prompt):
        tokens = list(real_model(prompt))
        yield from tokens[:-1]
        assert release.wait(timeout=30), "the test never released the last token"
        yield tokens[-1]

    monkeypatch.setattr(token_stream, "fake_model", model)
    return release


def test_fetch_reader_renders_tokens_before_the_answer_ends(
    page, live_server, held_last_token
):
    page.goto(f"{live_server(token_stream.app)}/")
    page.click("text=Ask (fetch)")
    # Everything but the last token is on screen while the server holds it.
    page.wait_for_function(f"{ANSWER_TEXT}.includes('日本')", timeout=20_000)
    assert page.evaluate(ANSWER_TEXT) != EXPECTED
    assert page.inner_text("#status") == "streaming"
    held_last_token.set()
    page.wait_for_function("document.getElementById('status').value === 'done'")
    assert page.evaluate(ANSWER_TEXT) == EXPECTED  # newlines, emoji, U+0301


def test_eventsource_variant_renders_the_same_text(page, live_server):
    seen = []
    page.goto(f"{live_server(recording(token_stream.app, seen))}/")
    page.click("text=Ask (EventSource)")
    page.wait_for_function(
        "document.getElementById('status').value === 'done'", timeout=20_000
    )
    assert page.evaluate(ANSWER_TEXT) == EXPECTED
    # The page closes the source on "done": no reconnect, no second answer.
    assert [path for _, path in seen].count("/events") == 1


def test_bad_prompt_shows_the_servers_message(page, live_server):
    page.goto(f"{live_server(token_stream.app)}/")
    page.fill("#prompt", "   ")
    page.click("text=Ask (fetch)")
    page.wait_for_function(
        "document.getElementById('status').value.startsWith('error')"
    )
    assert page.inner_text("#status") == 'error 400: send a non-empty "prompt"'


def test_decoding_each_chunk_alone_garbles_a_split_character(
    page, live_server, monkeypatch
):
    """The first chunk ends in the middle of 👩 (4 bytes in UTF-8). The server
    holds the rest until the browser has read that chunk on its own, so the
    split is certain. Decoding each chunk alone writes U+FFFD; TextDecoder
    with stream: true gives the exact text."""
    release = threading.Event()

    def split_model(prompt):
        yield "A👩".encode()[:3]  # b"A\xf0\x9f"
        assert release.wait(timeout=30)
        yield "A👩B".encode()[3:]  # b"\x91\xa9B"

    monkeypatch.setattr(token_stream, "fake_model", split_model)
    page.goto(f"{live_server(token_stream.app)}/")
    page.evaluate(
        """() => {
          window.reads = [];
          window.result = fetch("/generate", {
            method: "POST",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify({prompt: "hi"}),
          }).then(async (response) => {
            const reader = response.body.getReader();
            const streaming = new TextDecoder();
            let naive = "", exact = "";
            for (;;) {
              const {done, value} = await reader.read();
              if (done) break;
              window.reads.push(value.length);
              naive += new TextDecoder().decode(value);
              exact += streaming.decode(value, {stream: true});
            }
            return {naive, exact: exact + streaming.decode()};
          });
        }"""
    )
    page.wait_for_function("window.reads.length === 1", timeout=20_000)
    release.set()
    result = page.evaluate("window.result")
    assert page.evaluate("window.reads") == [3, 3]
    assert result["exact"] == "A👩B"
    assert result["naive"] == "A\ufffd\ufffd\ufffdB"  # one per broken piece


def test_eventsource_cannot_post(page, live_server):
    """EventSource takes a URL and {withCredentials} only: a "method" option
    is ignored and the request is a GET."""
    seen = []
    url = live_server(recording(token_stream.app, seen))
    page.goto(f"{url}/")
    page.evaluate(
        """() => new Promise((resolve) => {
          const source = new EventSource("/events?prompt=hi",
                                         {method: "POST", body: "x"});
          source.addEventListener("done", () => { source.close(); resolve(); });
        })"""
    )
    assert ("GET", "/events") in seen
    assert not any(method == "POST" for method, _ in seen)
