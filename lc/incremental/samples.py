"""Dataset index files: read new samples, split them by ``trainProb``, write per-round files.

An index is TXT or CSV, read by :mod:`sedna.datasources.index` (the parser the dataset counter and
the SDK use too): TXT, one sample per non-blank, non-``#`` line; CSV, a header, then one sample per
record (a quoted field may span lines); the header is re-emitted at the top of every round file,
which Sedna's IL could not do.
Samples are identified by their position in the index, which only grows, so a split is a pair of
index lists and nothing is ever taken twice. The split is exact (``int(trainProb * n)`` samples
train, the rest evaluate, as in Sedna) but shuffled with a seed derived from the batch's offset,
so it is repeatable after a restart and does not follow the order labels were appended in.

The index is read while a labeller may be appending to it: a last record without its newline (or
inside an open quote) that was written less than :data:`SETTLE_SECONDS` ago is the writer's
unfinished record and is left for the next read, so half a sample is never taken (and its other
half never becomes a second one). An unterminated last line older than that is a complete sample
in a file that lacks the final newline.

A CSV record whose number of fields differs from the header's fails validation: no worker can
train on it, and since the index only grows it would fail every later round too. The job loop
quarantines such records (:attr:`Index.problems`, by position, with the line they start on) instead
of handing them to a round.

A remote index (``s3://``, ``http(s)://``) is read from the LC's cached copy
(:mod:`lc.managers.remote`, refreshed at most every ``max_age`` seconds), and round files for an
``s3://`` ``outputDir`` are staged locally and uploaded; the URL is what the round reports.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lc.managers import remote
from sedna.datasources.index import FORMATS, SETTLE_SECONDS, IndexFileError
from sedna.datasources.index import read_index as parse_index_file


class IndexUnreadable(ValueError):
    """The index cannot be read; the message names the file and the Dataset field."""


class SamplesUnwritable(ValueError):
    """A round's sample file cannot be written to ``outputDir``; the message names the URL."""


@dataclass(frozen=True)
class Problem:
    """Why the sample at a position fails validation, and the index line it starts on."""

    line: int
    reason: str


@dataclass(frozen=True)
class Index:
    """The samples of an index file (lines without their newline) and its CSV header, if any."""

    header: str | None
    lines: list[str]
    problems: dict[int, Problem] = field(default_factory=dict)
    """Positions of samples that fail validation (see the module docstring)."""


def read_index(url: str, fmt: str, cache_dir: Path | None = None, max_age: float = 0.0) -> Index:
    """Read an index (a path, ``file://``, or a remote URL via ``cache_dir``); ``fmt`` is ``txt`` or ``csv``."""
    path = local_path(url)
    if path is None:
        if not remote.is_remote(url):
            raise IndexUnreadable(f"spec.url {url!r}: unsupported scheme (use a path, file://, s3:// or http(s)://)")
        try:
            path = remote.fetch_index(url, cache_dir, max_age)
        except remote.RemoteError as exc:
            raise IndexUnreadable(f"spec.url: {exc}") from None
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise IndexUnreadable(f"spec.format {fmt!r} is not supported for incremental learning (use txt or csv)")
    try:
        index = parse_index_file(path, fmt, settle_seconds=SETTLE_SECONDS)
    except IndexFileError as exc:
        raise IndexUnreadable(f"{exc} (spec.url)") from None
    header = index.header.text if index.header is not None else None
    problems: dict[int, Problem] = {}
    if index.header is not None:
        width = len(index.header.fields)
        for position, record in enumerate(index.records):
            if len(record.fields) != width:
                problems[position] = Problem(record.line, f"{len(record.fields)} fields, the header has {width}")
    return Index(header, [record.text for record in index.records], problems)


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


def write_samples(path: str | Path, index: Index, positions: Iterable[int], cache_dir: Path | None = None) -> str:
    """Write the samples at ``positions`` (with the CSV header) atomically; return the path (or URL)."""
    if remote.is_remote(str(path)):
        url = str(path)
        try:
            staged = remote.staging_path(url, cache_dir)
            write_samples(staged, index, positions)
            remote.upload(staged, url)
        except remote.RemoteError as exc:
            raise SamplesUnwritable(f"spec.outputDir: {exc}") from None
        remote.remove_staged(staged)
        return url
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
