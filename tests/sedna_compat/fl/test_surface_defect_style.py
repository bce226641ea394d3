"""Sedna's federated-learning example programs run as processes against each other.

``aggregation_worker/aggregate.py`` and ``training_worker/train.py`` are the glue code of
Sedna's ``examples/federated_learning/surface_defect_detection`` (``AggregationServer`` from
``sedna.service.server``, ``FederatedLearning(estimator=Estimator, aggregation=...)``,
class-level ``Context.get_parameters``, ``BaseConfig``, ``TxtDataParse`` over an index of
``path,label`` lines with a ``func`` returning ``[x, y]``), with the Keras CNN swapped for a
numpy stand-in with the same methods and 8x8 digits (scikit-learn, no download) as images.
They run as scripts, as in Sedna's images, with the environment the GM gives them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.procs import free_port, stop

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
JOB = "surface-defect"

pytestmark = [pytest.mark.slow, pytest.mark.processes]


def _write_images(folder: Path, x: np.ndarray, y: np.ndarray, prefix: str) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        np.save(folder / f"{prefix}{i:04d}.npy", image.reshape(8, 8).astype(np.float32).reshape(64))
        lines.append(f"{folder.name}/{prefix}{i:04d}.npy,{int(label)}")
    return lines


def prepare(work: Path) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """Two edge datasets (label-skewed halves) and one test set: ``(edge dirs, test x, test y)``."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    test_lines = [f"../{line}" for line in _write_images(work / "data" / "test", x[:300], y[:300], "t")]
    rest_x, rest_y = x[300:], y[300:]
    edges = []
    for i, mask in enumerate((rest_y < 5, rest_y >= 5)):
        # mostly one half of the labels each, plus a tenth of the other half
        other = np.flatnonzero(~mask)[i::10]
        pick = np.concatenate([np.flatnonzero(mask), other])
        edge = work / "data" / f"edge{i}"
        lines = _write_images(edge / "images", rest_x[pick], rest_y[pick], "s")
        (edge / "train.txt").write_text("\n".join(f"images/{line.split('/', 1)[1]}" for line in lines) + "\n")
        (edge / "test.txt").write_text("\n".join(test_lines) + "\n")
        edges.append(edge)
    return edges, x[:300], y[:300]


def accuracy_of(weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """Test accuracy of a global model (the stand-in's softmax regression: layer_0 = W, layer_1 = b)."""
    logits = (x / 16.0) @ weights["layer_0"] + weights["layer_1"]
    return float((logits.argmax(axis=1) == y).mean())


def run_script(script: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``python <script>`` as Sedna's images run it: the script's folder first on sys.path."""
    full = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as handle:
        return subprocess.Popen([sys.executable, str(script)], env=full, stdout=handle, stderr=subprocess.STDOUT,
                                cwd=script.parent, start_new_session=True)


def test_sedna_style_aggregator_and_trainers_complete_their_rounds_and_improve_the_model(tmp_path: Path) -> None:
    edges, test_x, test_y = prepare(tmp_path)
    port = free_port()
    common = {"JOB_NAME": JOB, "NAMESPACE": "default", "LC_SERVER": "http://127.0.0.1:9",
              "aggregation_algorithm": "FedAvg"}
    agg = run_script(HERE / "aggregation_worker" / "aggregate.py", {
        **common, "WORKER_NAME": f"{JOB}-aggregation", "AGG_BIND_IP": "127.0.0.1", "AGG_BIND_PORT": str(port),
        "exit_round": "5", "participants_count": "2", "MODEL_URL": str(tmp_path / "agg"), "CHECKPOINT_KEEP": "0"},
        tmp_path / "aggregator.log")
    trainers = [run_script(HERE / "training_worker" / "train.py", {
        **common, "WORKER_NAME": f"{JOB}-train-{i}", "AGG_IP": "127.0.0.1", "AGG_PORT": str(port),
        "TRAIN_DATASET_URL": str(edge / "train.txt"), "TEST_DATASET_URL": str(edge / "test.txt"),
        "MODEL_URL": str(edge / "model"), "epochs": "1", "batch_size": "32", "learning_rate": "0.05"},
        tmp_path / f"train-{i}.log") for i, edge in enumerate(edges)]
    procs = [agg, *trainers]
    try:
        codes = [p.wait(120) for p in procs]
    finally:
        for p in procs:
            stop(p)
    logs = {p.name: p.read_text() for p in tmp_path.glob("*.log")}
    assert codes == [0, 0, 0], logs

    state = json.loads((tmp_path / "agg" / "checkpoints" / "state.json").read_text())
    rounds = state["history"]
    assert [r["round"] for r in rounds] == [1, 2, 3, 4, 5]
    assert all(r["clients"] == [f"{JOB}-train-0", f"{JOB}-train-1"] for r in rounds)
    ckpt = tmp_path / "agg" / "checkpoints"
    accuracy = [accuracy_of(dict(np.load(ckpt / f"round-{r:06d}.npz")), test_x, test_y) for r in range(1, 6)]
    assert accuracy[-1] > accuracy[0] + 0.05, accuracy
    assert accuracy[-1] > 0.8, accuracy
    with np.load(tmp_path / "agg" / "model.npz") as final:
        final_weights = dict(final)
    for i, edge in enumerate(edges):
        assert "trained Estimator" in logs[f"train-{i}.log"]  # train() returned the estimator
        with np.load(edge / "model" / f"{JOB}-train-{i}.npz") as saved:  # estimator.save() of the final model
            np.testing.assert_allclose(saved["w"], final_weights["layer_0"])

    out = subprocess.run([sys.executable, str(HERE / "training_worker" / "inference.py")], check=True,
                         capture_output=True, text=True, cwd=HERE / "training_worker", timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "WORKER_NAME": f"{JOB}-train-0",
                              "MODEL_URL": str(edges[0] / "model"), "TEST_DATASET_URL": str(edges[0] / "test.txt"),
                              "ORIGINAL_DATASET_URL": str(edges[0] / "test.txt"), "LC_SERVER": "http://127.0.0.1:9"})
    predicted = np.array(json.loads(out.stdout.strip().splitlines()[-1]))
    assert float((predicted == test_y).mean()) == pytest.approx(accuracy[-1], abs=1e-9)
