"""snippets/llm_sdks.py (OpenAI's SDK) and snippets/llm_sdks_anthropic.py
in-process, against the fake providers of tests/launchers/fake_llm.py on
127.0.0.1: the answer, the 400 before anything is sent, and the provider's
errors before and after the first token."""

import contextlib

import pytest

from snippets import llm_sdks, llm_sdks_anthropic
from tests.launchers.fake_llm import fake_llm

SDKS = [llm_sdks, llm_sdks_anthropic]
IDS = ["openai", "anthropic"]


def base_url(module, provider):
    """OpenAI's SDK adds /chat/completions to its base URL, Anthropic's
    /v1/messages."""
    return f"{provider.url}/v1" if module is llm_sdks else provider.url


@contextlib.contextmanager
def serving(module, *args, **script):
    """A fake provider for ``module``'s SDK client, which points at it
    meanwhile (a copy of the client with another base URL)."""
    with fake_llm(*args, **script) as provider:
        previous = module.client
        module.client = previous.with_options(base_url=base_url(module, provider))
        try:
            yield provider
        finally:
            module.client = previous


def ask(module, prompt="hi"):
    return module.app.test_client().post("/chat", data={"prompt": prompt})


@pytest.mark.parametrize("module", SDKS, ids=IDS)
def test_the_answer_is_one_event_per_token_then_done(module):
    with serving(module) as provider:
        response = ask(module)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.get_data(as_text=True) == (
        'data: "Hel"\n\ndata: "lo"\n\ndata: "!"\n\nevent: done\ndata: ""\n\n'
    )
    assert provider.finished.is_set()


@pytest.mark.parametrize("module", SDKS, ids=IDS)
@pytest.mark.parametrize("prompt", ["", "   ", "x" * 2001])
def test_a_bad_prompt_is_a_400_and_the_provider_is_not_asked(module, prompt):
    with serving(module) as provider:
        response = ask(module, prompt)
    assert (response.status_code, response.json) == (
        400,
        {"error": "prompt must be 1 to 2,000 characters"},
    )
    assert provider.requests == []


@pytest.mark.parametrize("module", SDKS, ids=IDS)
@pytest.mark.parametrize("status", [401, 429, 500, 529])
def test_a_provider_error_before_the_stream_is_a_502(module, status):
    with serving(module, status=status) as provider:
        response = ask(module)
    assert (response.status_code, response.json) == (
        502,
        {"error": f"the model answered {status}"},
    )
    assert len(provider.requests) == 1  # no retry: the user is waiting


@pytest.mark.parametrize("module", SDKS, ids=IDS)
def test_an_unreachable_provider_is_a_502(module):
    with serving(module):
        pass  # the port is free again: nothing listens there now
    with serving(module) as provider:
        module.client = module.client.with_options(
            base_url=base_url(module, provider).replace(
                provider.url, "http://127.0.0.1:9"
            )
        )
        response = ask(module)
    assert (response.status_code, response.json) == (
        502,
        {"error": "the model could not be reached"},
    )


@pytest.mark.parametrize("module", SDKS, ids=IDS)
def test_a_provider_error_after_the_first_token_is_an_error_event(module):
    """OpenAI's SDK raises APIError on a ``data: {"error": ...}`` event,
    Anthropic's APIStatusError on an ``event: error``: both end the stream
    with the relay's own error event, and the body ends properly."""
    with serving(module, error_at=1):
        response = ask(module)
    assert response.status_code == 200
    assert response.get_data(as_text=True) == (
        'data: "Hel"\n\nevent: error\ndata: "the answer broke off"\n\n'
    )
