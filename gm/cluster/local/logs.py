"""Where the local runtime keeps container logs, and how the API reads their tail.

One append-only file per container, ``<log_dir>/<namespace>_<pod>_<container>.log``, so a
restarted container's output follows the previous run's (as ``kubectl logs --previous`` would
need a second file; here one file tells the whole story).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def log_path(log_dir: str | Path, namespace: str, pod: str, container: str) -> Path:
    """The log file of one container."""
    return Path(log_dir) / f"{namespace}_{pod}_{container}.log"


def safe_name(text: str) -> str:
    """``text`` as one file name: path separators and other odd characters become ``-``; never ``.``/``..``."""
    name = _UNSAFE.sub("-", text)
    return name if name.strip(".") else name.replace(".", "-") or "-"


def tail(path: Path, lines: int | None = None, max_bytes: int = 4 << 20) -> str:
    """The file's text (at most its last ``max_bytes``), or only its last ``lines`` lines."""
    if lines is not None and lines < 0:
        raise ValueError(f"tailLines must be >= 0, got {lines!r}")
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - max_bytes))
        data = handle.read()
    text = data.decode("utf-8", errors="replace")
    if lines is None:
        return text
    if lines == 0:
        return ""
    parts = text.splitlines(keepends=True)
    return "".join(parts[-lines:])
