# [recipe]
import json
import os

import openai
from flask import Flask, Response, request

app = Flask(__name__)
# One client for the process (it reads OPENAI_BASE_URL too).
# Without a key, the provider answers 401: a 502 here.
client = openai.OpenAI(
    api_key=os.environ.get("OPENAI_API_KEY", "unset"),
    timeout=openai.Timeout(60.0, connect=5.0),
    max_retries=0,  # the user is waiting: fail fast
)
MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event(data, name=None):
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(data)}\n\n"


@app.post("/chat")
def chat():
    prompt = request.form.get("prompt", "").strip()
    if not 0 < len(prompt) <= 2000:
        return {"error": "prompt must be 1 to 2,000 characters"}, 400
    try:  # the request is sent here: a 4xx or 5xx raises now
        stream = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": prompt}],
            stream=True,
        )
    except openai.APIStatusError as error:
        return {"error": f"the model answered {error.status_code}"}, 502
    except openai.APIError:  # unreachable, or a timeout
        return {"error": "the model could not be reached"}, 502

    def tokens():
        # `with` closes the provider's connection when the client
        # leaves and the server closes this generator.
        with stream:
            try:
                for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        yield event(chunk.choices[0].delta.content)
            except openai.APIError:  # after the 200: say so in-band
                yield event("the answer broke off", "error")
                return
            yield event("", "done")

    return Response(tokens(), mimetype="text/event-stream", headers=STREAM_HEADERS)


# [recipe-end]
