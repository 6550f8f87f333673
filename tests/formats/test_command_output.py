"""formats/command_output, in process: the allow-list, the records, buffering
in the child, and the command's whole process group ended when the body is
closed."""

import json
import os
import signal
import subprocess
import sys
import tracemalloc

import psutil
import pytest
from flask import Flask, Response

from snippets import command_output as recipe
from snippets import command_output_full as command_output
from snippets.command_output_full import (
    COMMANDS,
    MAX_LINE,
    MAX_RUNNING,
    TREE,
    Lines,
    app,
    output,
    start,
    stop,
)
from tests.basics.test_csv_export import run_recipe_alone
from tests.servers import require_binary, wait_until


def running(pid):
    """True while ``pid`` is a live process. A killed orphan can stay a zombie
    (PID 1 here does not reap): it runs nothing and holds nothing, so it counts
    as gone."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def blocked_writing_a_full_pipe(pid):
    """True while ``pid`` waits in write() for room in a pipe."""
    with open(f"/proc/{pid}/wchan") as wchan:
        return "pipe_write" in wchan.read()


def children_running(code):
    """This process's descendants whose command line contains ``code``."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if code in " ".join(proc.cmdline()) and running(proc.pid):
                found.append(proc.pid)
        except psutil.NoSuchProcess:
            pass
    return found


def records(body):
    return [json.loads(line) for line in body.splitlines()]


def read_records_until(response, predicate):
    """Iterate the streamed body until a record matches; return all so far."""
    seen = []
    for chunk in response.response:
        seen += records(chunk)
        if any(predicate(record) for record in seen):
            return seen
    raise AssertionError(f"stream ended first: {seen}")


# --- the allow-list and the request ------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/run/rm", 404, b"no command named &#39;rm&#39;"),
        ("/run/sh", 404, b"no command named"),
        ("/run/count;ls", 404, b"no command named"),
        ("/run/count?n=0", 400, b"n must be a whole number from 1 to 10,000,000"),
        ("/run/count?n=10000001", 400, b"n must be a whole number"),
        ("/run/count?n=-1", 400, b"n must be a whole number"),
        ("/run/count?n=3;rm%20-rf%20/", 400, b"n must be a whole number"),
        ("/run/count?n=$(id)", 400, b"n must be a whole number"),
        ("/run/count?n=" + "9" * 5000, 400, b"n must be a whole number"),
        ("/run/count?n=\u0663", 400, b"n must be a whole number"),
        ("/run/count?n=", 400, b"n must be a whole number"),
    ],
)
def test_bad_request_is_refused_before_any_command_starts(path, status, message):
    before = set(p.pid for p in psutil.Process().children(recursive=True))
    response = app.test_client().get(path)
    assert response.status_code == status
    assert message in response.data
    after = set(p.pid for p in psutil.Process().children(recursive=True))
    assert after <= before


def test_argv_is_passed_as_a_list_never_parsed_by_a_shell(tmp_path):
    marker = tmp_path / "made-by-a-shell"
    proc = start(
        [sys.executable, "-c", "import sys; print(sys.argv[1])", f"; touch {marker}"]
    )
    lines = [line for batch in output(proc) for line in batch]
    stop(proc)
    assert lines == [("stdout", f"; touch {marker}")]
    assert not marker.exists()


def test_command_gets_none_of_the_apps_environment(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "do not leak")
    monkeypatch.setenv("DATABASE_URL", "postgresql://user:pw@db/app")
    proc = start([sys.executable, "-c", "import os; print(sorted(os.environ))"])
    lines = [line for batch in output(proc) for line in batch]
    stop(proc)
    assert lines == [("stdout", "['LANG', 'PATH', 'PYTHONUNBUFFERED']")]


# --- records: stdout, stderr and the exit status in-band ---------------------


