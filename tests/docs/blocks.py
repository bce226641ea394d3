"""Run the shell blocks of a markdown page in order, as a reader would type them.

A fenced block whose info string is ``sh`` (or ``bash``/``console`` are left alone: they show
output) is run with ``bash -euo pipefail`` in one working directory, one block after the other,
with ``sedna`` and ``python`` on ``PATH`` running this checkout. A block preceded by
``<!-- not-tested: REASON -->`` is never run; one preceded by ``<!-- long: REASON -->`` runs only
when ``SEDNA_DOCS_LONG=1``; one preceded by ``<!-- requires: MODULE -->`` runs when that Python
module is installed (CI installs it). Whenever a block is not run, the reason is printed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"(?:<!--\s*(not-tested|long|requires)\s*:?\s*(.*?)\s*-->\s*\n)?```(sh|bash)\n(.*?)\n```", re.S)


@dataclasses.dataclass(frozen=True)
class Block:
    """One shell block of a page: its text, where it starts, and why it is not run (if so)."""

    text: str
    line: int
    marker: str = ""
    reason: str = ""

    @property
    def first_line(self) -> str:
        return self.text.strip().splitlines()[0]


def shell_blocks(page: Path) -> list[Block]:
    """The ``sh``/``bash`` blocks of ``page``, in order."""
    text = page.read_text()
    return [Block(m.group(4), text.count("\n", 0, m.start(3)) + 1, m.group(1) or "", m.group(2) or "")
            for m in _FENCE.finditer(text)]


def tool_dir(where: Path) -> Path:
    """A directory of ``sedna``, ``python`` and ``python3`` commands that run this interpreter."""
    bin_dir = where / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, args in (("python", ""), ("python3", ""), ("sedna", " -m sedna")):
        script = bin_dir / name  # a script, not a symlink: a venv's python must be run by its own path
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}"{args} "$@"\n')
        script.chmod(0o755)
    return bin_dir


def checkout_like(where: Path) -> Path:
    """A directory that looks like a fresh clone to the blocks: this checkout's tracked top-level
    entries linked in, nothing the user would not have (no ``.sedna``, no ``.venv``)."""
    work = where / "clone"
    work.mkdir(parents=True, exist_ok=True)
    for name in ("examples", "crds", "docs", "Makefile", "pyproject.toml", "README.md"):
        link = work / name
        if not link.exists():
            link.symlink_to(ROOT / name)
    return work


def environment(bin_dir: Path) -> dict[str, str]:
    """This environment without ``SEDNA_*`` settings, with ``bin_dir`` first on ``PATH`` and this checkout
    importable (``TMPDIR`` stays the test session's, so whatever a block leaves there is noticed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEDNA_")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return env


def run_blocks(page: Path, work: Path, env: dict[str, str], timeout: float = 600.0) -> list[str]:
    """Run every runnable block of ``page`` in ``work``; return a line per block (run or not, and why).

    A block that exits non-zero raises ``AssertionError`` with its output.
    """
    long_ok = os.environ.get("SEDNA_DOCS_LONG") == "1"
    done: list[str] = []
    for block in shell_blocks(page):
        where = f"{page.name}:{block.line} `{block.first_line}`"
        missing = block.marker == "requires" and importlib.util.find_spec(block.reason) is None
        if block.marker == "not-tested" or (block.marker == "long" and not long_ok) or missing:
            why = {"long": f"{block.reason}; SEDNA_DOCS_LONG=1 runs it",
                   "requires": f"the Python module {block.reason!r} is not installed"}.get(block.marker, block.reason)
            done.append(f"not run: {where} ({why})")
            print(done[-1])
            continue
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block.text], cwd=work, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        assert proc.returncode == 0, f"{where} exited {proc.returncode}:\n{proc.stdout[-6000:]}"
        done.append(f"ok: {where}")
        print(done[-1])
    return done
