"""Turn the results into what the Performance page includes: the targets,
CSV tables and PNG plots. Everything here reads the results dict only, so the
committed JSON alone regenerates the page's tables and plots.
"""

import csv
import io
import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from importlib.metadata import version

import psutil

MIB = 2**20
PACKAGES = (
    "flask",
    "werkzeug",
    "gunicorn",
    "gevent",
    "waitress",
    "pyuwsgi",
    "uvicorn",
    "a2wsgi",
    "asgiref",
    "hypercorn",
    "redis",
    "sqlalchemy",
    "matplotlib",
)


# --- where and when --------------------------------------------------------


def cpu_model():
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def nginx_version():
    try:
        out = subprocess.run(
            ["nginx", "-v"], capture_output=True, text=True, check=False
        ).stderr
    except OSError:
        return "not installed"
    found = re.search(r"nginx/(\S+)", out)
    return found[1] if found else out.strip()


def machine():
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": {name: version(name) for name in PACKAGES},
        "nginx": nginx_version(),
        "load_average_at_start": os.getloadavg(),
    }


# --- targets ---------------------------------------------------------------


def pick(points, **where):
    (found,) = [p for p in points if all(p[k] == v for k, v in where.items())]
    return found


def target(name, measured, op, limit):
    passed = measured <= limit if op == "<=" else measured >= limit
    return {"name": name, "measured": measured, "op": op, "limit": limit,
            "passed": passed}  # fmt: skip


def targets(results):
    found = []
    if "memory" in results:
        points = results["memory"]["points"]
        sizes = sorted({p["rows"] for p in points})
        small, big = sizes[0], sizes[-1]
        streamed = pick(points, variant="streamed", rows=big)["traced_peak"]
        built = pick(points, variant="built", rows=big)["traced_peak"]
        streamed_small = pick(points, variant="streamed", rows=small)["traced_peak"]
        found.append(target(
            f"streamed CSV peak / build-first peak, {big:,} rows",
            streamed / built, "<=", 0.01))  # fmt: skip
        found.append(target(
            f"streamed CSV peak at {big:,} rows / at {small:,} rows",
            streamed / streamed_small, "<=", 1.2))  # fmt: skip
    if "ttfb" in results:
        points = [p for p in results["ttfb"]["points"] if p["variant"] == "streamed"]
        small, big = (
            min(points, key=lambda p: p["rows"]),
            max(points, key=lambda p: p["rows"]),
        )
        found.append(target(
            f"time to first byte at {big['rows']:,} rows / at {small['rows']:,} rows",
            big["ttfb"] / small["ttfb"], "<=", 1.5))  # fmt: skip
    if "throughput" in results:
        points = results["throughput"]["results"]
        gunicorn = [p for p in points if p["server"].startswith("gunicorn")]
        batched = pick(gunicorn, variant="batched")["rows_per_second"]
        unbatched = pick(gunicorn, variant="unbatched")["rows_per_second"]
        limit = pick(points, server="none (in memory)", variant="batched")
        found.append(target(
            "rows/s through gunicorn: 64 KiB chunks / one yield per row",
            batched / unbatched, ">=", 3))  # fmt: skip
        # Against a limit, compare best runs: noise only ever slows a run.
        best = max(p["rows"] / min(p["runs"]) for p in gunicorn)
        found.append(target(
            "best streamed CSV through gunicorn / in-memory generation",
            best / (limit["rows"] / min(limit["runs"])), ">=", 0.5))  # fmt: skip
    if "files" in results:
        points = results["files"]["results"]
        send_file = pick(points, how="send_file (sendfile)")["mib_per_second"]
        nginx = pick(points, server="nginx")["mib_per_second"]
        found.append(target(
            "send_file through gunicorn / nginx serving the file",
            send_file / nginx, ">=", 0.7))  # fmt: skip
    if "concurrency" in results:
        gevent = pick(results["concurrency"]["results"], worker_class="gevent")
        found.append(target(
            "concurrent SSE streams held by one gunicorn gevent worker",
            gevent["held"], ">=", 10_000))  # fmt: skip
    if "servers" in results:
        data = results["servers"]
        for chunk in data["chunks"]:
            worst = min((p for p in data["results"] if p["chunk"] == chunk),
                        key=lambda p: p["of_limit"])  # fmt: skip
            found.append(target(
                f"slowest server ({worst['server']}), {size(chunk)} chunks "
                "/ in-memory generation", worst["of_limit"], ">=", 0.5))  # fmt: skip
    if "fanout" in results:
        f = results["fanout"]
        found.append(target(
            f"fan-out: fewest streams reached by a message / {f['subscribers']:,} "
            "subscribers", min(f["received"]) / f["subscribers"], ">=", 1))  # fmt: skip
        found.append(target(
            "fan-out: p99 publish-to-receipt latency (seconds)",
            f["p99"], "<=", 1))  # fmt: skip
    return found


