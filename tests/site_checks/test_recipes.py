"""Every pattern page opens with the answer, a recipe and "Before you ship",
and every recipe runs as a file: the text its copy button copies, from the
built HTML, saved as a module of its own, serves its first route with a
streamed 200.

A pattern page is a page that includes a snippet (docs/<part>/<page>.rst
with a ``literalinclude`` of ``/../snippets/``); its recipe is the included
region with ``:class: recipe``. Where the answer is a config file (nginx,
gunicorn, uWSGI), the recipe is that file, and a test module uses it as it
is (it names the file's path).
"""

from __future__ import annotations

import contextlib
import html
import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest
from generated import GENERATED  # docs/_ext, on the path (root conftest)

from tests.servers import STRICT, serve

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
HTML = ROOT / "_build" / "html"
INCLUDES_SNIPPET = re.compile(r"^\.\. literalinclude:: /\.\./snippets/", re.M)
RECIPE = re.compile(
    r"^\.\. literalinclude:: (\S+)\n(?:   :.*\n)*?   :class: recipe", re.M
)
STORE_CLIENTS = ("redis", "celery", "rq")


def pattern_pages() -> list[str]:
    """docs/<part>/<page>.rst that include a snippet (the top-level pages,
    the index among them, are not patterns)."""
    return sorted(
        path.relative_to(DOCS).with_suffix("").as_posix()
        for path in DOCS.glob("*/*.rst")
        if path.parent.name not in GENERATED
        and not path.parent.name.startswith("_")
        and INCLUDES_SNIPPET.search(path.read_text())
    )


def built(page: str) -> str:
    path = HTML / f"{page}.html"
    if not path.exists():
        reason = "the site is not built: run make html (make test does)"
        if STRICT:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return path.read_text()


def article(page: str) -> str:
    text = built(page)
    start = (
        text.index('<article class="bd-article" role="main">')
        if ('<article class="bd-article"' in text)
        else text.index("<article")
    )
    return text[start : text.index("</article>", start)]


def recipe_source(page: str) -> Path | None:
    """The file the page's recipe is included from."""
    found = RECIPE.search((DOCS / f"{page}.rst").read_text())
    if not found:
        return None
    target = found[1]
    if target.startswith("/"):
        return (DOCS / target.lstrip("/")).resolve()
    return (DOCS / page).parent.joinpath(target).resolve()


def recipe_text(page: str) -> str | None:
    """The recipe as its copy button copies it: the <pre>'s text."""
    found = re.search(
        r'<div class="recipe highlight-[^"]*"><div class="highlight"><pre[^>]*>'
        r"(.*?)</pre>",
        built(page),
        re.S,
    )
    if not found:
        return None
    return html.unescape(re.sub(r"<[^>]+>", "", found[1]))


PAGES = pattern_pages()


@pytest.mark.parametrize("page", PAGES)
def test_pattern_page_opens_with_answer_recipe_and_before_you_ship(page):
    """The answer (a paragraph), then the recipe as the page's first code,
    then the "Before you ship" box, all before the first section."""
    body = article(page)
    first_section = body.find("<section", body.find("<section") + 1)
    top = body if first_section < 0 else body[:first_section]
    recipe = top.find('<div class="recipe ')
    assert recipe > 0, "no recipe before the first section"
    assert "<p>" in top[:recipe], "no answer paragraph before the recipe"
    assert top.find('<div class="highlight') >= recipe - 40, "code before the recipe"
    box = top.find("before-you-ship")
    assert box > recipe, 'no "Before you ship" box after the recipe'


