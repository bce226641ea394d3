"""The cloud worker with ``SERVING_REPLICAS``: one server process per replica on the same ports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from examples.joint_inference.digits.models import digits_split
from sedna.service.inference import GrpcInferenceClient
from tests.joint_inference.test_workers import SERVICE, cloud_env
from tests.support.procs import free_port, running, start_module, wait_for_port
from tests.support.waiting import eventually

pytestmark = pytest.mark.processes


def test_cloud_worker_serves_from_two_replicas_and_counts_for_both(digits_models: dict[str, Any],
                                                                   tmp_path: Path) -> None:
    rest, grpc = free_port(), free_port()
    env = cloud_env(digits_models, rest, grpc, SERVING_REPLICAS="2")
    x = digits_split().x_test[:2]
    with running("workers.joint_inference.cloud", env, tmp_path / "cloud.log", port=grpc) as proc:
        wait_for_port(rest)
        # one replica may listen before the other: wait for both
        eventually(lambda: "with 2 replicas" in (tmp_path / "cloud.log").read_text(), 120, 0.1,
                   "the cloud worker to report both replicas")
        for _ in range(12):  # fresh connections: the kernel spreads them over the replicas
            with GrpcInferenceClient("127.0.0.1", grpc) as client:
                assert client.infer(SERVICE, {"x": x}).outputs["probabilities"].shape == (2, 10)
        predicted = httpx.post(f"http://127.0.0.1:{rest}/{SERVICE}/predict", json={"data": x.tolist()},
                               trust_env=False)
        metrics = httpx.get(f"http://127.0.0.1:{rest}/metrics", trust_env=False).text
        import psutil

        children = psutil.Process(proc.pid).children()
    assert predicted.status_code == 200 and np.asarray(predicted.json()["result"]).shape[0] == 2
    assert len(children) == 2
    assert f'sedna_inference_requests_total{{model="{SERVICE}",protocol="grpc"}} 12.0' in metrics
    log = (tmp_path / "cloud.log").read_text()
    assert "as replica 0" in log and "as replica 1" in log


def test_cloud_worker_replicas_with_a_bad_model_fail_naming_the_path(tmp_path: Path) -> None:
    log = tmp_path / "cloud.log"
    proc = start_module("workers.joint_inference.cloud", {"MODEL_URL": "/nonexistent/cloud.onnx",
                                                           "BIG_MODEL_BIND_PORT": "0", "BIG_MODEL_GRPC_PORT": "0",
                                                           "SERVING_REPLICAS": "2"}, log)
    assert proc.wait(120) == 2
    text = log.read_text()
    assert "'/nonexistent/cloud.onnx' does not exist" in text
    assert "cannot start the cloud worker's replicas" in text
