"""CI's parallel jobs (FSP_SHARD=i/N, tests/scheduler.py) run every test
exactly once between them, in shards of about equal recorded time."""

from tests import scheduler


def test_shards_cover_every_scope_once(monkeypatch):
    scopes = [f"tests/part/test_{n}.py" for n in range(20)]
    monkeypatch.setattr(scheduler, "recorded", lambda: {scopes[0]: 100.0})
    parts = scheduler.shards(scopes, 3)
    assert sorted(s for part in parts for s in part) == sorted(scopes)
    assert parts[0][0] == scopes[0]  # the longest starts a shard of its own


def test_shards_balance_recorded_time(monkeypatch):
    times = {f"t{n}.py": float(n) for n in range(1, 31)}  # 465 s in all
    monkeypatch.setattr(scheduler, "recorded", lambda: times)
    loads = [sum(times[s] for s in part) for part in scheduler.shards(list(times), 3)]
    assert max(loads) - min(loads) <= max(times.values())


def test_the_same_scopes_give_the_same_shards():
    scopes = ["tests/a.py", "docs/b.rst", "tests/c.py"]
    assert scheduler.shards(scopes, 2) == scheduler.shards(list(reversed(scopes)), 2)
