"""Run the benchmarks: ``python -m bench [--quick] [--out DIR] [--only ...]``.

Full mode refreshes docs/_bench/ (the committed results the page shows).
Quick mode runs the same code with small sizes in seconds; it is what
tests/test_performance.py runs, and it writes to a temporary folder unless
``--out`` says otherwise.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench import fanout, memory, network, report, servers

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "_bench"

FULL = {
    "meters": list(memory.METERS),  # tracemalloc's peak and the process's RSS
    "csv_sizes": [10_000, 100_000, 1_000_000],
    "ttfb_sizes": [1_000, 10_000, 100_000, 1_000_000],
    "ttfb_repeats": 5,
    "throughput_rows": 100_000,
    "throughput_repeats": 5,
    "file_bytes": 1024 * 2**20,
    "file_repeats": 7,
    "gevent_streams": 10_000,
    "gthread_threads": 100,
    "sse_interval": 5.0,
    "db_rows": 200_000,
    "servers_rows": 100_000,
    "servers_repeats": 5,
    "servers_chunks": [64 * 1024, 256 * 1024],
    "servers": list(servers.SERVERS),
    "fanout_subscribers": 1_000,
    "fanout_messages": 10,
}
QUICK = {
    "meters": ["tracemalloc"],  # the tests assert traced peaks only
    "csv_sizes": [5_000, 25_000],
    "ttfb_sizes": [1_000, 50_000],
    "ttfb_repeats": 3,
    "throughput_rows": 20_000,
    "throughput_repeats": 5,  # 0.1-0.3 s each
    "file_bytes": 16 * 2**20,
    "file_repeats": 3,
    "gevent_streams": 50,
    "gthread_threads": 10,
    "sse_interval": 0.25,
    "db_rows": 10_000,
    "servers_rows": 20_000,
    "servers_repeats": 2,
    "servers_chunks": [64 * 1024],
    # the WSGI-to-ASGI bridges and hypercorn's WSGI mode; the full run has all
    "servers": [
        "uvicorn + a2wsgi",
        "uvicorn + asgiref WsgiToAsgi",
        "hypercorn (WSGI)",
    ],
    "fanout_subscribers": 40,
    "fanout_messages": 3,
}

SECTIONS = {
    "memory": lambda c: memory.csv_memory(c["csv_sizes"], c["meters"]),
    "ttfb": lambda c: network.ttfb(c["ttfb_sizes"], c["ttfb_repeats"]),
    "throughput": lambda c: network.throughput(
        c["throughput_rows"], c["throughput_repeats"]
    ),
    "files": lambda c: network.files(c["file_bytes"], c["file_repeats"]),
    "concurrency": lambda c: network.concurrency(
        c["gevent_streams"], c["gthread_threads"], c["sse_interval"]
    ),
    "database": lambda c: memory.database_memory(c["db_rows"], c["meters"]),
    "servers": lambda c: servers.servers(
        c["servers_rows"], c["servers_repeats"], c["servers_chunks"], c["servers"]
    ),
    "fanout": lambda c: fanout.fanout(c["fanout_subscribers"], c["fanout_messages"]),
}


def run(quick=False, only=tuple(SECTIONS), log=print):
    """Measure; return the results dict (with its targets)."""
    config = QUICK if quick else FULL
    started = time.monotonic()
    results = {"meta": {"quick": quick, "config": config,
                        "machine": report.machine()}}  # fmt: skip
    for name in only:
        log(f"measuring {name}...", flush=True)
        section_start = time.monotonic()
        results[name] = SECTIONS[name](config)
        results[name]["section_seconds"] = time.monotonic() - section_start
    results["meta"]["duration_seconds"] = time.monotonic() - started
    results["meta"]["load_average_at_end"] = os.getloadavg()
    results["targets"] = report.targets(results)
    return results


def update(results, fresh):
    """Put the sections of the run ``fresh`` into ``results``, and record it.

    For re-measuring a few sections without rerunning everything: the meta
    keeps the first run and lists each later one (when, which sections, the
    load), so the machine table says which numbers come from which run.
    """
    sections = [name for name in SECTIONS if name in fresh]
    for name in sections:
        results[name] = fresh[name]
    meta, new = results["meta"], fresh["meta"]
    if meta["quick"] != new["quick"]:
        raise ValueError("cannot mix quick and full results")
    meta["config"] = {**meta["config"], **new["config"]}
    old, now = meta["machine"]["packages"], new["machine"]["packages"]
    changed = {k for k in old.keys() & now.keys() if old[k] != now[k]}
    if changed:
        raise ValueError(f"installed versions changed since the run: {changed}")
    meta["machine"]["packages"] = {**old, **now}
    meta.setdefault("updates", []).append(
        {
            "sections": sections,
            "date": new["machine"]["date"],
            "os": new["machine"]["os"],
            "cpu": f"{new['machine']['cpu']}, {new['machine']['cores']} cores",
            "load_average_at_start": new["machine"]["load_average_at_start"],
            "load_average_at_end": new["load_average_at_end"],
            "duration_seconds": new["duration_seconds"],
        }
    )
    results["targets"] = report.targets(results)
    return results


def write(results, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    for name, text in report.tables(results).items():
        (out_dir / name).write_text(text)
    for stale in out_dir.glob("*.png"):  # the plots are SVG now
        stale.unlink()
    report.plots(results, out_dir)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds")
    parser.add_argument("--out", type=Path, help="where results go")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS),
                        default=list(SECTIONS))  # fmt: skip
    parser.add_argument("--update", action="store_true",
                        help="measure the --only sections and put them into "
                             "the results.json already in --out")  # fmt: skip
    parser.add_argument("--render", action="store_true",
                        help="measure nothing: redraw tables and plots from "
                             "the results.json already in --out")  # fmt: skip
    args = parser.parse_args(argv)
    out = args.out or (Path(tempfile.mkdtemp(prefix="bench-")) if args.quick else OUT)
    if args.render:
        results = json.loads((out / "results.json").read_text())
        results["targets"] = report.targets(results)  # the current rules
    elif args.update:
        results = json.loads((out / "results.json").read_text())
        update(results, run(args.quick, args.only, log=print))
    else:
        results = run(args.quick, args.only, log=print)
    write(results, out)
    print(f"results, tables and plots written to {out}")
    if results["meta"]["quick"]:
        print("quick mode: the sizes are too small for the targets to mean much")
    for line in map(report.target_line, results["targets"]):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
