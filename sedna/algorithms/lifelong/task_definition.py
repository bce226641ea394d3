"""Task definition: split training samples into tasks (``ClassType.STP``).

- ``TaskDefinitionByDataAttr(attribute=[...])``: one task per distinct value tuple of the named
  attribute columns (Sedna's name and naming rule: values joined by ``_``).
- ``TaskDefinitionByCluster(n_class=2, seed=0, max_iter=100)``: k-means on the features (k-means++
  start, fixed seed), one task per non-empty cluster, named ``cluster-<i>``. Sedna's
  ``TaskDefinitionBySVC`` fitted an SVC on agglomerative clusters and pickled it; here the
  clusters' prototypes are the extractor, stored as an array.

A definition is called as ``definition(samples) -> list[Task]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sedna.algorithms.lifelong.artifacts import Task, attribute_entry
from sedna.algorithms.lifelong.params import as_int, as_str_list
from sedna.algorithms.lifelong.samples import TaskSamples
from sedna.common.class_factory import ClassFactory, ClassType
from sedna.common.errors import DataSourceError


class BaseTaskDefinition:
    """``__call__(samples) -> list[Task]``; ``attribute`` names the attribute columns it needs."""

    attribute: Sequence[str] = ()

    def __call__(self, samples: TaskSamples) -> list[Task]:
        raise NotImplementedError


@ClassFactory.register(ClassType.STP, alias="TaskDefinitionByDataAttr")
class TaskDefinitionByDataAttr(BaseTaskDefinition):
    """One task per distinct value of the ``attribute`` columns."""

    def __init__(self, attribute: Any = (), **_: Any) -> None:
        self.attribute = as_str_list(attribute, "attribute")
        if not self.attribute:
            raise ValueError("TaskDefinitionByDataAttr needs param 'attribute': the attribute column name(s)")

    def __call__(self, samples: TaskSamples) -> list[Task]:
        if samples.attrs is None:
            raise DataSourceError(f"TaskDefinitionByDataAttr: the samples carry no attribute columns "
                                  f"{list(self.attribute)}")
        keys = samples.attr_keys()
        order: dict[tuple[str, ...], list[int]] = {}
        for row, key in enumerate(keys):
            order.setdefault(key, []).append(row)
        return [Task(attribute_entry(key), samples.subset(np.asarray(rows)), key) for key, rows in order.items()]


def kmeans(x: np.ndarray, k: int, seed: int = 0, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """``(centroids k x F, labels N)``: Lloyd's algorithm from a k-means++ start."""
    rng = np.random.default_rng(seed)
    data = x.astype(np.float64)
    k = max(1, min(k, len(data)))
    centroids = [data[rng.integers(len(data))]]
    for _ in range(1, k):
        d2 = np.min([((data - c) ** 2).sum(axis=1) for c in centroids], axis=0)
        total = d2.sum()
        pick = rng.choice(len(data), p=d2 / total) if total > 0 else rng.integers(len(data))
        centroids.append(data[pick])
    c = np.stack(centroids)
    labels = np.zeros(len(data), np.int64)
    for _ in range(max_iter):
        d2 = (data ** 2).sum(1)[:, None] - 2 * data @ c.T + (c ** 2).sum(1)[None, :]
        new = d2.argmin(axis=1)
        if _ > 0 and np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = data[labels == j]
            if len(members):
                c[j] = members.mean(axis=0)
    return c.astype(np.float32), labels


@ClassFactory.register(ClassType.STP, alias="TaskDefinitionByCluster")
class TaskDefinitionByCluster(BaseTaskDefinition):
    """One task per k-means cluster of the features."""

    def __init__(self, n_class: Any = 2, seed: Any = 0, max_iter: Any = 100, **_: Any) -> None:
        self.n_class = max(1, as_int(n_class, "n_class"))
        self.seed = as_int(seed, "seed")
        self.max_iter = max(1, as_int(max_iter, "max_iter"))

    def __call__(self, samples: TaskSamples) -> list[Task]:
        if len(samples) == 0:
            return []
        _, labels = kmeans(samples.x, self.n_class, self.seed, self.max_iter)
        return [Task(f"cluster-{j}", samples.subset(labels == j)) for j in np.unique(labels)]
