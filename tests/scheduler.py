"""The pytest-xdist scheduler of ``make test``: which tests run together, and
which start first.

``make test`` runs ``pytest -n N --dist loadscope`` with this scheduler: the
tests of one file go to one worker and run there in order (a page's examples
share one namespace, and a module's fixtures start its servers once), except
the tests whose id matches SPREAD, which each go where a worker is free (the
walks over the built site, cut into parts). Scopes start longest first, by
the durations the last full run recorded in ``tests/durations.json`` (a scope
not recorded yet goes first too: it may be long), so that the longest do not
begin last and hold the run up. ``make test`` records them again
(``FSP_RECORD_DURATIONS=1``); nothing is listed by hand. (xdist's own
``loadgroup`` does not work with pytest 9.2: it renames ``item._nodeid``,
which pytest 9.2 no longer reads, so every test became a group of its own.)

``FSP_SHARD=i/N`` runs the i-th of N shards of about equal recorded time:
CI's parallel jobs, whose coverage one more job combines.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from pathlib import Path

DURATIONS = Path(__file__).resolve().parent / "durations.json"
SPREAD = re.compile(r"^tests/site_checks/test_built_site_browser\.py::.*\[\d+of\d+\]$")


def scope_of(nodeid: str) -> str:
    return nodeid if SPREAD.match(nodeid) else nodeid.split("::", 1)[0]


def recorded() -> dict[str, float]:
    try:
        return json.loads(DURATIONS.read_text())
    except (OSError, ValueError):
        return {}


def shards(scopes: list[str], count: int) -> list[list[str]]:
    """``scopes`` in ``count`` shards of about equal recorded time: longest
    first, each to the shard with the least so far (a scope not recorded
    yet counts as the mean). The same list and count give the same shards on
    every machine."""
    durations = recorded()
    mean = sum(durations.values()) / len(durations) if durations else 1.0
    load = [0.0] * count
    out: list[list[str]] = [[] for _ in range(count)]
    for scope in sorted(scopes, key=lambda s: (-durations.get(s, mean), s)):
        least = load.index(min(load))
        out[least].append(scope)
        load[least] += durations.get(scope, mean)
    return out


def pytest_collection_modifyitems(config, items):
    """``FSP_SHARD=2/3`` keeps the second of three shards (CI's parallel jobs:
    .github/workflows/test.yml); a scope's tests stay together."""
    shard = os.environ.get("FSP_SHARD")
    if not shard:
        return
    index, count = (int(n) for n in shard.split("/"))
    scopes = sorted({scope_of(item.nodeid) for item in items})
    keep = set(shards(scopes, count)[index - 1])
    kept = [item for item in items if scope_of(item.nodeid) in keep]
    config.hook.pytest_deselected(items=[i for i in items if i not in kept])
    items[:] = kept


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadscope":
        return None  # any other --dist: xdist's own
    from xdist.scheduler import LoadScopeScheduling

    durations = recorded()
    unknown = max(durations.values(), default=0.0) + 1  # new: first

    class Scheduling(LoadScopeScheduling):
        ordered = False

        def _split_scope(self, nodeid):
            return scope_of(nodeid)

        def _assign_work_unit(self, node):
            if not self.ordered:  # the queue is complete by the first call
                self.ordered = True
                order = sorted(self.workqueue, key=lambda s: durations.get(s, unknown))
                for scope in order:  # each to the front: longest ends first
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return Scheduling(config, log)


_spent: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report):
    """Setup, call and teardown of every test (under xdist the controller
    sees the workers' reports too)."""
    _spent[scope_of(report.nodeid)] += report.duration


def pytest_sessionfinish(session, exitstatus):
    """After a run of make test (FSP_RECORD_DURATIONS=1), keep each scope's
    time, rounded, for the next run's order."""
    if os.environ.get("FSP_RECORD_DURATIONS") != "1" or _spent == {}:
        return
    if hasattr(session.config, "workerinput"):  # a worker: the controller writes
        return
    root = DURATIONS.parent.parent
    merged = {  # a partial run updates what it ran; gone files drop out
        scope: spent
        for scope, spent in {**recorded(), **_spent}.items()
        if (root / scope.split("::", 1)[0]).exists()
    }
    ordered = dict(sorted(merged.items(), key=lambda kv: (-kv[1], kv[0])))
    DURATIONS.write_text(
        json.dumps({k: round(v, 1) for k, v in ordered.items()}, indent=0) + "\n"
    )
