"""Task allocation: which known task answers each sample (``ClassType.STP``).

An allocation is ``allocate(samples, tasks) -> int array`` (an index into ``tasks`` per row,
``-1`` when no task fits, e.g. an attribute value never seen).

- ``TaskAllocationByDataAttr(attribute=[...])``: the task whose attribute values equal the
  sample's (Sedna's name); -1 for values no task covers.
- ``TaskAllocationByNearestTask``: the task owning the closest prototype (Euclidean distance);
  it works with tasks defined either way, since every task keeps prototypes.
- ``TaskAllocationDefault``: every sample to the first task (Sedna's default, kept for
  compatibility; useful with a single task).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sedna.algorithms.lifelong.artifacts import KnownTask, nearest_distances
from sedna.algorithms.lifelong.params import as_str_list
from sedna.algorithms.lifelong.samples import TaskSamples
from sedna.common.class_factory import ClassFactory, ClassType
from sedna.common.errors import DataSourceError


class BaseTaskAllocation:
    """``__call__(samples, tasks) -> np.ndarray`` of task indices (-1: none)."""

    attribute: Sequence[str] = ()

    def __init__(self, task_extractor: Any = None, **_: Any) -> None:
        self.task_extractor = task_extractor

    def __call__(self, samples: TaskSamples, tasks: Sequence[KnownTask]) -> np.ndarray:
        raise NotImplementedError


@ClassFactory.register(ClassType.STP, alias="TaskAllocationByDataAttr")
class TaskAllocationByDataAttr(BaseTaskAllocation):
    """The task whose attribute values match the sample's."""

    def __init__(self, task_extractor: Any = None, attribute: Any = (), **kw: Any) -> None:
        super().__init__(task_extractor, **kw)
        self.attribute = as_str_list(attribute, "attribute")
        if not self.attribute:
            raise ValueError("TaskAllocationByDataAttr needs param 'attribute': the attribute column name(s)")

    def __call__(self, samples: TaskSamples, tasks: Sequence[KnownTask]) -> np.ndarray:
        if samples.attrs is None:
            raise DataSourceError(f"TaskAllocationByDataAttr: the samples carry no attribute columns "
                                  f"{list(self.attribute)}")
        owner: dict[tuple[str, ...], int] = {}
        for j, task in enumerate(tasks):
            for key in task.meta_attrs:
                owner.setdefault(tuple(key), j)
        return np.array([owner.get(key, -1) for key in samples.attr_keys()], np.int64)


@ClassFactory.register(ClassType.STP, alias="TaskAllocationByNearestTask")
class TaskAllocationByNearestTask(BaseTaskAllocation):
    """The task with the closest prototype."""

    def __call__(self, samples: TaskSamples, tasks: Sequence[KnownTask]) -> np.ndarray:
        if not tasks or len(samples) == 0:
            return np.full(len(samples), -1, np.int64)
        return np.asarray(nearest_distances(samples.x, tasks).argmin(axis=1), dtype=np.int64)


@ClassFactory.register(ClassType.STP, alias="TaskAllocationDefault")
class TaskAllocationDefault(BaseTaskAllocation):
    """Every sample to the first task."""

    def __call__(self, samples: TaskSamples, tasks: Sequence[KnownTask]) -> np.ndarray:
        return np.full(len(samples), 0 if tasks else -1, np.int64)
