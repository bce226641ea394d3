"""Fixtures shared by every test package."""

from __future__ import annotations

import pytest

from tests.support.procs import free_port


@pytest.fixture
def port() -> int:
    """A free TCP port on 127.0.0.1."""
    return free_port()


@pytest.fixture(scope="session", autouse=True)
def _no_process_outlives_the_session():
    """Safety net: whatever child process a failed test left behind is stopped (and named) at the end."""
    yield
    import sys

    import psutil

    leftovers = psutil.Process().children(recursive=True)
    for proc in leftovers:
        try:
            print(f"\nstopping a process a test left behind: {' '.join(proc.cmdline())[:200]}", file=sys.stderr)
            proc.terminate()
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(leftovers, timeout=10)
    for proc in alive:
        proc.kill()
