"""Data for the incremental-learning digits example: scikit-learn's bundled digits (no download).

:func:`prepare` writes, with a fixed seed:

- ``test.csv``: a stratified held-out 30 %, used only to measure accuracy;
- ``initial/model.npz``: a softmax model trained on :data:`INITIAL_SAMPLES` samples, the job's
  ``initialModel`` (it is also copied to ``deploy/model.npz``, the ``deploySpec.model``);
- ``dataset/index.csv``: the Dataset's index, starting with the header only;
- ``pool.csv``: the remaining samples, the "labelled hard examples" :func:`feed` appends to the
  index batch by batch, as a labelling team would.

Run: ``python -m examples.incremental_learning.digits.prepare OUT_DIR``
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workers.incremental.model import DigitsSoftmax, Samples, load_samples, save_samples_csv

INITIAL_SAMPLES = 40
SEED = 11


@dataclass(frozen=True)
class Layout:
    """The files :func:`prepare` writes."""

    root: Path

    @property
    def test(self) -> Path:
        return self.root / "test.csv"

    @property
    def pool(self) -> Path:
        return self.root / "pool.csv"

    @property
    def index(self) -> Path:
        return self.root / "dataset" / "index.csv"

    @property
    def initial_model(self) -> Path:
        return self.root / "initial" / "model.npz"

    @property
    def deploy_model(self) -> Path:
        return self.root / "deploy" / "model.npz"

    @property
    def output(self) -> Path:
        return self.root / "output"


def prepare(out_dir: str | Path) -> Layout:
    """Write the example's data and initial model; return where everything is."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x, y = digits.data.astype(np.float32), digits.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.3, stratify=y, random_state=SEED)
    layout = Layout(Path(out_dir))
    save_samples_csv(layout.test, Samples(x_test, y_test))
    initial = Samples(x_rest[:INITIAL_SAMPLES], y_rest[:INITIAL_SAMPLES])
    save_samples_csv(layout.pool, Samples(x_rest[INITIAL_SAMPLES:], y_rest[INITIAL_SAMPLES:]))
    model = DigitsSoftmax(seed=SEED)
    model.train(initial, epochs=3, learning_rate=0.3, batch_size=16)
    layout.initial_model.parent.mkdir(parents=True, exist_ok=True)
    model.save(layout.initial_model)
    layout.deploy_model.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(layout.initial_model, layout.deploy_model)
    save_samples_csv(layout.index, Samples(np.zeros((0, 64), np.float32), np.zeros(0, np.int64)))
    layout.output.mkdir(parents=True, exist_ok=True)
    return layout


def feed(layout: Layout, start: int, count: int) -> int:
    """Append pool samples ``start .. start+count`` to the dataset index; return the new offset."""
    pool = load_samples(layout.pool)
    end = min(start + count, len(pool))
    lines = [",".join(f"{v:g}" for v in row) + f",{int(label)}\n"
             for row, label in zip(pool.x[start:end], pool.y[start:end], strict=True)]
    with layout.index.open("a", newline="") as handle:
        handle.write("".join(lines))  # one write: a reader sees the batch whole, or almost (see lc samples)
    return end


def accuracy(model_path: str | Path, test: str | Path) -> float:
    """Accuracy of a saved model on a CSV split (for reports; the workers measure their own)."""
    model = DigitsSoftmax()
    model.load(str(model_path))
    return float(model.evaluate(load_samples(test))["accuracy"])


if __name__ == "__main__":
    print(prepare(sys.argv[1] if len(sys.argv) > 1 else "il-digits-data").root)
