"""Sedna-style joint-inference programs run unchanged against this project's cloud worker.

The edge program (``little_model.py``) reads a folder of frames, mines hard examples with
the algorithm ``get_hem_algorithm_from_config`` builds, and offloads them. With the env this
project's controller injects (it adds ``BIG_MODEL_GRPC_PORT``) it works today. A Sedna
controller's env (REST ``BIG_MODEL_PORT`` only) and a Sedna ``big_model.py`` serving a plain
estimator need the wire work of issue 15 part 2: those two are strict xfails until it lands.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sedna_compat.conftest import Digits, read_results, run_program, start_program
from tests.support.procs import free_port, running, stop, wait_for_port

pytestmark = pytest.mark.processes

SERVICE = "helmet-detection-inference-example"
MODEL = "model_finetune_tensorflow.pb"
HEM = {"HEM_NAME": "CrossEntropy",
       "HEM_PARAMETERS": json.dumps([{"key": "threshold_cross_entropy", "value": "0.5"}])}


@pytest.fixture(scope="module")
def models(digits: Digits, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A weak little model (30 samples) and a strong big one (1000 samples), trained by the IL program."""
    out = tmp_path_factory.mktemp("ji-models")
    for name, count, epochs in (("little", 30, "30"), ("big", 1000, "80")):
        run_program("il/train.py", {"MODEL_URL": str(out / name), "epochs": epochs, "learning_rate": "0.8",
                                    "TRAIN_DATASET_URL": str(digits.index(f"{name}.txt", count)),
                                    "ORIGINAL_DATASET_URL": str(digits.train_index)}, out / f"{name}.log")
    return {"little": out / "little" / MODEL, "big": out / "big" / MODEL}


@pytest.fixture
def project_cloud(digits_models: dict[str, Any], tmp_path: Path) -> Iterator[tuple[int, int]]:
    """This project's cloud worker serving the digits MLP (REST and gRPC)."""
    rest, grpc = free_port(), free_port()
    env = {"SERVICE_NAME": SERVICE, "WORKER_NAME": "cloudworker-a", "MODEL_URL": str(digits_models["cloud"]),
           "BIG_MODEL_BIND_PORT": str(rest), "BIG_MODEL_GRPC_PORT": str(grpc), "INTRA_OP_THREADS": "1"}
    with running("workers.joint_inference.cloud", env, tmp_path / "cloud.log", port=grpc):
        wait_for_port(rest)
        yield rest, grpc


def _edge(tmp_path: Path, digits: Digits, little: Path, env: dict[str, str]) -> dict[str, dict[int, dict]]:
    outputs = {name: tmp_path / name for name in ("all", "hard_cloud", "hard_edge")}
    run_program("ji/little_model/little_model.py", {
        "NAMESPACE": "default", "WORKER_NAME": "edgeworker-a", "MODEL_URL": str(little), **HEM,
        "STATE_DIR": str(tmp_path / "state"), "video_url": str(digits.frames),
        "all_examples_inference_output": str(outputs["all"]),
        "hard_example_cloud_inference_output": str(outputs["hard_cloud"]),
        "hard_example_edge_inference_output": str(outputs["hard_edge"]), **env}, tmp_path / "edge.log")
    return {name: read_results(path) for name, path in outputs.items()}


def _assert_joint_inference_helped(results: dict[str, dict[int, dict]], digits: Digits) -> None:
    final, cloud, edge = results["all"], results["hard_cloud"], results["hard_edge"]
    assert len(final) == len(digits.test_labels)
    hard = {n for n, r in final.items() if r["hard"]}
    assert 0 < len(hard) < len(final) and set(edge) == hard
    assert set(cloud) == hard  # the cloud answered every hard example

    def accuracy(records: dict[int, dict]) -> float:
        return sum(int(r["label"]) == digits.test_labels[r["frame"]] for r in records.values()) / len(records)

    edge_only = {**final, **edge}  # what the edge alone would have answered
    assert accuracy(final) > accuracy(edge_only) + 0.05, (accuracy(final), accuracy(edge_only))


def test_edge_program_offloads_hard_examples_to_the_project_cloud(
        tmp_path: Path, digits: Digits, models: dict[str, Path], project_cloud: tuple[int, int]) -> None:
    rest, grpc = project_cloud
    results = _edge(tmp_path, digits, models["little"], {
        "SERVICE_NAME": SERVICE, "BIG_MODEL_IP": "127.0.0.1", "BIG_MODEL_PORT": str(rest),
        "BIG_MODEL_GRPC_PORT": str(grpc)})
    _assert_joint_inference_helped(results, digits)


def test_edge_program_with_the_env_a_sedna_controller_injects(
        tmp_path: Path, digits: Digits, models: dict[str, Path], project_cloud: tuple[int, int]) -> None:
    rest, _ = project_cloud
    results = _edge(tmp_path, digits, models["little"], {
        "SERVICE_NAME": SERVICE, "BIG_MODEL_IP": "127.0.0.1", "BIG_MODEL_PORT": str(rest)})
    _assert_joint_inference_helped(results, digits)


def test_big_model_program_serves_a_plain_estimator(tmp_path: Path, digits: Digits, models: dict[str, Path]) -> None:
    rest = free_port()
    big = start_program("ji/big_model/big_model.py", {
        "SERVICE_NAME": SERVICE, "WORKER_NAME": "cloudworker-a", "MODEL_URL": str(models["big"]),
        "BIG_MODEL_BIND_IP": "127.0.0.1", "BIG_MODEL_BIND_PORT": str(rest)}, tmp_path / "big.log")
    try:
        wait_for_port(rest, 30, big, tmp_path / "big.log")
        results = _edge(tmp_path, digits, models["little"], {
            "SERVICE_NAME": SERVICE, "BIG_MODEL_IP": "127.0.0.1", "BIG_MODEL_PORT": str(rest)})
        _assert_joint_inference_helped(results, digits)
    finally:
        stop(big)