def target_line(t):
    measured = (
        f"{t['measured']:,}"
        if isinstance(t["measured"], int)
        else (f"{t['measured']:.4g}")
    )
    verdict = "PASS" if t["passed"] else "FAIL"
    return f"{verdict}  {t['name']}: {measured} (target {t['op']} {t['limit']:g})"


# --- tables ----------------------------------------------------------------


def size(n):
    if n is None:
        return "n/a"
    if n >= 10 * MIB:
        return f"{n / MIB:,.0f} MiB"
    if n >= MIB:
        return f"{n / MIB:,.1f} MiB"
    return f"{n / 1024:,.0f} KiB"


def percent(share):
    return "n/a" if share is None else f"{share:.0%}"


def ms(seconds):
    return f"{seconds * 1000:,.1f}"


def table(header, rows):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def machine_table(meta):
    m = meta["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    load = ", ".join(f"{x:.2f}" for x in m["load_average_at_start"])
    return table(
        None,
        [
            ["Run", f"{m['date']}, {'quick' if meta['quick'] else 'full'} mode, "
                    f"{meta['duration_seconds']:.0f} s"],
            ["CPU", f"{m['cpu']}, {m['cores']} cores"],
            ["Memory", size(m["memory_bytes"])],
            ["System", m["os"]],
            ["Load average (1, 5, 15 min) at start", load],
            ["Load average at end", ", ".join(
                f"{x:.2f}" for x in meta.get("load_average_at_end", ()))
             or "not recorded"],
            *[[f"Re-measured: {', '.join(u['sections'])}",
               f"{u['date']}, {u['duration_seconds']:.0f} s, {u['cpu']}, "
               f"{u['os']}; load average "
               f"{', '.join(f'{x:.2f}' for x in u['load_average_at_start'])} at "
               f"start, {', '.join(f'{x:.2f}' for x in u['load_average_at_end'])}"
               " at end"] for u in meta.get("updates", ())],
            ["Python", m["python"]],
            ["Packages", f"{packages}, nginx {m['nginx']}"],
        ],
    )  # fmt: skip


def targets_table(results):
    rows = []
    for t in results["targets"]:
        value = t["measured"]
        measured = f"{value:,}" if isinstance(value, int) else f"{value:.3g}"
        rows.append([t["name"], measured, f"{t['op']} {t['limit']:g}",
                     "PASS" if t["passed"] else "FAIL"])  # fmt: skip
    return table(["Target", "Measured", "Required", "Result"], rows)


def memory_table(memory):
    rows = []
    for n in sorted({p["rows"] for p in memory["points"]}):
        s = pick(memory["points"], variant="streamed", rows=n)
        b = pick(memory["points"], variant="built", rows=n)
        rows.append([f"{n:,}", size(s["body_bytes"]), size(s["traced_peak"]),
                     size(s["rss_added"]), size(b["traced_peak"]),
                     size(b["rss_added"])])  # fmt: skip
    return table(
        ["Rows", "Body", "Streamed: traced peak", "Streamed: RSS added",
         "Built first: traced peak", "Built first: RSS added"], rows)  # fmt: skip


def ttfb_table(ttfb):
    rows = []
    for n in sorted({p["rows"] for p in ttfb["points"]}):
        s = pick(ttfb["points"], variant="streamed", rows=n)
        b = pick(ttfb["points"], variant="built", rows=n)
        rows.append([f"{n:,}", size(s["body_bytes"]), ms(s["ttfb"]), ms(s["total"]),
                     ms(b["ttfb"]), ms(b["total"])])  # fmt: skip
    return table(
        ["Rows", "Body", "Streamed: first byte (ms)", "Streamed: whole body (ms)",
         "Built first: first byte (ms)", "Built first: whole body (ms)"],
        rows)  # fmt: skip


def throughput_table(throughput):
    points = throughput["results"]
    limit = pick(points, server="none (in memory)", variant="batched")
    chunks = {"batched": "about 64 KiB", "unbatched": "one per row"}
    rows = [
        [p["server"], chunks[p["variant"]], f"{p['rows_per_second']:,.0f}",
         f"{p['rows'] / max(p['runs']):,.0f} to {p['rows'] / min(p['runs']):,.0f}",
         f"{p['rows_per_second'] / limit['rows_per_second']:.0%}"]
        for p in points
    ]  # fmt: skip
    return table(
        ["Server", "Chunks", "Rows per second (median)", "Slowest to fastest run",
         "Of in-memory"], rows)  # fmt: skip


def files_table(files):
    points = files["results"]
    nginx = pick(points, server="nginx")
    mib = files["bytes"] / MIB
    rows = [
        [p["server"], p["how"], f"{p['mib_per_second']:,.0f}",
         f"{mib / max(p['runs']):,.0f} to {mib / min(p['runs']):,.0f}",
         f"{p['mib_per_second'] / nginx['mib_per_second']:.0%}"]
        for p in points
    ]  # fmt: skip
    return table(
        ["Server", "How", "MiB per second (median)", "Slowest to fastest run",
         "Of nginx"], rows)  # fmt: skip


def concurrency_table(concurrency):
    """One column per server, one row per measure: ten columns would not
    fit a phone, nor the page at 1,366 px, without breaking words."""
    servers = concurrency["results"]
    measures = [
        ("Streams opened", lambda p: f"{p['opened']:,}"),
        ("Streams held", lambda p: f"{p['held']:,}"),
        ("Waiting, no byte", lambda p: f"{p['silent']:,}"),
        ("Worker RSS idle", lambda p: size(p["worker_rss_idle"])),
        ("Worker RSS holding them", lambda p: size(p["worker_rss_loaded"])),
        ("RSS / streams", lambda p: size(p["rss_per_stream"])),
        ("Added RSS / stream", lambda p: size(p["added_rss_per_stream"])),
        ("Worker CPU busy", lambda p: percent(p.get("worker_cpu_share"))),
        ("Client CPU busy", lambda p: percent(p.get("client_cpu_share"))),
    ]
    rows = [[name, *(show(p) for p in servers)] for name, show in measures]
    return table(["Measure", *(p["server"] for p in servers)], rows)


def database_table(database):
    labels = {"all": "ORM, .all()", "yield_per": "ORM, yield_per(1000)",
              "core": "Core, iterate the result"}  # fmt: skip
    rows = [
        [labels[p["mode"]], f"{p['rows']:,}", size(p["traced_peak"]),
         size(p["rss_added"]), f"{p['seconds']:.2f}"]
        for p in database["points"]
    ]  # fmt: skip
    return table(["How", "Rows", "Traced peak", "RSS added", "Seconds"], rows)


def servers_table(servers):
    rows = []
    for p in servers["results"]:
        runs = p["runs"]
        rows.append([p["server"], size(p["chunk"]), f"{p['best_rows_per_second']:,.0f}",
                     f"{p['rows'] / max(runs):,.0f} to {p['rows'] / min(runs):,.0f}",
                     f"{p['of_limit']:.0%}", ms(p["ttfb"])])  # fmt: skip
    return table(
        ["Server", "Chunks", "Rows per second (best run)", "Slowest to fastest run",
         "Of in-memory (best runs)", "First byte (ms, median)"], rows)  # fmt: skip


def fanout_table(f):
    split = " + ".join(map(str, f["per_instance"]))
    rows = [[f"{f['subscribers']:,}", f"{f['instances']} ({split})",
             f"{f['messages']}", f"{min(f['received']):,}", ms(f["p50"]), ms(f["p99"]),
             ms(f["max"])]]  # fmt: skip
    return table(
        ["Subscribers", "Instances (streams each)", "Messages",
         "Fewest streams a message reached", "p50 (ms)", "p99 (ms)", "Max (ms)"],
        rows)  # fmt: skip


TABLES = {
    "memory": memory_table,
    "ttfb": ttfb_table,
    "throughput": throughput_table,
    "files": files_table,
    "concurrency": concurrency_table,
    "database": database_table,
    "servers": servers_table,
    "fanout": fanout_table,
}


def tables(results):
    """Every CSV table the page includes, as {file name: text}."""
    out = {
        "machine.csv": machine_table(results["meta"]),
        "targets.csv": targets_table(results),
    }
    for name, render in TABLES.items():
        if name in results:
            out[f"{name}.csv"] = render(results[name])
    return out


# --- plots -----------------------------------------------------------------


# Readable on furo's light and dark themes: no fill behind the figure, mid-grey
# text and axes, colours that keep their contrast on white and on near-black.
GREY = "#808080"
COLOURS = ["#3b82f6", "#f97316", "#10b981", "#e11d48", "#a855f7"]
STYLE = {
    "svg.fonttype": "none",  # text stays text: small files, the page's font
    "svg.hashsalt": "flask-streaming-patterns",  # the same ids every run
    "font.family": "sans-serif",
    "font.size": 12,
    "axes.titlesize": 12,
    "axes.labelsize": 12,
    "legend.fontsize": 11,
    "figure.facecolor": "none",
    "axes.facecolor": "none",
    "savefig.facecolor": "none",
    "savefig.transparent": True,
    "text.color": GREY,
    "axes.labelcolor": GREY,
    "axes.edgecolor": GREY,
    "xtick.color": GREY,
    "ytick.color": GREY,
    "grid.color": GREY,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "axes.prop_cycle": f"cycler(color={COLOURS!r})",
    "axes.spines.top": False,
    "axes.spines.right": False,
}
WIDTH = 4.8  # inches: shown 390 px wide, the 12 pt text is about 13 px high


def rows_label(value, _position=None):
    if value >= 1e6:
        return f"{value / 1e6:g}M"
    return f"{value / 1e3:g}k" if value >= 1e3 else f"{value:g}"


def plots(results, out_dir):
    """Write the SVG plots; return their file names."""
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    written = []
    plt.rcParams.update(STYLE)

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(out_dir / name, format="svg", bbox_inches="tight",
                    metadata={"Date": None, "Creator": None})  # fmt: skip
        plt.close(fig)
        written.append(name)

    def log_rows(ax):
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=100))
        ax.xaxis.set_major_formatter(FuncFormatter(rows_label))
        ax.xaxis.set_minor_locator(LogLocator(base=10))
        ax.xaxis.set_minor_formatter(NullFormatter())

    def lines(ax, points, y, label, scale=1.0, style="-"):
        points = sorted(points, key=lambda p: p["rows"])
        ax.plot([p["rows"] for p in points], [p[y] * scale for p in points],
                style, marker="o", label=label)  # fmt: skip

    if "memory" in results:
        fig, ax = plt.subplots(figsize=(WIDTH, 3.4))
        for variant, label in (("built", "built first"), ("streamed", "streamed")):
            points = [p for p in results["memory"]["points"] if p["variant"] == variant]
            lines(ax, points, "traced_peak", label, 1 / MIB)
        log_rows(ax)
        ax.set(yscale="log", xlabel="rows", ylabel="peak traced MiB",
               title="CSV export: peak memory")  # fmt: skip
        ax.legend(loc="upper left")
        save(fig, "memory.svg")

    if "ttfb" in results:
        # Two panels: first byte and whole body. On one log axis the streamed
        # and built lines coincide where the body is one chunk and hide each
        # other; side by side each panel shows its own pair.
        fig, axes = plt.subplots(1, 2, figsize=(WIDTH, 3.4), sharey=True)
        for ax, y, title in zip(axes, ("ttfb", "total"),
                                ("first byte", "whole body"), strict=True):  # fmt: skip
            for variant, label in (("built", "built first"), ("streamed", "streamed")):
                points = [p for p in results["ttfb"]["points"]
                          if p["variant"] == variant]  # fmt: skip
                lines(ax, points, y, label, 1000, "-" if variant == "built" else "--")
            log_rows(ax)
            ax.set(yscale="log", xlabel="rows", title=title)
            ax.grid(True, which="major")
        axes[0].set_ylabel("milliseconds")
        axes[0].legend(loc="upper left")
        save(fig, "ttfb.svg")

    def bars(name, labels, values, xlabel, title, log=False, line=None):
        fig, ax = plt.subplots(figsize=(WIDTH, 0.9 + 0.42 * len(labels)))
        ax.barh(labels[::-1], values[::-1], color=COLOURS[0])
        ax.set(xlabel=xlabel, title=title)
        ax.xaxis.set_major_locator(plt.MaxNLocator(4))
        if log:
            ax.set_xscale("log")
        if line is not None:
            ax.axvline(line, color=COLOURS[1], linestyle="--")
        save(fig, name)

    if "throughput" in results:
        points = results["throughput"]["results"]
        chunk = {"batched": "64 KiB", "unbatched": "per row"}
        server = {"none (in memory)": "in memory", "gunicorn gthread": "gunicorn",
                  "Werkzeug (flask run)": "Werkzeug"}  # fmt: skip
        bars("throughput.svg",
             [f"{server.get(p['server'], p['server'])}, {chunk[p['variant']]}"
              for p in points],
             [p["rows_per_second"] / 1000 for p in points],
             "thousand rows per second", "CSV rows per second")  # fmt: skip
    if "files" in results:
        points = results["files"]["results"]
        bars("files.svg", [f"{p['server'].split()[0]}, {p['how'].split(' (')[0]}"
                           for p in points],
             [p["mib_per_second"] for p in points], "MiB per second",
             f"A {results['files']['bytes'] // MIB} MiB file")  # fmt: skip
    if "servers" in results:
        data = results["servers"]
        names = list(dict.fromkeys(p["server"] for p in data["results"]))
        fig, ax = plt.subplots(figsize=(WIDTH, 1.2 + 0.5 * len(names)))
        height = 0.8 / len(data["chunks"])
        for i, chunk in enumerate(data["chunks"]):
            shares = [pick(data["results"], server=n, chunk=chunk)["of_limit"]
                      for n in names]  # fmt: skip
            ax.barh([k + i * height for k in range(len(names))][::-1], shares,
                    height, label=f"{size(chunk)} chunks")  # fmt: skip
        short = [re.sub(r" \(.*\)| threaded| WsgiToAsgi", "", n)
                 .replace(" + ", "+") for n in names]  # fmt: skip
        ax.set_yticks([k + height * (len(data["chunks"]) - 1) / 2
                       for k in range(len(names))][::-1], short)  # fmt: skip
        ax.axvline(0.5, color=GREY, linestyle=":")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0%}"))
        ax.xaxis.set_major_locator(plt.MaxNLocator(4))
        ax.set(xlabel="share of the in-memory limit")
        ax.legend(loc="lower center", bbox_to_anchor=(0.4, 1.0), ncol=2)
        save(fig, "servers.svg")
    if "database" in results:
        points = results["database"]["points"]
        bars("database.svg", [p["mode"] for p in points],
             [p["traced_peak"] / MIB for p in points],
             "peak traced MiB (log scale)",
             f"{points[0]['rows']:,} rows from SQLite", log=True)  # fmt: skip
    return written
