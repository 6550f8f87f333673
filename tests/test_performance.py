"""Guard for ``make bench``: the same measurement code in quick mode (small
sizes, seconds), asserting ratios that must hold on any machine. No absolute
timings: only "this is several times that", which noise does not flip.

Also checks that the committed results in docs/_bench/ are a full run and that
the tables the Performance page includes are exactly what the JSON says.
"""

import json
import re
from pathlib import Path

import pytest

from bench import report
from bench.__main__ import OUT, QUICK, run

PAGE = Path(__file__).resolve().parent.parent / "docs" / "performance.rst"
INCLUDED = re.compile(r"(?:image::|:file:)\s*/_bench/(\S+)")


def quiet(*args, **kwargs):
    pass


@pytest.fixture(scope="module")
def offline():
    """Memory of the CSV export and of the database queries (subprocesses)."""
    return run(quick=True, only=("memory", "database"), log=quiet)


@pytest.fixture(scope="module")
def served():
    """Time to first byte, throughput and concurrency against real gunicorn."""
    return run(quick=True, only=("ttfb", "throughput", "concurrency"), log=quiet)


def point(points, **where):
    return report.pick(points, **where)


# --- memory --------------------------------------------------------------------


def test_streamed_csv_memory_does_not_grow_with_rows(offline):
    small, big = QUICK["csv_sizes"]
    points = offline["memory"]["points"]
    streamed_small = point(points, variant="streamed", rows=small)["traced_peak"]
    streamed_big = point(points, variant="streamed", rows=big)["traced_peak"]
    assert streamed_big <= 1.2 * streamed_small


def test_building_the_csv_first_grows_with_rows_and_costs_more(offline):
    small, big = QUICK["csv_sizes"]
    points = offline["memory"]["points"]
    built_small = point(points, variant="built", rows=small)["traced_peak"]
    built_big = point(points, variant="built", rows=big)["traced_peak"]
    streamed_big = point(points, variant="streamed", rows=big)["traced_peak"]
    assert built_big >= 3 * built_small
    assert built_big >= 4 * streamed_big
    # the body really was the same size both ways
    assert (
        point(points, variant="built", rows=big)["body_bytes"]
        == point(points, variant="streamed", rows=big)["body_bytes"]
    )


def test_yield_per_and_core_keep_database_memory_below_all(offline):
    peaks = {p["mode"]: p["traced_peak"] for p in offline["database"]["points"]}
    reads = {p["mode"]: p["rows_read"] for p in offline["database"]["points"]}
    assert set(reads.values()) == {QUICK["db_rows"]}
    assert peaks["all"] >= 3 * peaks["yield_per"]
    assert peaks["core"] < peaks["yield_per"]


# --- over real sockets ---------------------------------------------------------


@pytest.mark.live
def test_streamed_first_byte_comes_before_a_built_body(served):
    big = max(QUICK["ttfb_sizes"])
    points = served["ttfb"]["points"]
    streamed = point(points, variant="streamed", rows=big)
    built = point(points, variant="built", rows=big)
    assert streamed["ttfb"] * 3 <= built["ttfb"]
    assert streamed["ttfb"] * 3 <= streamed["total"]


@pytest.mark.live
def test_batching_beats_one_yield_per_row_through_real_servers(served):
    points = served["throughput"]["results"]
    for server in ("gunicorn gthread", "Werkzeug (flask run)"):
        batched = point(points, server=server, variant="batched")
        unbatched = point(points, server=server, variant="unbatched")
        assert batched["rows_per_second"] >= 1.5 * unbatched["rows_per_second"]


@pytest.mark.live
def test_gevent_holds_every_stream_and_gthread_only_its_threads(served):
    points = served["concurrency"]["results"]
    gevent = point(points, worker_class="gevent")
    gthread = point(points, worker_class="gthread")
    assert gevent["held"] == gevent["opened"] == QUICK["gevent_streams"]
    assert gthread["opened"] > QUICK["gthread_threads"]
    assert gthread["held"] == QUICK["gthread_threads"]
    assert gthread["silent"] == gthread["opened"] - gthread["held"]


@pytest.mark.live
def test_every_target_is_reported_with_a_verdict(served):
    lines = [report.target_line(t) for t in served["targets"]]
    assert len(lines) == 4  # ttfb, batching, best-vs-memory, gevent streams
    assert all(line.startswith(("PASS  ", "FAIL  ")) for line in lines)


# --- the committed results the page shows ------------------------------------


def test_committed_results_are_a_full_run_with_every_target():
    results = json.loads((OUT / "results.json").read_text())
    assert results["meta"]["quick"] is False
    assert len(results["targets"]) == 7
    assert results["targets"] == report.targets(results)


def test_page_tables_are_generated_from_the_committed_json():
    results = json.loads((OUT / "results.json").read_text())
    for name, text in report.tables(results).items():
        assert (OUT / name).read_text() == text, f"{name} is stale: rerun make bench"


def test_every_table_and_plot_the_page_includes_exists():
    included = set(INCLUDED.findall(PAGE.read_text()))
    assert {"targets.csv", "machine.csv", "memory.png"} <= included
    assert {p.name for p in OUT.iterdir()} >= included
