"""Task update decision: what an update round does with new labelled samples (``ClassType.KM``).

``UpdateStrategyDefault(min_train_sample=10, new_task="definition")`` is called as
``decide(seen, seen_allocations, unseen, tasks, definition) -> list[TaskUpdate]``:

- samples of a known task **fine-tune** that task's model (strategy ``"finetune"``);
- unseen samples are split by the job's task definition (``new_task="definition"``) or all kept
  together (``"single"``) and each part with at least ``min_train_sample`` samples becomes a
  **new** task (strategy ``"new"``), named by the definition (attribute values) or ``task-<n>``;
  a new part whose name an existing task already has fine-tunes that task instead;
- smaller unseen parts are left out of this round (strategy ``"pending"``) and reported.

Sedna registered only ``UpdateStrategyByFinetune``, hard-wired to Cityscapes' "real"/"sim"
attributes, while its default name ``UpdateStrategyDefault`` was unregistered, so the default
update path failed; this is that default, for any data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sedna.algorithms.lifelong.artifacts import KnownTask, Task
from sedna.algorithms.lifelong.params import as_choice, as_int
from sedna.algorithms.lifelong.samples import TaskSamples
from sedna.common.class_factory import ClassFactory, ClassType

FINETUNE, NEW, PENDING = "finetune", "new", "pending"


@dataclass
class TaskUpdate:
    """One task's share of an update round."""

    entry: str
    samples: TaskSamples
    strategy: str
    meta_attr: tuple[str, ...] = ()
    base: str | None = None
    """The existing task whose model a ``finetune`` starts from."""


Definition = Callable[[TaskSamples], list[Task]]


@ClassFactory.register(ClassType.KM, alias="UpdateStrategyDefault")
class UpdateStrategyDefault:
    """Fine-tune known tasks, register new tasks for unseen samples (see the module docstring)."""

    def __init__(self, task_index: Any = None, min_train_sample: Any = 10, new_task: Any = "definition",
                 **_: Any) -> None:
        self.task_index = task_index
        self.min_train_sample = max(1, as_int(min_train_sample, "min_train_sample"))
        self.new_task = as_choice(new_task, "new_task", ("definition", "single"))

    def __call__(self, seen: TaskSamples, seen_allocations: np.ndarray, unseen: TaskSamples,
                 tasks: Sequence[KnownTask], definition: Definition | None = None) -> list[TaskUpdate]:
        updates: list[TaskUpdate] = []
        allocations = np.asarray(seen_allocations)
        for j, task in enumerate(tasks):
            rows = allocations == j
            if rows.any():
                updates.append(TaskUpdate(task.entry, seen.subset(rows), FINETUNE, base=task.entry))
        if len(unseen) == 0:
            return updates
        by_definition = self.new_task == "definition" and definition is not None
        parts = definition(unseen) if by_definition else [Task("", unseen)]  # type: ignore[misc]
        taken = {task.entry for task in tasks}
        by_attr = {tuple(key): task.entry for task in tasks for key in task.meta_attrs}
        counter = len(tasks)
        for part in parts:
            existing = by_attr.get(part.meta_attr) if part.meta_attr else None
            if existing is None and part.meta_attr and part.entry in taken:
                existing = part.entry
            if existing is not None:
                updates.append(TaskUpdate(existing, part.samples, FINETUNE, part.meta_attr, base=existing))
                continue
            entry = part.entry if part.meta_attr and part.entry else ""
            while not entry or entry in taken:
                entry = f"task-{counter}"
                counter += 1
            strategy = NEW if len(part.samples) >= self.min_train_sample else PENDING
            updates.append(TaskUpdate(entry, part.samples, strategy, part.meta_attr))
            if strategy == NEW:
                taken.add(entry)
        return updates
