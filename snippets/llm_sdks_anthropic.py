"""The same relay with Anthropic's SDK: ``messages.create(stream=True)``."""

import os

import anthropic
from flask import Flask, Response, request

from snippets.sse import STREAM_HEADERS, encode_json

app = Flask(__name__)

# [anthropic]
# It also reads ANTHROPIC_BASE_URL.
client = anthropic.Anthropic(
    api_key=os.environ.get("ANTHROPIC_API_KEY", "unset"),
    timeout=anthropic.Timeout(60.0, connect=5.0),
    max_retries=0,
)
MODEL = os.environ.get("ANTHROPIC_MODEL", "claude-sonnet-5-5")


@app.post("/chat")
def chat():
    prompt = request.form.get("prompt", "").strip()
    if not 0 < len(prompt) <= 2000:
        return {"error": "prompt must be 1 to 2,000 characters"}, 400
    try:
        stream = client.messages.create(
            model=MODEL,
            max_tokens=1024,
            messages=[{"role": "user", "content": prompt}],
            stream=True,
        )
    except anthropic.APIStatusError as error:
        return {"error": f"the model answered {error.status_code}"}, 502
    except anthropic.APIError:
        return {"error": "the model could not be reached"}, 502

    def tokens():
        with stream:  # closes the provider's connection
            try:
                for item in stream:
                    if (
                        item.type == "content_block_delta"
                        and item.delta.type == "text_delta"
                    ):
                        yield encode_json(item.delta.text)
            except anthropic.APIError:  # an `error` event, after the 200
                yield encode_json("the answer broke off", event="error")
                return
            yield encode_json("", event="done")

    return Response(tokens(), mimetype="text/event-stream", headers=STREAM_HEADERS)


# [anthropic-end]