def test_every_line_and_the_exit_status_arrive_in_order():
    body = app.test_client().get("/run/count?n=2000").data
    got = records(body)
    assert got[:-1] == [{"stdout": f"line {i}"} for i in range(1, 2001)]
    assert got[-1] == {"exit": 0, "timed_out": False}


def test_stderr_and_a_failed_exit_status_are_records():
    got = records(app.test_client().get("/run/fail?n=7").data)
    assert got == [
        {"stdout": "checking 7"},
        {"stderr": "disk full"},
        {"exit": 1, "timed_out": False},
    ]


def test_a_body_without_the_exit_record_is_detectably_cut():
    body = app.test_client().get("/run/count?n=5").data
    cut = body[: body.rindex(b'{"exit"')]
    assert "exit" in records(body)[-1]
    assert "exit" not in records(cut)[-1]


def test_a_last_line_without_a_newline_is_not_lost():
    proc = start([sys.executable, "-c", "import sys; sys.stdout.write('a\\nb')"])
    lines = [line for batch in output(proc) for line in batch]
    stop(proc)
    assert lines == [("stdout", "a"), ("stdout", "b")]


def test_invalid_utf8_is_replaced_not_a_crash():
    code = "import sys; sys.stdout.buffer.write(b'caf\\xe9\\n')"
    proc = start([sys.executable, "-c", code])
    lines = [line for batch in output(proc) for line in batch]
    stop(proc)
    assert lines == [("stdout", "caf\ufffd")]


def test_lines_are_streamed_while_the_command_still_runs():
    response = app.test_client().get("/run/tree?n=100")
    seen = read_records_until(response, lambda r: r.get("stdout") == "tick 1")
    command, worker = map(int, seen[0]["stdout"].split()[1:])
    assert running(command) and running(worker)  # the first lines came first
    response.close()


# --- the client leaves: the command and its children are ended ---------------


def test_closing_the_body_kills_the_command_and_its_children(caplog):
    response = app.test_client().get("/run/tree?n=100")
    seen = read_records_until(response, lambda r: r.get("stdout") == "worker ready")
    command, worker = map(int, seen[0]["stdout"].split()[1:])
    assert psutil.Process(worker).ppid() == command  # the command's own child
    with caplog.at_level("INFO", logger=app.logger.name):
        response.close()  # what a server does when the client has gone
    # The worker ignores SIGTERM: the SIGKILL to the group, sent once the
    # command itself has exited, ends it.
    assert not running(command)
    assert wait_until(lambda: not running(worker), 10)
    assert "cleaned up tree: exit -15" in caplog.text


def test_head_request_starts_nothing():
    """Flask answers HEAD for every GET route with the headers and no body:
    the generator never runs, so the command is never started."""
    response = app.test_client().head("/run/tree?n=100")
    assert response.status_code == 200
    assert response.data == b""
    assert children_running(TREE) == []
    response.close()  # as a server does: the command's slot is free again


def test_popen_in_the_view_leaks_the_command_on_head():
    """The same stream, with the process started in the view instead: a HEAD
    request starts it, never iterates the body, and its cleanup never runs."""
    leaky = Flask(__name__)
    code = "import time; print('leaky'); time.sleep(600)"

    @leaky.get("/run")
    def run():
        proc = start([sys.executable, "-c", code])

        def stream():
            try:
                yield from (json.dumps(lines) + "\n" for lines in output(proc))
            finally:
                stop(proc)  # never reached: that is the point

        return Response(stream())

    response = leaky.test_client().head("/run")
    response.close()
    try:
        assert response.status_code == 200
        # Still running, with no one to stop it. (Popen returns once the child
        # has begun exec(); its /proc cmdline may read empty for a moment: 1 run
        # in 400 here, under load.)
        assert wait_until(lambda: len(children_running(code)) == 1, 10)
    finally:
        for pid in children_running(code):
            os.kill(pid, signal.SIGKILL)
            psutil.Process(pid).wait(10)


