"""A Sedna-style CSVDataParse program sees exactly the rows the LC counts, as pandas objects."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lc.incremental import samples
from lc.managers.dataset import count_samples
from tests.sedna_compat.conftest import run_program

pytestmark = pytest.mark.processes


def _thermal_csv(path: Path, rows: int) -> None:
    rng = np.random.default_rng(7)
    lines = ["# exported from the comfort survey", "season,city,temperature,humidity,notes,thermal", ""]
    for i in range(rows):
        temperature, humidity = rng.uniform(10, 35), rng.uniform(20, 90)
        label = int(temperature + 0.1 * humidity > 27)
        notes = f'"window open\nfan on, row {i}"' if i % 5 == 0 else "none"
        lines.append(f"summer,city-{i % 3},{temperature:.2f},{humidity:.1f},{notes},{label}")
        if i % 7 == 0:
            lines += ["", "# checked by hand"]
    path.write_text("\n".join(lines) + "\n")


def test_csv_rows_with_quoted_newlines_train_a_model(tmp_path: Path) -> None:
    index = tmp_path / "thermal.csv"
    _thermal_csv(index, 120)
    out = tmp_path / "model"
    printed = run_program("tabular/train.py", {"TRAIN_DATASET_URL": str(index), "MODEL_URL": str(out),
                                               "MODEL_NAME": "thermal.npz", "early_stopping_rounds": "10"},
                          tmp_path / "train.log")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples"] == count_samples(index, "csv") == len(samples.read_index(str(index), "csv").lines)
    assert summary["samples"] == 120
    assert summary["columns"] == ["temperature", "humidity"] and summary["labels"] == [0, 1]
    assert summary["attribute"] == {"attribute": ["season", "city"]}
    with np.load(out / "thermal.npz") as saved:
        assert saved["coef"].shape == (3,)
    assert "Estimator object" in printed  # train() returns the trained estimator, as Sedna's does
