"""Tasks, task groups and the known tasks of a knowledge base (Sedna's ``Task`` / ``TaskGroup``).

Training produces :class:`Task` s (task definition) and :class:`TaskGroup` s (relation
discovery); one model is trained per group. At inference the algorithms see the knowledge
base as a list of :class:`KnownTask`: the group's name, the attribute values it covers, its
prototypes (representative feature vectors, one per class when labels were known) and the
calibration its unseen-sample recognizer fitted. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sedna.algorithms.lifelong.samples import TaskSamples

ProbaFn = Callable[[np.ndarray], np.ndarray]
"""``x (N x F) -> class probabilities (N x K)`` of a task's model."""


@dataclass
class Task:
    """Samples that share a task (one attribute value, or one cluster)."""

    entry: str
    samples: TaskSamples
    meta_attr: tuple[str, ...] = ()


@dataclass
class TaskGroup:
    """Tasks trained as one model (Sedna: one group per task unless relations merge them)."""

    entry: str
    tasks: list[Task]

    @property
    def samples(self) -> TaskSamples:
        return TaskSamples.concat([t.samples for t in self.tasks]) if len(self.tasks) > 1 else self.tasks[0].samples

    @property
    def meta_attrs(self) -> list[tuple[str, ...]]:
        return [t.meta_attr for t in self.tasks if t.meta_attr]


@dataclass
class KnownTask:
    """A task group of the knowledge base, as inference-time algorithms see it."""

    entry: str
    prototypes: np.ndarray
    """P x F representative vectors of the group's samples."""
    meta_attrs: list[tuple[str, ...]] = field(default_factory=list)
    predict_proba: ProbaFn | None = None
    calibration: dict[str, Any] = field(default_factory=dict)
    """What the recognizer fitted for this task (e.g. ``{"threshold": 31.2}``)."""
    deploy: bool = True


def prototypes_of(samples: TaskSamples) -> np.ndarray:
    """One mean vector per label when labels are known, else the overall mean (1 x F)."""
    if samples.y is None or len(samples) == 0:
        return np.asarray(samples.x.mean(axis=0, keepdims=True), dtype=np.float32)
    labels = np.unique(samples.y)
    return np.stack([samples.x[samples.y == label].mean(axis=0) for label in labels]).astype(np.float32)


def nearest_distances(x: np.ndarray, tasks: Sequence[KnownTask]) -> np.ndarray:
    """N x T: distance of each row to the closest prototype of each task (Euclidean)."""
    if not tasks:
        return np.zeros((len(x), 0), np.float32)
    out = np.empty((len(x), len(tasks)), np.float32)
    sq = (x.astype(np.float64) ** 2).sum(axis=1, keepdims=True)
    for j, task in enumerate(tasks):
        p = task.prototypes.astype(np.float64)
        d2 = sq - 2.0 * x.astype(np.float64) @ p.T + (p ** 2).sum(axis=1)[None, :]
        out[:, j] = np.sqrt(np.maximum(d2, 0.0)).min(axis=1)
    return out


def attribute_entry(values: Sequence[str]) -> str:
    """Sedna's task name for attribute values: joined with ``_``, ``_`` inside a value becomes ``-``."""
    return "_".join(str(v).replace("_", "-").replace(" ", "") for v in values)