def test_stop_of_a_group_that_already_ended_is_harmless():
    proc = start(["true"])
    proc.wait()
    stop(proc)
    stop(proc)
    assert proc.returncode == 0


# --- buffering in the child ---------------------------------------------------

PAUSE = (
    "import sys\n"
    "print('first line')\n"
    "print('paused', file=sys.stderr)\n"  # stderr is line-buffered (3.9+)
    "sys.stdin.readline()\n"
)


def stdout_before_pause(argv, env=None, feed=b""):
    """Start ``argv`` with stdout and stderr on pipes; read until its first
    stderr line, which it writes *after* its first stdout line; return the
    stdout lines that had reached the pipe by then."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": os.defpath, **(env or {})},
    )
    proc.stdin.write(feed)
    proc.stdin.flush()
    seen = []
    lines = output(proc)
    for batch in lines:
        seen += batch
        if any(name == "stderr" for name, _ in seen):
            break
    proc.stdin.close()  # lets the command end
    rest = [line for batch in lines for line in batch]
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    first = [line for name, line in seen if name == "stdout"]
    return first, [line for name, line in rest if name == "stdout"]


PYTHON_CASES = {
    "python, stdout to a pipe": ([sys.executable, "-c", PAUSE], {}, []),
    "python -u": ([sys.executable, "-u", "-c", PAUSE], {}, ["first line"]),
    "PYTHONUNBUFFERED=1": (
        [sys.executable, "-c", PAUSE],
        {"PYTHONUNBUFFERED": "1"},
        ["first line"],
    ),
    "print(flush=True)": (
        [sys.executable, "-c", PAUSE.replace("line')", "line', flush=True)")],
        {},
        ["first line"],
    ),
    "line_buffering=True": (
        [
            sys.executable,
            "-c",
            "import sys; sys.stdout.reconfigure(line_buffering=True)\n" + PAUSE,
        ],
        {},
        ["first line"],
    ),
}


@pytest.mark.parametrize("case", PYTHON_CASES)
def test_python_child_buffers_stdout_to_a_pipe_unless_told(case):
    argv, env, expected = PYTHON_CASES[case]
    first, rest = stdout_before_pause(argv, env)
    assert first == expected
    assert first + rest == ["first line"]  # a buffered line comes at exit


SED = ["-n", "p;w /dev/stderr"]  # each input line to stdout, then to stderr


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (["sed"], []),
        (["sed", "-u"], ["first line"]),
        (["stdbuf", "-oL", "sed"], ["first line"]),
    ],
    ids=["sed", "sed -u", "stdbuf -oL sed"],
)
def test_c_program_buffers_stdout_to_a_pipe_unless_told(prefix, expected):
    require_binary(prefix[0])
    first, rest = stdout_before_pause([*prefix, *SED], feed=b"first line\n")
    assert first == expected
    assert first + rest == ["first line"]


def test_start_makes_python_children_unbuffered_without_u():
    """``start`` sets PYTHONUNBUFFERED, so a Python program started without
    ``-u`` (or by the command) writes each line at once."""
    proc = start([sys.executable, "-c", "print('one'); import time; time.sleep(600)"])
    try:
        assert next(output(proc)) == [("stdout", "one")]
    finally:
        stop(proc)


def test_every_command_is_a_list_with_no_shell():
    for argv, seconds in COMMANDS.values():
        assert isinstance(argv, list) and argv[0] not in ("sh", "bash")
        assert 0 < seconds <= 30
    assert command_output.MAX_N == 10_000_000


def test_a_flood_on_stderr_does_not_hold_stdout_back():
    code = "import sys; sys.stderr.write('e' * 1_000_000 + '\\n'); print('out')"
    proc = start([sys.executable, "-c", code])
    lines = [line for batch in output(proc) for line in batch]
    stop(proc)
    assert ("stdout", "out") in lines
    # A line longer than MAX_LINE comes in pieces of MAX_LINE bytes.
    errors = [line for name, line in lines if name == "stderr"]
    assert "".join(errors) == "e" * 1_000_000
    assert {len(line) for line in errors[:-1]} == {MAX_LINE}


def test_output_waits_for_children_that_hold_the_pipe():
    """The command exits at once; its child, which inherited stdout, writes
    later. The pipe closes, and the stream ends, only after the child."""
    late = "import time; time.sleep(0.5); print('late')"
    code = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {late!r}])"
    proc = start([sys.executable, "-c", code])
    lines = [line for batch in output(proc) for line in batch]
    stop(proc)
    assert lines == [("stdout", "late")]


def test_killing_only_the_command_leaves_its_child_running():
    proc = start([sys.executable, "-c", TREE, "100"])
    lines = output(proc)
    first = next(batch for batch in lines if batch)
    worker = int(first[0][1].split()[2])
    proc.kill()  # the command alone, not its group
    proc.wait()
    try:
        assert running(worker)
    finally:
        stop(proc)  # the group: the worker too
    assert wait_until(lambda: not running(worker), 10)
    for pipe in (proc.stdout, proc.stderr):
        pipe.close()


def test_coreutils_timeout_ends_a_command_on_its_own():
    require_binary("timeout")
    proc = start(["timeout", "1", "sleep", "600"])
    assert proc.wait(10) == 124  # timeout's status for "the time ran out"
    stop(proc)


COUNT_THEN_PAUSE = (
    "import sys\n"
    "for i in range(1000): print(i)\n"
    "print('paused', file=sys.stderr)\n"
    "sys.stdin.readline()\n"
)


@pytest.mark.parametrize(
    ("flag", "at_least", "at_most"),
    [("-u", 2000, None), ("", 0, 5)],
    ids=["-u", "buffered"],
)
def test_unbuffered_output_costs_a_write_per_line(flag, at_least, at_most):
    """Unbuffered, print() makes two write() calls per line (the text, then
    the newline); buffered, the 1,000 lines are one write at exit."""
    argv = [sys.executable, *filter(None, [flag]), "-c", COUNT_THEN_PAUSE]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": os.defpath},  # this environment may set PYTHONUNBUFFERED
    )
    lines = output(proc)
    for batch in lines:
        if ("stderr", "paused") in batch:
            break
    writes = psutil.Process(proc.pid).io_counters().write_count
    proc.stdin.close()
    rest = [line for batch in lines for line in batch]
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    assert writes >= at_least
    assert at_most is None or writes <= at_most
    assert rest == [] if flag else len(rest) == 1000


SPLIT = """import os, subprocess, sys
class Tick:
    def __str__(self):  # print() asks for this only after writing "worker "
        subprocess.run([sys.executable, "-c", "import os; os.write(1, b'tick 1\\\\n')"])
        return "ready"