@pytest.mark.parametrize("page", PAGES)
def test_recipe_runs_as_a_file(page, tmp_path, monkeypatch):
    """Saved alone as a file and imported, the recipe's app answers its first
    route (a plain GET) with a streamed 200 whose first chunk comes. The
    file sits where a reader's would: next to a copy of the snippets'
    ``files/`` and ``templates/`` folders; a ``<name>`` in the route is a
    file of ``files/``. A first route that takes no GET is sent the body the
    page's examples send it: an upload is then stored (a 2xx), a start
    answers with the stream's URL (its Location, or a URL in its JSON). A
    signed-in stream (a 401 first) is asked again after the page's own
    sign-in (a POST route under /login); the environment the page's set-up
    gives (``os.environ.setdefault``) is set."""
    included = recipe_source(page)
    assert included, "no recipe"
    if ROOT / "snippets" not in included.parents:  # a config file
        rel = included.relative_to(ROOT).as_posix()
        users = [
            test
            for test in (ROOT / "tests").rglob("test_*.py")
            if included.name in test.read_text()
            and rel.split("/")[-2] in test.read_text()
        ]
        assert users, f"no test uses {rel} as it is"
        return
    source = recipe_text(page)
    assert source, "no recipe in the built page"
    module_name = "recipe_" + re.sub(r"\W", "_", page)
    path = tmp_path / f"{module_name}.py"
    path.write_text(source)
    for folder in ("files", "templates"):
        shutil.copytree(ROOT / "snippets" / folder, tmp_path / folder)
    a_file = sorted(p.name for p in (tmp_path / "files").iterdir() if p.is_file())[0]
    page_env = dict(
        re.findall(
            r"os\.environ\.setdefault\(\s*[\"'](\w+)[\"']\s*,\s*[\"']([^\"']*)[\"']",
            (DOCS / f"{page}.rst").read_text(),
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with contextlib_for(source, module_name, tmp_path, monkeypatch) as (
        env,
        path_values,
    ):
        for key, value in {**page_env, **env}.items():
            monkeypatch.setenv(key, value)
        monkeypatch.chdir(tmp_path)
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, module_name, module)
        spec.loader.exec_module(module)
        app = module.app
        rule = next(r for r in app.url_map.iter_rules() if r.endpoint != "static")
        if type(app).__name__ == "Quart":  # served by hypercorn, not flask run
            assert quart_first_route_answers(app, rule.rule)
            return
        client = app.test_client()
        values = {"name": a_file, **path_values}
        url = re.sub(
            r"<(?:[^:<>]+:)?(\w+)>", lambda m: values.get(m[1], "1"), rule.rule
        )
        if "GET" not in rule.methods:
            method = sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
            started = send_as_the_page_does(client, page, method, rule.rule, url)
            if started.is_streamed and started.status_code == 200:
                check_streamed(started)
                return
            assert started.status_code < 300, started.get_data()[:300]
            if method == "PUT":  # an upload, streamed in and stored
                return
            url = started.headers.get("Location") or next(
                value
                for value in (started.get_json(silent=True) or {}).values()
                if isinstance(value, str) and value.startswith("/")
            )
        response = client.get(url, buffered=False)
        sign_in = [
            r
            for r in app.url_map.iter_rules()
            if r.rule.startswith("/login") and "POST" in r.methods
        ]
        if response.status_code == 401 and sign_in:  # sign in as the page does
            response.close()
            login = re.sub(r"<(?:[^:<>]+:)?(\w+)>", "1", sign_in[0].rule)
            signed_in = send_as_the_page_does(
                client, page, "POST", sign_in[0].rule, login
            )
            assert signed_in.status_code < 300, signed_in.get_data()[:300]
            response = client.get(url, buffered=False)
        check_streamed(response)


def check_streamed(response):
    try:
        assert response.status_code == 200, response.get_data()[:300]
        assert response.is_streamed
        assert next(iter(response.response))
    finally:
        response.close()


EXAMPLE = (
    r"client\.{method}\(\s*f?[\"']{path}[\"']\s*,\s*(json|data)="
    r"(\{{[^}}]*\}}|b?[\"'][^\"']*[\"'])"
)


def send_as_the_page_does(client, page, method, rule, url):
    """``method`` ``url`` with each body the page's own examples send to the
    route (a prompt, a form, an upload's bytes), streamed, until one is
    accepted; with none if the page sends none."""
    import ast

    text = (DOCS / f"{page}.rst").read_text()
    path = re.escape(rule).replace(r"\<", "<")
    path = re.sub(r"<(?:[^:<>]+:)?\w+\\?>", r"[^\"']+", path)
    bodies = []
    for kind, literal in re.findall(
        EXAMPLE.format(method=method.lower(), path=path), text
    ):
        with contextlib.suppress(ValueError, SyntaxError):  # "x" * 3000
            bodies.append({kind: ast.literal_eval(literal)})
    response = None
    for kwargs in [*bodies, {"data": b"hello\n"} if method == "PUT" else {}]:
        response = client.open(url, method=method, buffered=False, **kwargs)
        if response.status_code < 300:
            return response
        response.close()
    return response


def quart_first_route_answers(app, path) -> bool:
    """A Quart recipe's first route, through Quart's own (async) test client:
    a 200 with a body."""
    import asyncio

    async def get():
        response = await app.test_client().get(path)
        return response.status_code, await response.get_data()

    status, body = asyncio.run(get())
    return status == 200 and bool(body)


def openai_like_upstream(environ, start_response):
    """An upstream that answers like OpenAI's streamed chat completions."""
    start_response("200 OK", [("Content-Type", "text/event-stream")])
    for word in ("Hello", " there"):
        yield b'data: {"choices": [{"delta": {"content": "%s"}}]}\n\n' % word.encode()
    yield b"data: [DONE]\n\n"


def contextlib_for(source: str, module_name: str, folder: Path, monkeypatch):
    """What a recipe's code talks to, started for it: its environment and
    the values of its first route's path. Redis, in every variable it reads
    with a ``redis://`` default (and a Celery worker if it has a Celery app);
    an OpenAI-like upstream for a relay; a fake provider for the OpenAI SDK
    (OPENAI_BASE_URL); an S3 server holding one object for boto3. Others get
    nothing."""
    import contextlib

    imports = set(re.findall(r"^(?:from|import) (\w+)", source, re.M))

    @contextlib.contextmanager
    def started():
        if "RELAY_UPSTREAM_URL" in source:
            with serve("werkzeug", openai_like_upstream) as upstream:
                url = upstream.url + "/v1/chat/completions"
                yield {"RELAY_UPSTREAM_URL": url}, {}
        elif "openai" in imports:
            with serve("fake-llm") as provider:
                yield {"OPENAI_BASE_URL": provider.url + "/v1"}, {}
        elif "boto3" in imports:
            import boto3

            # The recipe's client comes from boto3's default session, which
            # keeps the credentials it finds first: a session for this test
            # alone, so the fake ones below do not outlive it.
            monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
            with serve("s3") as store:
                s3 = store.client()
                s3.create_bucket(Bucket="media")
                s3.put_object(Bucket="media", Key="hello.txt", Body=b"hello\n" * 100)
                yield (
                    {
                        "AWS_ENDPOINT_URL": store.url,
                        "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1",
                    },
                    {"key": "hello.txt"},
                )
        elif imports & set(STORE_CLIENTS):
            names = set(REDIS_DEFAULT.findall(source)) | set(
                re.findall(r"[\"'](\w*REDIS_URL)[\"']", source)
            )
            with contextlib.ExitStack() as stack:
                redis = stack.enter_context(serve("redis"))
                env = dict.fromkeys(names or {"REDIS_URL"}, redis.url)
                if found := re.search(r"^(\w+) = Celery\(", source, re.M):
                    stack.enter_context(
                        serve(
                            "celery",
                            f"{module_name}:{found[1]}",
                            redis.url,
                            env={**env, "PYTHONPATH": str(folder)},
                        )
                    )
                yield env, {}
        else:
            yield {}, {}

    return started()


REDIS_DEFAULT = re.compile(r"environ\.get\(\s*[\"'](\w+)[\"']\s*,\s*[\"']redis://")
