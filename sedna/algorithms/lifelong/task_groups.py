"""Relation discovery, remodeling and result integration (``ClassType.STP``, Sedna's defaults).

- ``DefaultTaskRelationDiscover``: tasks are independent, one group per task.
- ``DefaultTaskRemodeling``: split a batch by allocated task: ``[(task index, samples), ...]``.
- ``DefaultInferenceIntegrate``: put the per-task results back in the batch's row order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sedna.algorithms.lifelong.artifacts import Task, TaskGroup
from sedna.algorithms.lifelong.samples import TaskSamples
from sedna.common.class_factory import ClassFactory, ClassType


@ClassFactory.register(ClassType.STP, alias="DefaultTaskRelationDiscover")
class DefaultTaskRelationDiscover:
    """``__call__(tasks) -> list[TaskGroup]``: one group per task."""

    def __init__(self, **_: Any) -> None:
        pass

    def __call__(self, tasks: Sequence[Task]) -> list[TaskGroup]:
        return [TaskGroup(task.entry, [task]) for task in tasks]


@ClassFactory.register(ClassType.STP, alias="DefaultTaskRemodeling")
class DefaultTaskRemodeling:
    """``__call__(samples, allocations) -> [(task index, samples)]`` in ascending task order."""

    def __init__(self, models: Any = None, **_: Any) -> None:
        self.models = models

    def __call__(self, samples: TaskSamples, allocations: np.ndarray) -> list[tuple[int, TaskSamples]]:
        allocations = np.asarray(allocations)
        return [(int(task), samples.subset(allocations == task)) for task in np.unique(allocations)]


@ClassFactory.register(ClassType.STP, alias="DefaultInferenceIntegrate")
class DefaultInferenceIntegrate:
    """``__call__(parts, total) -> array``: stack per-task results by the rows' original index."""

    def __init__(self, models: Any = None, **_: Any) -> None:
        self.models = models

    def __call__(self, parts: Sequence[tuple[TaskSamples, np.ndarray]], total: int) -> np.ndarray:
        filled = [(s, np.asarray(r)) for s, r in parts if len(s)]
        if not filled:
            return np.zeros((total, 0), np.float32)
        first = filled[0][1]
        out = np.zeros((total, *first.shape[1:]), first.dtype)
        for samples, result in filled:
            out[samples.index] = result
        return out
