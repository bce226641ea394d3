"""Dataset files of the lifelong workers: CSV with a header (features, optional attribute columns,
``label`` or the last column as the label) or ``.npz`` (``x``, ``y``, optional ``attrs``).

Columns named in the ``attribute`` parameter are task attributes (kept as strings); every other
column but the label must be numeric. Errors name the file and the column.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sedna.algorithms.lifelong.samples import TaskSamples
from sedna.common.errors import DataSourceError


def load_table(path: str | Path, attribute: Sequence[str] = ()) -> TaskSamples:
    """Read a dataset file into :class:`TaskSamples`."""
    p = Path(path)
    if not p.exists():
        raise DataSourceError(f"dataset file {str(p)!r} does not exist")
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as data:
            if "x" not in data.files or "y" not in data.files:
                raise DataSourceError(f"{p}: an npz dataset needs arrays 'x' and 'y', found {data.files}")
            attrs = data["attrs"].astype(object) if "attrs" in data.files else None
            if attrs is not None and attrs.ndim == 1:
                attrs = attrs.reshape(-1, 1)
            return TaskSamples(data["x"].astype(np.float32), data["y"].astype(np.int64), attrs)
    with p.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 1:
        raise DataSourceError(f"{p}: a CSV dataset needs a header row")
    header = rows[0]
    missing = [a for a in attribute if a not in header]
    if missing:
        raise DataSourceError(f"{p}: attribute column(s) {missing} not in the header {header}")
    label = header.index("label") if "label" in header else len(header) - 1
    attr_cols = [header.index(a) for a in attribute]
    feature_cols = [i for i in range(len(header)) if i != label and i not in attr_cols]
    body = rows[1:]
    try:
        x = np.array([[float(r[i]) for i in feature_cols] for r in body], np.float32).reshape(len(body),
                                                                                           len(feature_cols))
        y = np.array([int(float(r[label])) for r in body], np.int64)
    except (ValueError, IndexError) as exc:
        raise DataSourceError(f"{p}: a feature or label value is not numeric ({exc})") from None
    attrs = np.array([[r[i] for i in attr_cols] for r in body], dtype=object) if attr_cols else None
    return TaskSamples(x, y, attrs)


def save_table(path: str | Path, samples: TaskSamples, attribute: Sequence[str] = ()) -> Path:
    """Write ``samples`` as the CSV :func:`load_table` reads (attribute columns first)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*attribute, *(f"f{i}" for i in range(samples.x.shape[1])), "label"])
        attrs = samples.attrs if samples.attrs is not None else np.zeros((len(samples), 0), dtype=object)
        labels = samples.y if samples.y is not None else np.zeros(len(samples), np.int64)
        for a, row, label in zip(attrs, samples.x, labels, strict=True):
            writer.writerow([*(str(v) for v in a), *(f"{v:g}" for v in row), int(label)])
    return p
