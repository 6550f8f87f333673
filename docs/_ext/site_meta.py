"""Sidebar captions that assistive technology can place, and code blocks a
keyboard can scroll.

furo marks each toctree caption ``role="heading"`` with no level; axe-core
reports that as a critical violation (aria-required-attr, 6 nodes on every
page before this). Each caption becomes a level-2 heading. A code block
wider than its box scrolls; axe-core asks that a keyboard can reach it
(scrollable-region-focusable), so every ``<pre>`` and every table's
scrolling box takes focus. (Meta
descriptions come from sphinxext-opengraph, which also writes
``<meta name="description">`` from the page's first paragraph.)
"""

from __future__ import annotations

TABLE_BOX = '<div tabindex="0" class="table-wrapper'


def page_context(app, pagename, templatename, context, doctree) -> None:
    for key in ("furo_navigation_tree", "body"):
        if isinstance(context.get(key), str):
            context[key] = context[key].replace(
                'class="caption" role="heading">',
                'class="caption" role="heading" aria-level="2">',
            )
    if isinstance(context.get("body"), str):
        context["body"] = (
            context["body"]
            .replace("<pre>", '<pre tabindex="0">')
            .replace('<div class="table-wrapper', TABLE_BOX)
        )


def setup(app):
    # After furo (priority 500), which computes the navigation tree.
    app.connect("html-page-context", page_context, priority=900)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
