"""Task samples as ``.npz`` files (x, y, attrs, heldout mask): what the knowledge base stores.

Labels and attributes are saved as numeric or fixed-width string arrays, never as Python
objects, so reading them back needs no unpickling (``allow_pickle=False``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sedna.algorithms.lifelong.samples import TaskSamples


def save_samples(path: str | Path, samples: TaskSamples, heldout: np.ndarray) -> Path:
    arrays: dict[str, np.ndarray] = {"x": samples.x.astype(np.float32), "heldout": np.asarray(heldout, np.bool_)}
    if samples.y is not None:
        y = np.asarray(samples.y)
        arrays["y"] = y if y.dtype.kind in "biuf" else y.astype(str)
    if samples.attrs is not None:
        arrays["attrs"] = np.asarray(samples.attrs).astype(str)
    target = Path(path)
    np.savez(target, **arrays)
    return target


def load_samples(path: str | Path) -> tuple[TaskSamples, np.ndarray]:
    """``(samples, heldout mask)`` from :func:`save_samples`' file."""
    with np.load(path, allow_pickle=False) as data:
        y = data["y"] if "y" in data.files else None
        attrs = data["attrs"].astype(object) if "attrs" in data.files else None
        return TaskSamples(data["x"], y, attrs), data["heldout"]
