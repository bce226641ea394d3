"""The example's data: handwritten digits read by cameras mounted in different ways.

Every camera site is a task: the same 8x8 digits (scikit-learn's bundled ``load_digits``, no
download) seen upright, rotated by 90°, with inverted contrast, shifted by three columns, or
rotated and inverted. A linear model cannot serve all of them at once (inverted digits are the
negative of upright ones), so a knowledge base of per-task models beats one global model, and
a new site is an **unseen task** that must be detected, learned and deployed.

:func:`build_stream` returns, with a fixed seed, per task: a training set (the initial task's
is used for the first knowledge base), a test set (for the accuracy matrix) and a stream of
unlabelled samples; :func:`phases` mixes each new site's stream with samples of the sites
already known, the edge's traffic while that site comes online. Each sample carries its task's
index, so detection can be scored. Features are raw pixel values 0..16 (64 per image).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sedna.algorithms.lifelong.samples import TaskSamples

SEED = 7


def _rot90(a: np.ndarray) -> np.ndarray:
    return np.rot90(a, 1, axes=(1, 2))


TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "upright": lambda a: a,
    "rotated": _rot90,
    "inverted": lambda a: 16.0 - a,
    "shifted": lambda a: np.roll(a, 3, axis=2),
    "rotated-inverted": lambda a: 16.0 - _rot90(a),
}
TASKS = tuple(TRANSFORMS)


@dataclass(frozen=True)
class TaskData:
    """One camera site's samples."""

    name: str
    index: int
    train: TaskSamples
    test: TaskSamples
    stream: TaskSamples


def _samples(images: np.ndarray, labels: np.ndarray, name: str) -> TaskSamples:
    x = TRANSFORMS[name](images.reshape(-1, 8, 8)).reshape(len(images), 64).astype(np.float32)
    attrs = np.full((len(images), 1), name, dtype=object)
    return TaskSamples(x, labels.astype(np.int64), attrs)


def build_stream(n_train: int = 360, n_test: int = 300, seed: int = SEED) -> list[TaskData]:
    """Train / test / stream samples of every task (disjoint within a task; the rest is the stream)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = digits.data.astype(np.float32), digits.target
    out = []
    for i, name in enumerate(TASKS):
        order = np.random.default_rng(seed + i).permutation(len(images))
        train, test, rest = order[:n_train], order[n_train:n_train + n_test], order[n_train + n_test:]
        out.append(TaskData(name, i, _samples(images[train], labels[train], name),
                            _samples(images[test], labels[test], name), _samples(images[rest], labels[rest], name)))
    return out


@dataclass(frozen=True)
class Phase:
    """The edge's traffic while task ``new`` comes online: its samples mixed with known tasks'."""

    new: int
    samples: TaskSamples
    task_of: np.ndarray
    """The true task index of every row."""


def phases(tasks: list[TaskData], size: int = 700, new_share: float = 0.3, seed: int = SEED) -> list[Phase]:
    """One :class:`Phase` per task after the first, in arrival order (rows shuffled, fixed seed)."""
    rng = np.random.default_rng(seed)
    used = [0] * len(tasks)
    out = []
    for new in range(1, len(tasks)):
        count_new = round(size * new_share)
        picks: list[tuple[int, int]] = [(new, count_new)]
        old = size - count_new
        for k in range(new):
            picks.append((k, old // new + (1 if k < old % new else 0)))
        parts, owners = [], []
        for k, count in picks:
            stream = tasks[k].stream
            rows = np.arange(used[k], used[k] + count) % len(stream)
            used[k] += count
            parts.append(stream.subset(rows))
            owners.append(np.full(count, k))
        merged = TaskSamples.concat(parts)
        order = rng.permutation(len(merged))
        out.append(Phase(new, TaskSamples(merged.x[order], merged.y[order],  # type: ignore[index]
                                          merged.attrs[order]), np.concatenate(owners)[order]))  # type: ignore[index]
    return out
