"""Memory measurements: each one in a fresh process (see :mod:`bench.probe`)."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.database import MODES, create_database

ROOT = Path(__file__).resolve().parent.parent
METERS = ("tracemalloc", "rss")


def probe(*args):
    # Coverage or other tracers in the environment would change what is
    # measured: the probe runs with a clean environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COV")}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-m", "bench.probe", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(out.stdout)


def combine(tracemalloc_run, rss_run=None):
    """One point from a run per meter (the quick run, whose tests assert
    traced peaks only, measures no RSS: half the processes)."""
    point = {
        "traced_peak": tracemalloc_run["traced_peak"],
        "body_bytes": tracemalloc_run["result"],
    }
    if rss_run is not None:
        assert rss_run["result"] == tracemalloc_run["result"]
        point |= {
            "rss_before": rss_run["rss_before"],
            "rss_peak": rss_run["rss_peak"],
            "rss_added": max(0, rss_run["rss_peak"] - rss_run["rss_before"]),
            "seconds": rss_run["seconds"],
        }
    return point


def csv_memory(sizes, meters=METERS):
    points = []
    for rows in sizes:
        for mode in ("streamed", "built"):
            runs = [probe("csv", mode, rows, meter) for meter in meters]
            points.append({"variant": mode, "rows": rows, **combine(*runs)})
    return {"points": points}


def database_memory(rows, meters=METERS):
    points = []
    with tempfile.TemporaryDirectory(prefix="bench-db-") as tmp:
        path = Path(tmp) / "rows.sqlite"
        create_database(path, rows)
        for mode in MODES:
            runs = [probe("db", mode, path, meter) for meter in meters]
            point = combine(*runs)
            point["rows_read"] = point.pop("body_bytes")
            points.append({"mode": mode, "rows": rows, **point})
    return {"rows": rows, "points": points}