print("worker", Tick())
os.write(1, f"worker {Tick()}\\n".encode())
"""


def test_a_line_printed_in_pieces_can_be_split_by_another_process():
    """Unbuffered, print("worker", x) writes "worker", " ", str(x) and "\\n"
    one write() at a time: a process sharing the pipe that writes between
    them (here, while str(x) runs) lands inside the line. The same line built
    first and written with one os.write() arrives whole."""
    proc = start([sys.executable, "-c", SPLIT])  # start: unbuffered, no -u
    lines = [line for batch in output(proc) for line in batch]
    stop(proc)
    assert lines == [
        ("stdout", "worker tick 1"),
        ("stdout", "ready"),
        ("stdout", "tick 1"),
        ("stdout", "worker ready"),
    ]


WHOLE_LINES = """import os, sys
line = sys.argv[1].encode() * 99 + b"\\n"
for _ in range(20_000): os.write(1, line)
"""
TWO_WRITERS = f"""import subprocess, sys
writers = [subprocess.Popen([sys.executable, "-c", {WHOLE_LINES!r}, name])
    for name in "ab"]
for writer in writers: writer.wait()
"""


def test_lines_written_whole_by_two_processes_arrive_whole():
    """Two children of the command write 100-byte lines into its pipe, one
    os.write() per line. Nothing reads until the pipe (64 KiB) is full and
    both wait in write() at once; then every line of both arrives whole (a
    pipe write of up to PIPE_BUF bytes, 4,096 on Linux, is not split)."""
    proc = start([sys.executable, "-c", TWO_WRITERS])

    def writers_blocked_on_the_full_pipe():
        writers = psutil.Process(proc.pid).children()
        return len(writers) == 2 and all(
            blocked_writing_a_full_pipe(writer.pid) for writer in writers
        )

    try:
        assert wait_until(writers_blocked_on_the_full_pipe, 20)
        lines = [text for batch in output(proc) for _, text in batch]
    finally:
        stop(proc)
    assert proc.returncode == 0
    assert lines.count("a" * 99) == lines.count("b" * 99) == 20_000
    assert len(lines) == 40_000


# --- bounded work: processes at once, bytes held per pipe ---------------------


def all_slots_free(cap=MAX_RUNNING, timeout=30):
    """Wait until no stream holds a slot (an earlier test's stream may still
    be cleaning up), by taking every slot, then giving them back."""
    taken = [command_output.running.acquire(timeout=timeout) for _ in range(cap)]
    for _ in range(sum(taken)):
        command_output.running.release()
    return all(taken)


def yes_processes():
    me = psutil.Process()
    return [p for p in me.children(recursive=True) if p.name() == "yes"]


def test_twenty_requests_run_at_most_max_running_commands(monkeypatch):
    """Past MAX_RUNNING commands, a request is a 503 with Retry-After, before
    any process starts; a slot is free again once its response is closed."""
    monkeypatch.setitem(COMMANDS, "yes", (["yes"], 60))  # not its own 3 s
    assert all_slots_free()
    client = app.test_client()
    responses, refused, most = [], [], 0
    for _ in range(20):
        response = client.get("/run/yes?n=1")
        if response.status_code == 503:
            refused.append(response)
            continue
        responses.append(response)
        assert next(iter(response.response))  # the command runs: it wrote
        most = max(most, len(yes_processes()))
    assert len(responses) == MAX_RUNNING and most == MAX_RUNNING
    assert len(refused) == 20 - MAX_RUNNING
    assert all(r.headers["Retry-After"] == "5" for r in refused)
    assert b"too many commands are running" in refused[0].data
    for response in responses:
        response.close()
    assert wait_until(lambda: yes_processes() == [], 10)
    again = client.get("/run/count?n=1")
    assert again.status_code == 200 and b'"exit": 0' in again.data


def test_head_requests_start_nothing_and_keep_no_slot():
    client = app.test_client()
    for _ in range(MAX_RUNNING + 2):
        response = client.head("/run/yes?n=1")
        assert response.status_code == 200 and response.data == b""
        response.close()
    assert yes_processes() == []
    assert client.get("/run/count?n=1").status_code == 200


def test_a_progress_bar_redrawn_with_cr_is_one_record_per_update():
    body = app.test_client().get("/run/progress?n=3").get_data(as_text=True)
    records = [json.loads(line) for line in body.splitlines()]
    assert records == [
        {"stdout": ""},  # the "\r" that starts the first update ends an empty line
        {"stdout": "1 of 3"},
        {"stdout": "2 of 3"},
        {"stdout": "3 of 3"},
        {"exit": 0, "timed_out": False},
    ]


@pytest.mark.parametrize(
    ("reads", "lines"),
    [
        ([b"a\r\nb\r\n"], [b"a", b"b"]),
        ([b"a\r", b"\nb\n"], [b"a", b"b"]),  # "\r\n" cut between two reads
        ([b"a\r", b"\r\n"], [b"a", b""]),
        ([b"1%\r2%\r", b"3%\n"], [b"1%", b"2%", b"3%"]),
        ([b"a\n\nb"], [b"a", b"", b"b"]),
    ],
)
def test_crlf_cr_and_lf_each_end_one_line(reads, lines):
    split = Lines()
    got = [line for data in reads for line in split.feed(data)]
    assert got + split.end() == lines


def test_output_without_a_newline_is_sent_in_pieces_with_bounded_memory():
    """8 MB with no line end: without MAX_LINE the pending line grew to the
    whole output (and was copied on every read)."""
    size = 8 * 1024 * 1024
    code = f"import sys; sys.stdout.write('.' * {size})"
    proc = start([sys.executable, "-c", code])
    tracemalloc.start()
    try:
        lengths = [len(line) for batch in output(proc) for _, line in batch]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        stop(proc)
    assert sum(lengths) == size and max(lengths) == MAX_LINE
    print(f"8 MiB without a newline: peak {peak / 1024:.0f} KiB")
    assert peak < 1024 * 1024


# --- the recipe: snippets/command_output.py ----------------------------------


def test_the_recipe_alone_runs_as_a_file(tmp_path):
    """The recipe, pasted alone into app.py: a streamed NDJSON 200, each
    line of the command a record, then its exit status."""
    check = (
        "import json\n"
        "from app import app\n"
        "response = app.test_client().get('/run/count')\n"
        "assert response.status_code == 200 and response.is_streamed\n"
        "assert response.mimetype == 'application/x-ndjson'\n"
        "records = [json.loads(r) for r in response.data.splitlines()]\n"
        "assert records == [*({'line': str(i)} for i in range(1, 6)), {'exit': 0}]\n"
        "response.close()\n"
    )
    run_recipe_alone(tmp_path, "command_output", check)


@pytest.fixture
def recipe_commands(monkeypatch):
    """Commands for the recipe's allow-list: a line with every line end and
    100,000 bytes with none; a process tree that runs until it is killed."""
    progress = 'import sys; sys.stdout.write("a\\rb\\r\\nc\\n" + "x" * 100_000)'
    commands = {
        "ends": [sys.executable, "-c", progress],
        "tree": [sys.executable, "-u", "-c", TREE, "600"],
    }
    monkeypatch.setattr(recipe, "COMMANDS", commands)


def test_recipe_lines_end_at_any_line_end_and_are_cut_at_max_line(recipe_commands):
    response = recipe.app.test_client().get("/run/ends")
    records = [json.loads(r) for r in response.get_data(as_text=True).splitlines()]
    response.close()
    lines = [r["line"] for r in records[:-1]]
    assert lines[:3] == ["a", "b", "c"] and records[-1] == {"exit": 0}
    assert [len(line) for line in lines[3:]] == [recipe.MAX_LINE, 100_000 - 65536]


def test_recipe_kills_the_command_and_its_child_when_the_body_is_closed(
    recipe_commands,
):
    response = recipe.app.test_client().get("/run/tree")
    chunks = iter(response.response)
    first = json.loads(next(chunks))["line"]
    command, worker = map(int, first.split()[1:])
    assert running(command) and running(worker)
    response.close()
    assert wait_until(lambda: not running(command) and not running(worker), 10)


def test_recipe_runs_at_most_eight_commands_and_frees_a_slot_on_close(
    recipe_commands,
):
    client = recipe.app.test_client()
    responses = [client.get("/run/tree") for _ in range(8)]
    for response in responses:
        next(iter(response.response))  # each command has started
    refused = client.get("/run/tree")
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    refused.close()
    for response in responses:
        response.close()
    again = client.get("/run/ends")
    assert again.status_code == 200
    again.close()
    head = client.head("/run/ends")
    assert head.status_code == 200 and head.data == b""
    head.close()


def test_recipe_refuses_a_command_not_in_the_list():
    response = recipe.app.test_client().get("/run/rm")
    assert response.status_code == 404
    assert b"no command named &#39;rm&#39;" in response.data
