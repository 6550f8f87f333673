"""In process: the Templates page's recipe."""

from snippets import templates


def test_recipe_sends_the_page_before_the_last_row_is_read(monkeypatch):
    """The rows are a generator: the first chunk of the page is out while
    the generator has made one row at most."""
    made = []

    def readings(count):
        for i in range(1, count + 1):
            made.append(i)
            yield {"id": i, "label": f"reading {i}"}

    monkeypatch.setattr(templates, "readings", readings)
    response = templates.app.test_client().get("/table", buffered=False)
    chunks = iter(response.response)
    assert next(chunks).startswith(b"<!doctype html>")
    assert len(made) <= 1
    rest = b"".join(chunks)
    assert made == list(range(1, templates.ROWS + 1))
    assert rest.count(b"<tr>") == templates.ROWS
    response.close()
