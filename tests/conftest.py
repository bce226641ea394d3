"""Fixtures shared by every test package, and the suite's own rules (``tests/support``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import free_port

pytest_plugins = ["pytester", "tests.support.process_guard", "tests.support.tmp_guard"]


@pytest.fixture
def port() -> int:
    """A free TCP port on 127.0.0.1."""
    return free_port()


@pytest.fixture(scope="session")
def digits_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The digits joint-inference models, built once per session from scikit-learn's bundled data."""
    from examples.joint_inference.digits.models import build_models

    return build_models(Path(tmp_path_factory.mktemp("digits-models")))


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
