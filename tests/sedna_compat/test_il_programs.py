"""Sedna-style incremental-learning programs run unchanged: train, fine-tune, evaluate, infer.

Each program runs as its own process with the env the control plane injects into the
train, eval and inference workers (SEDNA-REFERENCE §2.4), no LC (so no reports).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lc.managers.dataset import count_samples
from tests.sedna_compat.conftest import Digits, read_results, run_program

pytestmark = pytest.mark.processes

MODEL = "model_finetune_tensorflow.pb"
JOB_ENV = {"NAMESPACE": "default", "JOB_NAME": "helmet-detection-demo", "class_names": ",".join(map(str, range(10)))}


def test_train_then_fine_tune_then_evaluate_new_against_old(tmp_path: Path, digits: Digits) -> None:
    initial, round1 = tmp_path / "models" / "initial", tmp_path / "output" / "train" / "1"
    run_program("il/train.py", {**JOB_ENV, "WORKER_NAME": "train-worker-a", "MODEL_URL": str(initial),
                                "TRAIN_DATASET_URL": str(digits.index("few.txt", 30)),
                                "ORIGINAL_DATASET_URL": str(digits.train_index),
                                "epochs": "40"}, tmp_path / "train0.log")
    # interface.py sets BACKEND_TYPE=TENSORFLOW, as Sedna's does: Sedna's file name follows
    assert [p.name for p in initial.iterdir()] == [MODEL]

    split = digits.index("round1.txt", 800, start=30)
    assert count_samples(split, "txt") == 800
    run_program("il/train.py", {**JOB_ENV, "WORKER_NAME": "train-worker-b", "MODEL_URL": str(round1),
                                "BASE_MODEL_URL": str(initial / MODEL),
                                "TRAIN_DATASET_URL": str(split),
                                "ORIGINAL_DATASET_URL": str(digits.train_index),
                                "epochs": "60", "learning_rate": "0.8"}, tmp_path / "train1.log")
    new = round1 / MODEL
    with np.load(new) as saved:
        assert saved["weights"].shape == (64, 10)

    out = run_program("il/eval.py", {**JOB_ENV, "WORKER_NAME": "eval-worker-a",
                                     "MODEL_URLS": f"{new};{initial / MODEL}",
                                     "TEST_DATASET_URL": str(digits.test_index),
                                     "ORIGINAL_DATASET_URL": str(digits.test_index)}, tmp_path / "eval.log")
    results = json.loads(out.strip().splitlines()[-1])
    assert [r["url"] for r in results] == [str(new), str(initial / MODEL)]  # new first, then old
    assert all(r["format"] == "pb" and len(r["metrics"]["precision"]) == 10 for r in results)
    new_acc, old_acc = (r["metrics"]["accuracy"] for r in results)
    assert new_acc > 0.85 and new_acc > old_acc + 0.1, (new_acc, old_acc)


def test_inference_mines_hard_examples_with_a_registered_post_process(tmp_path: Path, digits: Digits) -> None:
    model = tmp_path / "deploy"
    run_program("il/train.py", {**JOB_ENV, "MODEL_URL": str(model),
                                "TRAIN_DATASET_URL": str(digits.index("deploy.txt", 300)),
                                "ORIGINAL_DATASET_URL": str(digits.train_index), "epochs": "60"},
                tmp_path / "train.log")
    results, hard = tmp_path / "results", tmp_path / "hard"
    run_program("il/inference.py", {**JOB_ENV, "WORKER_NAME": "inferworker-a", "MODEL_URL": str(model / MODEL),
                                    "HEM_NAME": "CrossEntropy",
                                    "HEM_PARAMETERS": json.dumps([{"key": "threshold_cross_entropy",
                                                                   "value": "0.9"}]),
                                    "video_url": str(digits.frames), "HE_SAVED_URL": str(hard),
                                    "RESULT_SAVED_URL": str(results)}, tmp_path / "infer.log")
    answered, mined = read_results(results), read_results(hard)
    assert len(answered) == len(digits.test_labels) == 150
    correct = sum(int(r["label"]) == digits.test_labels[r["frame"]] for r in answered.values())
    assert correct / len(answered) > 0.8
    # the code's threshold_cross_entropy=0.5 overrides the CRD's 0.9 (Sedna's precedence): some, not all, hard
    assert 0 < len(mined) < len(answered) and all(answered[n]["hard"] for n in mined)
    assert sum(r["hard"] for r in answered.values()) == len(mined)
