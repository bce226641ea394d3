"""Notice that a watched file changed, cheaply: one ``stat`` per file per look, no threads, no inotify.

The incremental-learning loop (:mod:`.loop`) checks every job on a slow periodic tick (the safety
net), but a new line in a Dataset index should start the train trigger check at once. Between
ticks the loop calls :meth:`FileWatch.changed` every ~100 ms; it compares each file's
``(inode, size, mtime_ns)`` with the last look. A stat is a few microseconds, so watching the
index files of every job costs nothing measurable, and it works on any filesystem and platform
(inotify is Linux-only and misses changes on network mounts).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

Signature = tuple[int, int, int] | None
_UNSEEN: Signature = (-1, -1, -1)


def signature(path: str) -> Signature:
    """``(inode, size, mtime_ns)`` of ``path``, or None when it cannot be stat'ed (missing, say)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class FileWatch:
    """The files to watch and their last seen signatures; :meth:`changed` looks once."""

    def __init__(self) -> None:
        self._seen: dict[str, Signature] = {}

    def watch(self, paths: Iterable[str]) -> None:
        """Watch exactly ``paths`` from now on.

        A path new to the watch counts as changed at the next look: the caller read it before
        calling this, and a write in between must not wait for the next periodic tick.
        """
        wanted = {p for p in paths if p}
        self._seen = {p: self._seen.get(p, _UNSEEN) for p in wanted}

    @property
    def paths(self) -> list[str]:
        return sorted(self._seen)

    def changed(self) -> bool:
        """Whether any watched file changed (or appeared, or vanished) since the last look."""
        moved = False
        for path, before in list(self._seen.items()):
            now = signature(path)
            if now != before:
                self._seen[path] = now
                moved = True
        return moved


__all__ = ["FileWatch", "signature"]
