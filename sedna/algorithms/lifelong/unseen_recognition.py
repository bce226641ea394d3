"""Unseen-sample recognition: does a sample belong to a task the knowledge base knows? (``ClassType.UTD``)

A recognizer is fitted once per knowledge-base version on held-out samples of each seen task
(``fit(tasks, heldout) -> {entry: calibration}``; the calibration is stored in the index) and
then called as ``recognize(samples, tasks, allocations) -> bool array`` (True: unseen).
Sedna's default split samples at random (half seen, half unseen); none of these guess.

- ``SampleRecognitionByDistance(quantile=0.99, margin=1.1)``: distance from the sample to the
  nearest prototype of its allocated task; unseen when it exceeds ``margin`` x the ``quantile``
  of that distance over the task's held-out samples. Registered also as Sedna's default name
  ``SampleRegonitionDefault``.
- ``SampleRecognitionByConfidence(score="max_probability"|"entropy", quantile=0.05)``: the
  allocated task model's confidence -- the top class probability, or 1 + Σ pᵢ ln pᵢ / ln K
  (1 = certain, 0 = uniform) -- below the ``quantile`` of its held-out confidences. A model is
  often confidently wrong on shifted inputs (a rotated digit), so this misses shifts the
  distance test sees; it needs no prototypes.
- ``SampleRecognitionByTaskAttr(attribute=[...])``: unseen when no task covers the sample's
  attribute values (Sedna's ``TaskAttrFilter``); nothing to fit.

A sample allocated to no task (-1) is unseen for every recognizer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sedna.algorithms.lifelong.artifacts import KnownTask
from sedna.algorithms.lifelong.params import as_choice, as_float, as_str_list
from sedna.algorithms.lifelong.samples import TaskSamples
from sedna.common.class_factory import ClassFactory, ClassType
from sedna.common.errors import DataSourceError

Calibration = dict[str, dict[str, Any]]


class BaseSampleRecognition:
    """``fit(tasks, heldout) -> {entry: calibration}``; ``__call__(samples, tasks, allocations) -> unseen``."""

    def __init__(self, task_index: Any = None, **_: Any) -> None:
        self.task_index = task_index

    def fit(self, tasks: Sequence[KnownTask], heldout: Mapping[str, TaskSamples]) -> Calibration:
        return {task.entry: {} for task in tasks}

    def __call__(self, samples: TaskSamples, tasks: Sequence[KnownTask], allocations: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _per_task(samples: TaskSamples, allocations: np.ndarray, n_tasks: int) -> list[tuple[int, np.ndarray]]:
    allocations = np.asarray(allocations)
    return [(j, np.flatnonzero(allocations == j)) for j in range(n_tasks) if (allocations == j).any()]


def _prototype_distance(x: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    d2 = (x.astype(np.float64) ** 2).sum(1)[:, None] - 2 * x.astype(np.float64) @ prototypes.T.astype(np.float64) \
        + (prototypes.astype(np.float64) ** 2).sum(1)[None, :]
    return np.asarray(np.sqrt(np.maximum(d2, 0.0)).min(axis=1))


@ClassFactory.register(ClassType.UTD, alias="SampleRecognitionByDistance")
class SampleRecognitionByDistance(BaseSampleRecognition):
    """Unseen when the sample is farther from its task's prototypes than the task's own samples are."""

    def __init__(self, task_index: Any = None, quantile: Any = 0.99, margin: Any = 1.1, **kw: Any) -> None:
        super().__init__(task_index, **kw)
        self.quantile = as_float(quantile, "quantile")
        self.margin = as_float(margin, "margin")
        if not 0.0 < self.quantile <= 1.0:
            raise ValueError(f"param 'quantile' must be in (0, 1], got {quantile!r}")

    def fit(self, tasks: Sequence[KnownTask], heldout: Mapping[str, TaskSamples]) -> Calibration:
        out: Calibration = {}
        for task in tasks:
            held = heldout.get(task.entry)
            if held is None or len(held) == 0:
                raise DataSourceError(f"SampleRecognitionByDistance: task {task.entry!r} has no held-out samples")
            distances = _prototype_distance(held.x, task.prototypes)
            out[task.entry] = {"distance_threshold": float(np.quantile(distances, self.quantile) * self.margin)}
        return out

    def __call__(self, samples: TaskSamples, tasks: Sequence[KnownTask], allocations: np.ndarray) -> np.ndarray:
        unseen = np.ones(len(samples), np.bool_)
        for j, rows in _per_task(samples, allocations, len(tasks)):
            limit = tasks[j].calibration.get("distance_threshold")
            if limit is None:
                raise DataSourceError(f"task {tasks[j].entry!r} has no distance_threshold: the index was not "
                                      f"calibrated for SampleRecognitionByDistance")
            unseen[rows] = _prototype_distance(samples.x[rows], tasks[j].prototypes) > float(limit)
        return unseen


ClassFactory.register_cls(SampleRecognitionByDistance, ClassType.UTD, "SampleRegonitionDefault")


def confidence(proba: np.ndarray, score: str) -> np.ndarray:
    """Per-row confidence of class probabilities: top probability, or 1 + Σ p ln p / ln K."""
    p = np.clip(np.asarray(proba, np.float64), 1e-12, 1.0)
    if score == "max_probability":
        return np.asarray(p.max(axis=1))
    k = p.shape[1]
    if k < 2:
        return np.ones(len(p))
    return np.asarray(1.0 + (p * np.log(p)).sum(axis=1) / np.log(k))


@ClassFactory.register(ClassType.UTD, alias="SampleRecognitionByConfidence")
class SampleRecognitionByConfidence(BaseSampleRecognition):
    """Unseen when the task model is less confident than on (almost all of) its held-out samples."""

    def __init__(self, task_index: Any = None, score: Any = "max_probability", quantile: Any = 0.05,
                 **kw: Any) -> None:
        super().__init__(task_index, **kw)
        self.score = as_choice(score, "score", ("max_probability", "entropy"))
        self.quantile = as_float(quantile, "quantile")
        if not 0.0 <= self.quantile < 1.0:
            raise ValueError(f"param 'quantile' must be in [0, 1), got {quantile!r}")

    def _model(self, task: KnownTask) -> Any:
        if task.predict_proba is None:
            raise DataSourceError(f"SampleRecognitionByConfidence: task {task.entry!r} has no model loaded")
        return task.predict_proba

    def fit(self, tasks: Sequence[KnownTask], heldout: Mapping[str, TaskSamples]) -> Calibration:
        out: Calibration = {}
        for task in tasks:
            held = heldout.get(task.entry)
            if held is None or len(held) == 0:
                raise DataSourceError(f"SampleRecognitionByConfidence: task {task.entry!r} has no held-out samples")
            scores = confidence(self._model(task)(held.x), self.score)
            out[task.entry] = {f"{self.score}_threshold": float(np.quantile(scores, self.quantile))}
        return out

    def __call__(self, samples: TaskSamples, tasks: Sequence[KnownTask], allocations: np.ndarray) -> np.ndarray:
        unseen = np.ones(len(samples), np.bool_)
        key = f"{self.score}_threshold"
        for j, rows in _per_task(samples, allocations, len(tasks)):
            limit = tasks[j].calibration.get(key)
            if limit is None:
                raise DataSourceError(f"task {tasks[j].entry!r} has no {key}: the index was not calibrated "
                                      f"for SampleRecognitionByConfidence(score={self.score!r})")
            unseen[rows] = confidence(self._model(tasks[j])(samples.x[rows]), self.score) < float(limit)
        return unseen


@ClassFactory.register(ClassType.UTD, alias="SampleRecognitionByTaskAttr")
class SampleRecognitionByTaskAttr(BaseSampleRecognition):
    """Unseen when no known task has the sample's attribute values."""

    def __init__(self, task_index: Any = None, attribute: Any = (), **kw: Any) -> None:
        super().__init__(task_index, **kw)
        self.attribute = as_str_list(attribute, "attribute")

    def __call__(self, samples: TaskSamples, tasks: Sequence[KnownTask], allocations: np.ndarray) -> np.ndarray:
        if samples.attrs is None:
            raise DataSourceError("SampleRecognitionByTaskAttr: the samples carry no task attributes")
        known = {tuple(key) for task in tasks for key in task.meta_attrs}
        return np.array([key not in known for key in samples.attr_keys()], np.bool_)


@ClassFactory.register(ClassType.UTD, alias="SampleReRecognitionDefault")
class SampleReRecognitionDefault:
    """Re-check labelled samples the edge flagged as unseen against the *current* knowledge base.

    ``__call__(samples, unseen) -> (seen, unseen)`` where ``unseen`` is the current recognizer's
    verdict: samples whose task the knowledge base learned since the edge flagged them become seen
    (they fine-tune that task); the rest stay unseen (they define new tasks). Registered also as
    Sedna's ``SampleReRegonitionDefault``, which split the samples in half.
    """

    def __init__(self, task_index: Any = None, **_: Any) -> None:
        self.task_index = task_index

    def __call__(self, samples: TaskSamples, unseen: np.ndarray) -> tuple[TaskSamples, TaskSamples]:
        unseen = np.asarray(unseen, np.bool_)
        return samples.subset(~unseen), samples.subset(unseen)


ClassFactory.register_cls(SampleReRecognitionDefault, ClassType.UTD, "SampleReRegonitionDefault")
