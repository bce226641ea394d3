"""Training task groups: split off held-out rows, train one model per group, measure, calibrate.

Every group keeps ``heldout_ratio`` of its samples out of training; they measure the group's
model (its ``evaluate`` if it has one, else accuracy of the arg-max) and calibrate the
unseen-sample recognizer, which is fitted once for all groups of a version.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from sedna.algorithms.lifelong.artifacts import prototypes_of
from sedna.algorithms.lifelong.samples import TaskSamples
from sedna.backend.adapter import EstimatorAdapter
from sedna.common.log import get_logger
from sedna.core.lifelong_learning.knowledge import GroupState, Knowledge, TaskRecord

LOG = get_logger(__name__)


def heldout_mask(n: int, ratio: float, seed: int) -> np.ndarray:
    """A random mask of ``round(n * ratio)`` held-out rows (at least one when n >= 2 and ratio > 0)."""
    mask = np.zeros(n, np.bool_)
    if n < 2 or ratio <= 0:
        return mask
    count = min(n - 1, max(1, round(n * ratio)))
    mask[np.random.default_rng(seed).permutation(n)[:count]] = True
    return mask


def score(group: GroupState, data: TaskSamples) -> dict[str, Any]:
    """The group's model measured on ``data``: its own ``evaluate``, else arg-max accuracy."""
    if len(data) == 0 or data.y is None:
        return {}
    if group.estimator.has("evaluate"):
        result = group.estimator.call("evaluate", data)
        if isinstance(result, dict):
            return dict(result)
    predicted = predicted_labels(group.predict_proba(data.x))
    return {"accuracy": float((predicted == np.asarray(data.y).astype(predicted.dtype)).mean())}


def predicted_labels(output: np.ndarray) -> np.ndarray:
    """Class indices from probabilities (N x K), or the predictions themselves when 1-D."""
    output = np.asarray(output)
    return output.argmax(axis=1) if output.ndim == 2 else output


def train_group(entry: str, tasks: Sequence[tuple[str, tuple[str, ...], TaskSamples]], estimator: EstimatorAdapter,
                heldout_ratio: float, seed: int, base: str | None = None, previous: GroupState | None = None,
                **train_kwargs: Any) -> GroupState:
    """Train (or, with ``previous``, fine-tune) one group's model on its tasks' samples."""
    records: list[TaskRecord] = []
    for i, (task_entry, meta, samples) in enumerate(tasks):
        mask = heldout_mask(len(samples), heldout_ratio, seed + i)
        records.append(TaskRecord(task_entry, meta, samples, mask, len(samples)))
    new = TaskSamples.concat([r.samples for r in records])  # type: ignore[misc]
    new_mask = np.concatenate([r.heldout for r in records])  # type: ignore[misc]
    train_part = new.subset(~new_mask) if (~new_mask).any() else new
    kept = previous.samples() if previous is not None else None
    if kept is not None:  # fine-tune on the task's stored samples too: a few new ones must not overwrite it
        old, old_mask = kept
        train_part = TaskSamples.concat([old.subset(~old_mask), train_part])
    started = time.monotonic()
    outcome = estimator.call("train", train_part, **train_kwargs)
    LOG.info("task group %s: %s on %d samples in %.2fs", entry, "fine-tuned" if previous else "trained",
             len(train_part), time.monotonic() - started)
    if kept is not None:  # the group keeps its old samples (and so its prototypes) next to the new ones
        records = [*previous.tasks, *records]  # type: ignore[union-attr]
    group = GroupState(entry, _merge(records), estimator, np.zeros((1, new.x.shape[1]), np.float32), base=base,
                       trained_samples=len(train_part),
                       create_time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    everything = group.samples()
    assert everything is not None
    all_samples, all_mask = everything
    group.prototypes = prototypes_of(all_samples)  # serving uses every sample the task has
    fit_rows = all_samples.subset(~all_mask) if (~all_mask).any() else all_samples
    held = all_samples.subset(all_mask) if all_mask.any() else fit_rows
    group.metrics = {**({k: v for k, v in outcome.items()} if isinstance(outcome, dict) else {}), **score(group, held)}
    if all_samples.y is not None:
        group.classes = sorted({str(v) for v in np.asarray(all_samples.y).tolist()})
    return group


def _merge(records: list[TaskRecord]) -> list[TaskRecord]:
    """One record per task entry (a fine-tuned task's old and new samples together)."""
    merged: dict[str, TaskRecord] = {}
    for r in records:
        if r.entry not in merged:
            merged[r.entry] = r
            continue
        old = merged[r.entry]
        if old.samples is None or r.samples is None or old.heldout is None or r.heldout is None:
            merged[r.entry] = TaskRecord(r.entry, r.meta_attr or old.meta_attr, r.samples or old.samples,
                                         r.heldout if r.samples is not None else old.heldout, old.count + r.count)
            continue
        merged[r.entry] = TaskRecord(r.entry, r.meta_attr or old.meta_attr,
                                     TaskSamples.concat([old.samples, r.samples]),
                                     np.concatenate([old.heldout, r.heldout]), old.count + r.count)
    return list(merged.values())


def calibrate(knowledge: Knowledge, recognizer: Any) -> None:
    """Fit the recognizer on every group's held-out rows and store the calibration in the groups.

    The held-out rows are measured against prototypes of the *other* rows (an out-of-sample
    distance, what a new sample of the task will show), while serving uses prototypes of all rows.
    """
    heldout: dict[str, TaskSamples] = {}
    known = []
    for group in knowledge.groups:
        stored = group.samples()
        if stored is None:
            continue
        samples, mask = stored
        heldout[group.entry] = samples.subset(mask) if mask.any() else samples
        task = group.known()
        if mask.any() and (~mask).any():
            task.prototypes = prototypes_of(samples.subset(~mask))
        known.append(task)
    todo = [g for g in knowledge.groups if g.entry in heldout]
    fitted = recognizer.fit(known, heldout)
    for group in todo:
        group.calibration = {k: float(v) for k, v in fitted.get(group.entry, {}).items()}
