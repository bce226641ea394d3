"""Where the local runtime keeps container logs, and how the API reads their tail.

One append-only file per container, ``<log_dir>/<namespace>_<pod>_<container>.log``, so a
restarted container's output follows the previous run's (as ``kubectl logs --previous`` would
need a second file; here one file tells the whole story).

The three names come from the object a client created, so a part that is not a plain name
(letters, digits, ``-``, ``.``, not starting with ``.``: a ``/``, ``..``, a NUL, a ``_`` that
would make two containers share a file) is replaced by ``x-`` and a digest of it: the file
always lies directly in the log directory, and distinct names keep distinct files.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$")


def safe_part(name: str) -> str:
    """``name`` when it is a plain name, else ``x-`` and 16 hex digits of its SHA-256."""
    if _PLAIN.match(name) and ".." not in name:
        return name
    return "x-" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def log_path(log_dir: str | Path, namespace: str, pod: str, container: str) -> Path:
    """The log file of one container: always directly inside ``log_dir``."""
    return Path(log_dir) / f"{safe_part(namespace)}_{safe_part(pod)}_{safe_part(container)}.log"


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
