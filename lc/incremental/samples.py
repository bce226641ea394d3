"""Dataset index files: read new samples, split them by ``trainProb``, write per-round files.

An index is TXT (one sample per non-empty, non-``#`` line) or CSV (a header, then one sample per
line; the header is re-emitted at the top of every round file, which Sedna's IL could not do).
Samples are identified by their position in the index, which only grows, so a split is a pair of
index lists and nothing is ever taken twice. The split is exact (``int(trainProb * n)`` samples
train, the rest evaluate, as in Sedna) but shuffled with a seed derived from the batch's offset,
so it is repeatable after a restart and does not follow the order labels were appended in.

The index is read while a labeller may be appending to it: a last line without its newline that
was written less than :data:`SETTLE_SECONDS` ago is the writer's unfinished line and is left for
the next read, so half a sample is never taken (and its other half never becomes a second one).
An unterminated last line older than that is a complete sample in a file that lacks the final newline.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SETTLE_SECONDS = 2.0
"""How long an unterminated last index line must stay unchanged before it counts as a sample."""


class IndexUnreadable(ValueError):
    """The index cannot be read; the message names the file and the Dataset field."""


@dataclass(frozen=True)
class Index:
    """The samples of an index file (lines without their newline) and its CSV header, if any."""

    header: str | None
    lines: list[str]


def read_index(url: str, fmt: str) -> Index:
    """Read a local index (``file://`` or a path); ``fmt`` is ``txt`` or ``csv``."""
    path = local_path(url)
    if path is None:
        raise IndexUnreadable(f"spec.url {url!r} is remote; this LC splits local index files only")
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in ("txt", "csv"):
        raise IndexUnreadable(f"spec.format {fmt!r} is not supported for incremental learning (use txt or csv)")
    try:
        text = path.read_text(encoding="utf-8")
        raw = text.splitlines()
        if raw and not text.endswith(("\n", "\r")) and time.time() - path.stat().st_mtime < SETTLE_SECONDS:
            raw.pop()  # the writer's unfinished line: taken at the next read
    except FileNotFoundError:
        raise IndexUnreadable(f"index file {str(path)!r} (spec.url) does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexUnreadable(f"index file {str(path)!r} (spec.url) cannot be read: {exc}") from None
    lines = [line for line in raw if line.strip() and not (fmt == "txt" and line.lstrip().startswith("#"))]
    if fmt == "csv":
        return Index(lines[0] if lines else None, lines[1:])
    return Index(None, lines)


def local_path(url: str) -> Path | None:
    """The local file a Dataset ``spec.url`` names (``file://`` or a path); None when it is remote."""
    if "://" in url and not url.startswith("file://"):
        return None
    return Path(url.removeprefix("file://"))


def split(start: int, count: int, train_prob: float) -> tuple[list[int], list[int]]:
    """Positions ``start .. start+count`` split into ``(train, eval)``; disjoint, exact, repeatable."""
    positions = list(range(start, start + count))
    random.Random(start).shuffle(positions)
    cut = int(train_prob * count + 1e-9)
    return sorted(positions[:cut]), sorted(positions[cut:])


def write_samples(path: str | Path, index: Index, positions: Iterable[int]) -> str:
    """Write the samples at ``positions`` (with the CSV header) atomically; return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    body = [index.header] if index.header is not None else []
    body += [index.lines[i] for i in positions]
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text("\n".join(body) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return str(target)


def merge_versions(versions: Sequence[Sequence[int]]) -> list[int]:
    """Eval samples of several versions, each once, in index order."""
    return sorted({i for version in versions for i in version})
