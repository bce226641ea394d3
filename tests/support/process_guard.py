"""Pytest plugin: a test that starts processes says so, and stops what it started.

The suite has two tiers. Tests marked ``processes`` start child processes (``subprocess``,
``python -m ...``, the local backend's process runtime, mosquitto) and run in ``make test``;
the rest run in ``make test-fast`` as well and must stay in-process. This plugin keeps the
marker honest instead of trusting it:

- an audit hook (``sys.addaudithook``) records every process started while a test is set up,
  run or torn down, whichever thread starts it; an unmarked test that started one fails in its
  teardown, naming the marker and the command;
- after teardown, any child process started during the test and still running (other than one
  owned by a module- or session-scoped fixture, or started by such a process) is stopped, and
  the test fails naming it.

Processes started by a shared fixture count for the first test that sets the fixture up; mark
every test that uses such a fixture (a module-level ``pytestmark`` is the usual way).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Generator
from typing import Any

import psutil
import pytest

MARKER = "processes"
_SPAWN_EVENTS = frozenset({"subprocess.Popen", "os.posix_spawn", "os.fork", "os.forkpty", "os.system", "os.spawn"})
_GRACE_S = 5.0

_recording: list[list[str]] = []  # one list per test being run (more than one under pytester)
_hooked = False
_shared: set[tuple[int, float]] = set()  # children started by module- or session-scoped fixtures
_before_key = pytest.StashKey[set[tuple[int, float]]]()
_spawned_key = pytest.StashKey[list[str]]()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _recording or event not in _SPAWN_EVENTS:
        return
    if event == "subprocess.Popen":
        what = " ".join(str(a) for a in (args[1] or [args[0]]))
    elif event in ("os.posix_spawn", "os.spawn"):
        what = " ".join(str(a) for a in args[-2])
    elif event == "os.system":
        what = str(args[0])
    else:
        what = event
    for spawned in _recording:
        spawned.append(what[:160])


def _children() -> dict[tuple[int, float], psutil.Process]:
    found = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                found[(proc.pid, proc.create_time())] = proc
        except psutil.Error:
            continue
    return found


def _still_running(procs: dict[tuple[int, float], psutil.Process]) -> dict[tuple[int, float], psutil.Process]:
    deadline = time.monotonic() + _GRACE_S
    while procs and time.monotonic() < deadline:
        time.sleep(0.05)
        procs = {key: p for key, p in procs.items() if key in _children()}
    return procs


def _of_shared(proc: psutil.Process) -> bool:
    """Whether ``proc`` descends from a shared fixture's process (a browser's renderer for a new tab, say)."""
    try:
        return any((p.pid, p.create_time()) in _shared for p in proc.parents())
    except psutil.Error:
        return False


def _describe(proc: psutil.Process) -> str:
    try:
        return f"pid {proc.pid}: {' '.join(proc.cmdline())[:160]}"
    except psutil.Error:
        return f"pid {proc.pid}"


def pytest_configure(config: pytest.Config) -> None:
    global _hooked
    if not _hooked:  # audit hooks cannot be removed: one for the life of the interpreter
        sys.addaudithook(_audit)
        _hooked = True


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    item.stash[_before_key] = set(_children())
    spawned: list[str] = []
    item.stash[_spawned_key] = spawned
    _recording.append(spawned)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any],
                         request: pytest.FixtureRequest) -> Generator[Any, Any, Any]:
    if fixturedef.scope == "function":
        return (yield)
    before = set(_children())
    try:
        return (yield)
    finally:
        _shared.update(set(_children()) - before)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    spawned = item.stash.get(_spawned_key, [])
    try:
        result = yield
    finally:
        _recording[:] = [s for s in _recording if s is not spawned]
    problems = []
    if spawned and item.get_closest_marker(MARKER) is None:
        shown = "; ".join(spawned[:3]) + (f"; and {len(spawned) - 3} more" if len(spawned) > 3 else "")
        problems.append(f"this test started {len(spawned)} process(es) but is not marked "
                        f"@pytest.mark.{MARKER} (or `pytestmark = pytest.mark.{MARKER}` in its module), "
                        f"so `make test-fast` would run it: {shown}")
    before = item.stash.get(_before_key, set())
    new = {key: p for key, p in _children().items()
           if key not in before and key not in _shared and not _of_shared(p)}
    left = _still_running(new)
    if left:
        described = "; ".join(_describe(p) for p in left.values())
        for proc in left.values():
            try:
                proc.kill()
            except psutil.Error:
                continue
        psutil.wait_procs(list(left.values()), timeout=5)
        problems.append(f"this test left {len(left)} child process(es) running {_GRACE_S:g}s after its teardown "
                        f"(now killed); stop what a test starts: {described}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    return result

