"""Samples as the lifelong-learning algorithms see them: features, labels, task attributes.

:class:`TaskSamples` is a small typed record: ``x`` (N x F floats), ``y`` (N labels or None),
``attrs`` (N x A strings: the task attributes named by ``attribute``, or None) and ``index``
(each row's position in the batch the caller passed, so results can be put back in order).
:func:`as_samples` converts what users pass -- a :class:`~sedna.datasources.BaseDataSource`, a
pandas DataFrame whose attribute columns are split off (Sedna's structured data), an object
with ``x`` / ``y`` / ``meta_attr``, or a plain array -- once, at the boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sedna.common.errors import DataSourceError


@dataclass(frozen=True)
class TaskSamples:
    """A batch of samples (see the module docstring)."""

    x: np.ndarray
    y: np.ndarray | None = None
    attrs: np.ndarray | None = None
    index: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        if self.index is None:
            object.__setattr__(self, "index", np.arange(n))
        for name in ("y", "attrs", "index"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise DataSourceError(f"samples: {name} has {len(value)} rows but x has {n}")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def num_examples(self) -> int:
        """Sedna's name for ``len``."""
        return len(self)

    def subset(self, rows: Any) -> TaskSamples:
        """The rows selected by a boolean mask or an index array, keeping their original ``index``."""
        rows = np.asarray(rows)
        return TaskSamples(self.x[rows], None if self.y is None else self.y[rows],
                           None if self.attrs is None else self.attrs[rows], self.index[rows])  # type: ignore[index]

    def attr_keys(self) -> list[tuple[str, ...]]:
        """Each row's attribute values as a tuple (empty tuples when there are no attributes)."""
        if self.attrs is None:
            return [()] * len(self)
        return [tuple(str(v) for v in row) for row in self.attrs]

    @staticmethod
    def concat(parts: Sequence[TaskSamples]) -> TaskSamples:
        """Rows of ``parts`` one after another (labels / attributes kept only if all parts have them)."""
        if not parts:
            raise DataSourceError("samples: nothing to concatenate")
        ys = [p.y for p in parts]
        attrs = [p.attrs for p in parts]
        return TaskSamples(np.concatenate([p.x for p in parts]),
                           None if any(y is None for y in ys) else np.concatenate(ys),  # type: ignore[arg-type]
                           None if any(a is None for a in attrs) else np.concatenate(attrs),  # type: ignore[arg-type]
                           np.concatenate([p.index for p in parts]))  # type: ignore[misc,unused-ignore]


def _features(x: Any, where: str) -> np.ndarray:
    try:
        array = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataSourceError(f"{where}: features must be numeric ({exc})") from None
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise DataSourceError(f"{where}: features must be a 2-D array (samples x features), got shape {array.shape}")
    return array


def as_samples(data: Any, attribute: Sequence[str] = (), where: str = "samples") -> TaskSamples:
    """Convert ``data`` to :class:`TaskSamples`; ``attribute`` names the task-attribute columns.

    A DataFrame loses its attribute columns to ``attrs``; other inputs take ``attrs`` from their
    ``meta_attr`` (an N x A array or a list of N tuples) when it has one row per sample.
    """
    if isinstance(data, TaskSamples):
        return data
    x = getattr(data, "x", data)
    y = getattr(data, "y", None)
    meta = getattr(data, "meta_attr", None)
    attrs: np.ndarray | None = None
    if hasattr(x, "columns") and hasattr(x, "drop"):  # a pandas DataFrame
        missing = [a for a in attribute if a not in x.columns]
        if missing:
            raise DataSourceError(f"{where}: attribute column(s) {missing} not in {list(x.columns)}")
        if attribute:
            attrs = x[list(attribute)].astype(str).to_numpy(dtype=object)
            x = x.drop(columns=list(attribute))
        x = x.to_numpy()
    features = _features(x, where)
    if attrs is None and meta is not None and not isinstance(meta, (str, bytes)):
        meta_array = np.asarray(meta, dtype=object)
        if meta_array.ndim == 1 and len(meta_array) == len(features):
            meta_array = meta_array.reshape(-1, 1)
        if meta_array.ndim == 2 and len(meta_array) == len(features):
            attrs = meta_array.astype(str).astype(object)
    labels = None if y is None else np.asarray(getattr(y, "to_numpy", lambda: y)())
    if labels is not None and labels.ndim > 1:
        labels = labels.reshape(len(labels))
    return TaskSamples(features, labels, attrs)
