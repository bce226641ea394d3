"""Split scikit-learn's bundled digits (no download) non-IID across three edge nodes.

A stratified 25 % goes to ``test.csv`` (held out; only the example's report uses it).
The rest is label-skewed: node ``edge-k`` receives 80 % of the samples of its own label
group (``0-3``, ``4-6``, ``7-9``) and 10 % of each other group's, so every node sees
mostly its own digits, like cameras at different sites. Fixed seed; writes
``<out>/edge-k/train.csv`` (the CSV format of a Sedna ``Dataset``: header, 64 features,
label last) and ``<out>/test.csv``.

Run: ``python -m examples.federated_learning.digits.prepare OUT_DIR``
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from workers.federated.softmax import Samples, save_samples_csv

GROUPS = ((0, 1, 2, 3), (4, 5, 6), (7, 8, 9))
OWN_SHARE = 0.8
SEED = 7


def prepare(out_dir: str | Path) -> dict[str, Path]:
    """Write the node datasets and the test split; return ``{"edge-0": path, ..., "test": path}``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x, y = digits.data.astype(np.float32), digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, stratify=y, random_state=SEED)
    rng = np.random.default_rng(SEED)
    shards: list[list[int]] = [[] for _ in GROUPS]
    for g, labels in enumerate(GROUPS):
        idx = rng.permutation(np.flatnonzero(np.isin(y_train, labels)))
        own = int(len(idx) * OWN_SHARE)
        shards[g].extend(idx[:own].tolist())
        rest = np.array_split(idx[own:], len(GROUPS) - 1)
        for part, other in zip(rest, [k for k in range(len(GROUPS)) if k != g], strict=True):
            shards[other].extend(part.tolist())
    out = Path(out_dir)
    paths: dict[str, Path] = {}
    for k, shard in enumerate(shards):
        order = np.array(sorted(shard))
        paths[f"edge-{k}"] = out / f"edge-{k}" / "train.csv"
        save_samples_csv(paths[f"edge-{k}"], Samples(x_train[order], y_train[order]))
    paths["test"] = out / "test.csv"
    save_samples_csv(paths["test"], Samples(x_test, y_test))
    return paths


if __name__ == "__main__":
    for name, path in prepare(sys.argv[1] if len(sys.argv) > 1 else "fl-digits-data").items():
        print(f"{name}: {path}")
