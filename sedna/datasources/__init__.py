"""Dataset index parsers: TXT (one sample per line) and CSV (header + rows).

Paths inside an index are relative to the index file's directory, as in Sedna;
:func:`resolve_path` makes them absolute. Parsers collect ``x`` (inputs or paths)
and ``y`` (labels) as numpy arrays.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from sedna.common.errors import DataSourceError

__all__ = ["BaseDataSource", "CSVDataParse", "TxtDataParse", "resolve_path"]


def resolve_path(entry: str, index_file: str | Path) -> str:
    """``entry`` made absolute against the directory of ``index_file`` (absolute entries kept)."""
    path = Path(entry)
    if path.is_absolute():
        return str(path)
    return str(Path(index_file).resolve().parent / path)


class BaseDataSource:
    """A parsed dataset: inputs ``x``, labels ``y`` (None for test data without labels)."""

    def __init__(self, data_type: str = "train", func: Callable[..., Any] | None = None) -> None:
        self.data_type = data_type
        self.func = func
        self.x: Any = None
        self.y: Any = None
        self.meta_attr: Any = None

    @property
    def is_test_data(self) -> bool:
        return self.data_type == "test"

    def num_examples(self) -> int:
        return 0 if self.x is None else len(self.x)

    def __len__(self) -> int:
        return self.num_examples()


class TxtDataParse(BaseDataSource):
    """One sample per line: ``<path> [label ...]``; blank lines and ``#`` comments are skipped.

    With ``func`` each line is mapped by it (it must return ``(x, y)`` or ``x``);
    otherwise the first token is the input path (resolved against the index file
    unless ``use_raw``) and the second, if any, the label.
    """

    def parse(self, *files: str | Path, use_raw: bool = False, **kwargs: Any) -> TxtDataParse:
        xs: list[Any] = []
        ys: list[Any] = []
        for file in files:
            for lineno, line in _lines(file):
                if self.func is not None:
                    item = self.func(line, **kwargs)
                    x, y = item if isinstance(item, tuple) and len(item) == 2 else (item, None)
                else:
                    tokens = line.split()
                    x = tokens[0] if use_raw else resolve_path(tokens[0], file)
                    y = tokens[1] if len(tokens) > 1 else None
                    if y is None and not self.is_test_data:
                        raise DataSourceError(f"{file}:{lineno}: training sample {tokens[0]!r} has no label")
                xs.append(x)
                ys.append(y)
        self.x = np.array(xs, dtype=object)
        self.y = None if self.is_test_data and all(y is None for y in ys) else np.array(ys, dtype=object)
        return self


class CSVDataParse(BaseDataSource):
    """A CSV file with a header row; ``label`` names the label column (default ``label`` if present)."""

    def parse(self, *files: str | Path, label: str | None = "label", usecols: Iterable[str] | None = None,
              **_: Any) -> CSVDataParse:
        rows: list[dict[str, str]] = []
        header: list[str] | None = None
        for file in files:
            path = Path(file)
            try:
                with path.open(newline="") as handle:
                    reader = csv.DictReader(handle)
                    if reader.fieldnames is None:
                        raise DataSourceError(f"{path}: CSV file has no header row")
                    if header is not None and list(reader.fieldnames) != header:
                        raise DataSourceError(f"{path}: header {reader.fieldnames} differs from {header}")
                    header = list(reader.fieldnames)
                    rows.extend(reader)
            except OSError as exc:
                raise DataSourceError(f"cannot read dataset index {str(path)!r}: {exc.strerror}") from None
        header = header or []
        has_label = label is not None and label in header
        if label is not None and label != "label" and not has_label:
            raise DataSourceError(f"label column {label!r} is not in the CSV header {header}")
        columns = [c for c in (list(usecols) if usecols else header) if c != label]
        self.x = np.array([[row[c] for c in columns] for row in rows], dtype=object)
        self.y = np.array([row[label] for row in rows], dtype=object) if has_label else None
        self.meta_attr = columns
        return self


def _lines(file: str | Path) -> Iterable[tuple[int, str]]:
    path = Path(file)
    try:
        text = path.read_text()
    except OSError as exc:
        raise DataSourceError(f"cannot read dataset index {str(path)!r}: {exc.strerror}") from None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield lineno, line
