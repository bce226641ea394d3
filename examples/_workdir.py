"""The examples' working directory: the one given, or a temporary one removed at the end."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def workdir(given: Path | None, prefix: str, keep: bool = False) -> Iterator[Path]:
    """Yield ``given`` (created if missing, never removed) or a new temporary directory.

    A temporary directory is removed when the block ends, unless ``keep`` (then its path is printed,
    since what was left running still uses it).
    """
    if given is not None:
        path = Path(given).resolve()
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix=prefix)).resolve()
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path} (remove it when done)", flush=True)
        else:
            shutil.rmtree(path, ignore_errors=True)
