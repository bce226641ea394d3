"""The joint-inference workers as real processes on 127.0.0.1.

The cloud worker answers OIP v2 over REST and gRPC and Sedna's ``/predict``; the
edge worker keeps answering every request while the cloud worker is killed and
restarted mid-stream, and the hard examples it kept meanwhile are offloaded
afterwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from examples.joint_inference.digits.models import digits_split
from sedna.service.inference import GrpcInferenceClient, RestInferenceClient
from tests.support.procs import free_port, running, start_module, stop, wait_for_port

pytestmark = pytest.mark.processes

SERVICE = "digits"


def cloud_env(models: dict[str, Any], rest: int, grpc: int, **extra: str) -> dict[str, str]:
    return {"SERVICE_NAME": SERVICE, "WORKER_NAME": "cloud-0", "MODEL_URL": str(models["cloud"]),
            "BIG_MODEL_BIND_PORT": str(rest), "BIG_MODEL_GRPC_PORT": str(grpc), "INTRA_OP_THREADS": "1", **extra}


@pytest.fixture
def cloud(digits_models: dict[str, Any], tmp_path: Path) -> Iterator[tuple[int, int]]:
    rest, grpc = free_port(), free_port()
    with running("workers.joint_inference.cloud", cloud_env(digits_models, rest, grpc), tmp_path / "cloud.log",
                 port=grpc):
        wait_for_port(rest)
        yield rest, grpc


def test_cloud_worker_answers_rest_and_grpc_with_the_models_own_names(cloud: tuple[int, int]) -> None:
    rest, grpc = cloud
    x = digits_split().x_test[:3]
    with RestInferenceClient(f"http://127.0.0.1:{rest}") as client:
        meta = client.model_metadata(SERVICE)
        by_rest = client.infer(SERVICE, {"x": x}).outputs
    with GrpcInferenceClient("127.0.0.1", grpc) as client:
        by_grpc = client.infer(SERVICE, {"x": x}).outputs
    assert [i["name"] for i in meta["inputs"]] == ["x"]
    assert {o["name"] for o in meta["outputs"]} == {"label", "probabilities"}
    np.testing.assert_allclose(by_rest["probabilities"], by_grpc["probabilities"], rtol=1e-6)
    np.testing.assert_array_equal(by_grpc["label"], by_grpc["probabilities"].argmax(1))
    assert by_grpc["probabilities"].shape == (3, 10)


def test_cloud_worker_answers_sedna_predict(cloud: tuple[int, int]) -> None:
    rest, _ = cloud
    x = digits_split().x_test[:2]
    info = httpx.get(f"http://127.0.0.1:{rest}/{SERVICE}").json()
    response = httpx.post(f"http://127.0.0.1:{rest}/{SERVICE}/predict", json={"data": x.tolist()})
    assert response.status_code == 200, response.text
    assert any(entry["path"].endswith("/predict") for entry in info["infos"])
    result = np.asarray(response.json()["result"])
    assert result.shape[0] == 2


@pytest.mark.parametrize(("model_url", "message"), [
    ("/nonexistent/cloud.onnx", "'/nonexistent/cloud.onnx' does not exist"),
    ("CORRUPT", "is not a loadable ONNX model"),
])
def test_cloud_worker_with_bad_model_fails_naming_the_path(tmp_path: Path, model_url: str, message: str) -> None:
    if model_url == "CORRUPT":
        model_url = str(tmp_path / "corrupt.onnx")
        Path(model_url).write_bytes(b"\x00garbage")
    log = tmp_path / "cloud.log"
    proc = start_module("workers.joint_inference.cloud", {"MODEL_URL": model_url, "BIG_MODEL_BIND_PORT": "0",
                                                           "BIG_MODEL_GRPC_PORT": "0"}, log)
    assert proc.wait(60) == 2
    assert message in log.read_text()


def test_edge_keeps_answering_while_the_cloud_restarts(digits_models: dict[str, Any], tmp_path: Path) -> None:
    rest, grpc = free_port(), free_port()
    edge_rest, edge_grpc = free_port(), free_port()
    state = tmp_path / "edge-state"
    edge_env = {"SERVICE_NAME": SERVICE, "WORKER_NAME": "edge-0", "MODEL_URL": str(digits_models["edge"]),
                "BIG_MODEL_IP": "127.0.0.1", "BIG_MODEL_PORT": str(rest), "BIG_MODEL_GRPC_PORT": str(grpc),
                "EDGE_BIND_PORT": str(edge_rest), "EDGE_GRPC_PORT": str(edge_grpc), "HEM_NAME": "CloudOnly",
                "BIG_MODEL_TIMEOUT": "0.5", "STATE_DIR": str(state)}
    cloud = start_module("workers.joint_inference.cloud", cloud_env(digits_models, rest, grpc), tmp_path / "c.log")
    x = digits_split().x_test
    where: list[str] = []
    try:
        wait_for_port(grpc, proc=cloud, log=tmp_path / "c.log")
        with running("workers.joint_inference.edge", edge_env, tmp_path / "edge.log", port=edge_grpc), \
                GrpcInferenceClient("127.0.0.1", edge_grpc, timeout=10.0) as client:
            def ask(i: int) -> None:
                result = client.infer(SERVICE, {"x": x[i % len(x)][None, :]})  # raises on any failure
                assert result.outputs["probabilities"].shape == (1, 10)
                assert result.parameters["hard_example"] is True
                where.append(result.parameters["computed_at"])

            for i in range(10):
                ask(i)
            stop(cloud)  # the cloud dies mid-stream
            for i in range(10, 40):
                ask(i)
            cloud = start_module("workers.joint_inference.cloud", cloud_env(digits_models, rest, grpc),
                                 tmp_path / "c.log")
            wait_for_port(grpc, proc=cloud, log=tmp_path / "c.log")
            deadline = time.monotonic() + 60
            i = 40
            while time.monotonic() < deadline and (where[-1] != "cloud" or pending(state) > 0):
                ask(i)
                i += 1
                time.sleep(0.1)
            metrics = httpx.get(f"http://127.0.0.1:{edge_rest}/metrics").text
    finally:
        stop(cloud)
    assert where[:10] == ["cloud"] * 10
    assert "edge" in where[10:40]  # answered locally while the cloud was down: no request failed
    assert where[-1] == "cloud"
    assert pending(state) == 0  # every hard example kept meanwhile was offloaded afterwards
    assert answered(state) == len(where)
    uploaded = _metric(metrics, "sedna_joint_uploaded_later_total")
    assert uploaded >= where[10:40].count("edge") > 0


def pending(state: Path) -> int:
    return sum(json.loads(p.read_text())["state"] == "pending" for p in (state / "hard_examples").glob("*.json"))


def answered(state: Path) -> int:
    return sum(json.loads(p.read_text())["state"] == "answered" for p in (state / "hard_examples").glob("*.json"))


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics:\n{text}")


@pytest.mark.parametrize(("max_batch", "cloud_requests"), [("", 1), ("1", 12)])
def test_the_hard_rows_of_one_edge_request_reach_the_cloud_worker_together(
        digits_models: dict[str, Any], tmp_path: Path, max_batch: str, cloud_requests: int) -> None:
    rest, grpc = free_port(), free_port()
    edge_grpc = free_port()
    edge_env = {"SERVICE_NAME": SERVICE, "WORKER_NAME": "edge-0", "MODEL_URL": str(digits_models["edge"]),
                "BIG_MODEL_IP": "127.0.0.1", "BIG_MODEL_PORT": str(rest), "BIG_MODEL_GRPC_PORT": str(grpc),
                "EDGE_BIND_PORT": str(free_port()), "EDGE_GRPC_PORT": str(edge_grpc), "HEM_NAME": "CloudOnly",
                "BIG_MODEL_TIMEOUT": "5", "BIG_MODEL_MAX_BATCH": max_batch, "STATE_DIR": str(tmp_path / "state")}
    x = digits_split().x_test[:12]
    with running("workers.joint_inference.cloud", cloud_env(digits_models, rest, grpc), tmp_path / "c.log",
                 port=grpc), \
            running("workers.joint_inference.edge", edge_env, tmp_path / "edge.log", port=edge_grpc), \
            GrpcInferenceClient("127.0.0.1", edge_grpc, timeout=10.0) as client:
        wait_for_port(rest)
        result = client.infer(SERVICE, {"x": x})
        metrics = httpx.get(f"http://127.0.0.1:{rest}/metrics").text
        with GrpcInferenceClient("127.0.0.1", grpc) as cloud_client:
            by_cloud = cloud_client.infer(SERVICE, {"x": x}).outputs["probabilities"]
    assert result.parameters["computed_at"] == ",".join(["cloud"] * 12)
    np.testing.assert_allclose(result.outputs["probabilities"], by_cloud, rtol=1e-5)
    assert _metric(metrics, "sedna_inference_batch_size_sum") == 12
    assert _metric(metrics, "sedna_inference_batch_size_count") == cloud_requests
