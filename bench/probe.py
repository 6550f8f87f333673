"""One memory measurement in a fresh process, printed as JSON.

Run by :mod:`bench.memory`; each call measures one thing with one meter:

* ``tracemalloc``: the peak of Python allocations during the request, traced
  from just before it starts (imports and a warm-up request excluded);
* ``rss``: the process's peak resident set size (``VmHWM``) against its RSS
  just before the request. tracemalloc is off, so it does not inflate RSS.

    python -m bench.probe csv streamed 100000 rss
    python -m bench.probe db yield_per /tmp/x/rows.sqlite rss
"""

import gc
import json
import sys
import time
import tracemalloc


def proc_status(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # kB -> bytes
    raise KeyError(field)


def measure(work, meter):
    gc.collect()
    baseline = proc_status("VmRSS")
    if meter == "tracemalloc":
        tracemalloc.start()
    start = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - start
    peak = None
    if meter == "tracemalloc":
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return {
        "meter": meter,
        "seconds": seconds,
        "result": result,
        "traced_peak": peak,
        "rss_before": baseline,
        "rss_peak": proc_status("VmHWM"),
    }


def csv_probe(mode, rows, meter):
    from bench.apps import app

    path = {"streamed": "/batched.csv", "built": "/built.csv"}[mode]
    client = app.test_client()

    def consume(count):
        # Read the body chunk by chunk, as a server would, and keep nothing.
        response = client.get(f"{path}?rows={count}")
        size = sum(len(chunk) for chunk in response.response)
        response.close()
        return size

    consume(1)  # warm-up: lazy imports and first-request set-up
    return measure(lambda: consume(rows), meter)


def db_probe(mode, db_path, meter):
    from bench.database import query

    query(db_path, mode, limit=1)  # warm-up: mappers, dialect, statement cache
    return measure(lambda: query(db_path, mode), meter)


def main(argv):
    kind, mode, arg, meter = argv
    if kind == "csv":
        result = csv_probe(mode, int(arg), meter)
    else:
        result = db_probe(mode, arg, meter)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
