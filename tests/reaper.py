"""No process left behind.

The outermost pytest marks its environment with a run id; every worker and
every server, proxy, store, worker or browser a test starts inherits it,
even one that outlives its parent and is adopted by init. When the session
ends, any process still carrying the id was left behind by a test: it is
named, killed, and the run fails.
"""

import pytest

RUN_ID = "FSP_TEST_RUN"


def mark_this_run(config):
    import os
    import uuid

    if RUN_ID in os.environ:  # a pytest run by a test: the outer run checks
        return
    os.environ[RUN_ID] = config._fsp_run = uuid.uuid4().hex


def processes_of_this_run(run):
    import os

    import psutil

    me = os.getpid()
    found = []
    for proc in psutil.process_iter(["pid", "ppid", "status"]):
        info = proc.info
        if info["pid"] == me or info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            env = proc.environ()
        except (psutil.Error, OSError):
            continue
        if env.get(RUN_ID) != run:
            continue
        if info["ppid"] == me and "PYTEST_XDIST_WORKER" in env:
            continue  # one of our xdist workers, still exiting
        found.append(proc)
    return found


def pytest_sessionfinish(session):
    run = getattr(session.config, "_fsp_run", None)
    if run is None:
        return
    import time

    import psutil

    deadline = time.monotonic() + 10  # a server still shutting down may end
    while (left := processes_of_this_run(run)) and time.monotonic() < deadline:
        time.sleep(0.5)
    if not left:
        return
    names = []
    for proc in left:
        try:
            names.append(f"pid {proc.pid}: {' '.join(proc.cmdline())[:160]}")
            proc.kill()
        except psutil.Error:
            continue
    session.config._fsp_left = names
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    for line in getattr(terminalreporter.config, "_fsp_left", []):
        terminalreporter.write_line(f"left behind by a test, killed: {line}", red=True)
