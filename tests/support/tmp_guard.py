"""Pytest plugin: the suite leaves nothing behind in the temporary directory.

At the start of the session ``TMPDIR`` (and ``tempfile.tempdir``) point at a fresh directory
of this run, so every ``tempfile.mkdtemp()`` of a test, of project code it calls and of every
child process lands there; pytest's own ``tmp_path`` directories stay in the real temporary
root (``tmp_path_retention_policy = "failed"`` keeps only those of failed tests). At the end,
whatever is still in the run's directory was leaked: it is listed, removed, and the session
fails. Tests use ``tmp_path`` (or clean up what they make), and so must the code they run.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

import pytest


@dataclasses.dataclass
class _Saved:
    private: Path
    tempdir: str | None
    environ: dict[str, str | None]


_saved_key = pytest.StashKey[_Saved]()


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker shares its controller's directory
        return
    real = tempfile.gettempdir()
    saved = _Saved(Path(tempfile.mkdtemp(prefix="sedna-tests-", dir=real)), tempfile.tempdir,
                   {key: os.environ.get(key) for key in ("TMPDIR", "PYTEST_DEBUG_TEMPROOT")})
    config.stash[_saved_key] = saved
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", real)  # where pytest puts tmp_path directories
    os.environ["TMPDIR"] = str(saved.private)
    tempfile.tempdir = str(saved.private)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    saved = session.config.stash.get(_saved_key, None)
    if saved is None:
        return
    del session.config.stash[_saved_key]
    tempfile.tempdir = saved.tempdir
    for key, value in saved.environ.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    left = sorted(p.name for p in saved.private.iterdir())
    shutil.rmtree(saved.private, ignore_errors=True)
    if not left:
        return
    shown = ", ".join(left[:10]) + (f" and {len(left) - 10} more" if len(left) > 10 else "")
    message = (f"tests left {len(left)} entries in the temporary directory (now removed): {shown}; "
               "use tmp_path, or remove what a test or the code it runs creates")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(message, red=True)
    if session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
