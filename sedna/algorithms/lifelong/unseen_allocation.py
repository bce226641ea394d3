"""Unseen-task allocation: who answers a sample no known task covers (``ClassType.UTP``).

``UnseenTaskAllocationDefault`` gives each unseen sample to the nearest known task (by
prototype distance), so the edge still returns a best-effort answer while the sample goes to
the cloud; ``-1`` only when the knowledge base is empty. An unseen estimator given to
:class:`~sedna.core.lifelong_learning.LifelongLearning` takes precedence over this answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sedna.algorithms.lifelong.artifacts import KnownTask, nearest_distances
from sedna.algorithms.lifelong.samples import TaskSamples
from sedna.common.class_factory import ClassFactory, ClassType


@ClassFactory.register(ClassType.UTP, alias="UnseenTaskAllocationDefault")
class UnseenTaskAllocationDefault:
    """``__call__(samples, tasks) -> task index per row`` (nearest prototype; -1 with no tasks)."""

    def __init__(self, task_extractor: Any = None, **_: Any) -> None:
        self.task_extractor = task_extractor

    def __call__(self, samples: TaskSamples, tasks: Sequence[KnownTask]) -> np.ndarray:
        if not tasks or len(samples) == 0:
            return np.full(len(samples), -1, np.int64)
        return np.asarray(nearest_distances(samples.x, tasks).argmin(axis=1), dtype=np.int64)
