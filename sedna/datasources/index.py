"""The one dataset-index parser: which records a TXT or CSV index file holds.

Everything that reads an index uses it, so they cannot disagree: the LC's sample
counter (a Dataset's ``numberOfSamples``), the LC's incremental-learning split (which
samples go to train and to eval), and the SDK's :class:`~sedna.datasources.TxtDataParse`
and :class:`~sedna.datasources.CSVDataParse`. The rules:

- Lines end at ``\\n``, ``\\r\\n`` or ``\\r``; the file is UTF-8 (a leading BOM is ignored).
- A blank line, or a line whose first non-blank character is ``#``, between records
  is skipped (in a CSV too: quote a first field that starts with ``#``).
- TXT: every other line is one record; its fields are its whitespace-separated tokens.
- CSV: records follow the ``csv`` module's default dialect, so a quoted field may span
  lines; the first record is the header; a record whose cells are all empty is skipped.
- The last record is *unterminated* when the file does not end with a newline, or ends
  inside a quoted field: a writer may still be appending it. :func:`read_index` leaves
  such a record out while the file changed less than ``settle_seconds`` ago; an
  unterminated quoted field that stays is an error naming its line.

Each :class:`Record` keeps its raw text (quoted newlines included), so a split can be
written back as valid CSV.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sedna.common.errors import DataSourceError

FORMATS = ("txt", "csv")
SETTLE_SECONDS = 2.0
"""How long an unterminated last record must stay unchanged before it counts as a sample."""


class IndexFileError(DataSourceError):
    """An index file cannot be read or parsed; the message names the file (and line)."""


@dataclass(frozen=True)
class Record:
    """One sample of an index (or the CSV header)."""

    line: int
    """1-based line the record starts on."""
    text: str
    """The record as written, without its final newline (a CSV record may hold newlines)."""
    fields: tuple[str, ...]
    """TXT: whitespace-separated tokens; CSV: cells."""
    end_line: int = 0
    """1-based line the record ends on (a quoted CSV field can span lines)."""


@dataclass(frozen=True)
class IndexFile:
    """The parsed index: its header (CSV only) and its samples, in file order."""

    fmt: str
    header: Record | None
    records: list[Record]
    unterminated: bool = False
    """Whether the last record (or header) has no final newline, or ends inside a quoted field."""

    def __len__(self) -> int:
        return len(self.records)


def index_format(path: str | Path, fmt: str | None = None) -> str:
    """``fmt`` (e.g. a Dataset's ``spec.format``) or the file's suffix, checked to be ``txt`` or ``csv``."""
    chosen = (fmt or Path(str(path)).suffix.lstrip(".")).lower()
    if chosen not in FORMATS:
        raise IndexFileError(f"index format {chosen!r} of {str(path)!r} is not supported (use txt or csv)")
    return chosen


def parse_index(text: str, fmt: str, source: str = "<index>") -> IndexFile:
    """Parse index ``text`` in format ``fmt`` (``txt`` or ``csv``); ``source`` names it in errors."""
    fmt = index_format(source, fmt)
    lines = io.StringIO(text.removeprefix("\ufeff"), newline="").readlines()
    records = list(_txt_records(lines) if fmt == "txt" else _csv_records(lines, source))
    unterminated = bool(records) and records[-1].end_line == len(lines) and (
        not lines[-1].endswith(("\n", "\r")) or (fmt == "csv" and _open_quote(records[-1].text)))
    header = records.pop(0) if fmt == "csv" and records else None
    return IndexFile(fmt, header, records, unterminated)


def read_index(path: str | Path, fmt: str | None = None, *, settle_seconds: float = 0.0) -> IndexFile:
    """Read and parse a local index file.

    An unterminated last record is dropped while the file's modification time is less
    than ``settle_seconds`` old (a writer is still appending it); once settled, a record
    left inside an open quoted field raises :class:`IndexFileError` naming its line.
    """
    file = Path(path)
    fmt = index_format(file, fmt)
    try:
        text = file.read_text(encoding="utf-8")
        modified = file.stat().st_mtime
    except FileNotFoundError:
        raise IndexFileError(f"index file {str(file)!r} does not exist") from None
    except IsADirectoryError:
        raise IndexFileError(f"index file {str(file)!r} is a directory, not an index file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexFileError(f"index file {str(file)!r} cannot be read: {exc}") from None
    index = parse_index(text, fmt, str(file))
    if not index.unterminated:
        return index
    if time.time() - modified < settle_seconds:
        if index.records:
            return IndexFile(fmt, index.header, index.records[:-1], False)
        return IndexFile(fmt, None, [], False)  # only a header being written
    last = index.records[-1] if index.records else index.header
    if fmt == "csv" and last is not None and _open_quote(last.text):
        raise IndexFileError(f"{file}:{last.line}: a quoted field is never closed")
    return index


def _txt_records(lines: list[str]) -> Iterator[Record]:
    for number, raw in enumerate(lines, start=1):
        text = _without_eol(raw)
        stripped = text.strip()
        if stripped and not stripped.startswith("#"):
            yield Record(number, text, tuple(stripped.split()), number)


class _LineFeed:
    """Feeds lines to ``csv.reader`` one at a time, so records can start only where we allow."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.position = 0

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        if self.position >= len(self.lines):
            raise StopIteration
        self.position += 1
        return self.lines[self.position - 1]


def _csv_records(lines: list[str], source: str) -> Iterator[Record]:
    feed = _LineFeed(lines)
    reader = csv.reader(feed)
    while True:
        while feed.position < len(lines) and _is_skipped(lines[feed.position]):
            feed.position += 1  # blank lines and comments between records
        start = feed.position
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise IndexFileError(f"{source}:{start + 1}: not a valid CSV record: {exc}") from None
        if any(cell.strip() for cell in cells):
            text = _without_eol("".join(lines[start:feed.position]))
            yield Record(start + 1, text, tuple(cells), feed.position)


def _without_eol(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith(("\n", "\r")) else text


def _is_skipped(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _open_quote(text: str) -> bool:
    """Whether ``text`` ends inside a quoted CSV field (the lenient reader would accept it silently)."""
    try:
        list(csv.reader(io.StringIO(text + "\n", newline=""), strict=True))
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False
