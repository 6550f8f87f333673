"""``make bench``: the measurements behind docs/performance.rst.

Run ``python -m bench`` from the repository root (``make bench`` does). It
writes ``docs/_bench/results.json``, the CSV tables and the PNG plots the page
includes, and prints one line per target with PASS or FAIL.
"""
