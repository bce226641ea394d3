"""End to end on the Kubernetes rig: the digits JointInferenceService from apply to counters in status."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from gm.cluster.interface import JOINT_INFERENCE_SERVICE, POD
from tests.kube import manifests
from tests.kube.rig import Rig
from tests.support.waiting import eventually

pytestmark = [pytest.mark.processes, pytest.mark.slow,
              pytest.mark.skipif(manifests.kubectl() is None, reason="kubectl (kubernetes-client) is missing")]
EXAMPLE = manifests.ROOT / "examples" / "joint_inference" / "digits" / "resources.yaml"
LABEL = "jointinferenceservice.sedna.io"


def digits_objects(edge_url: str, cloud_url: str, credential: str = "") -> list[dict[str, Any]]:
    """The example's Model and JointInferenceService objects with these model URLs, in namespace default."""
    docs = [copy.deepcopy(d) for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    for doc in docs:
        doc["metadata"]["namespace"] = "default"
        if doc["kind"] == "Model":
            doc["spec"]["url"] = edge_url if doc["metadata"]["name"] == "digits-edge" else cloud_url
            if credential:
                doc["spec"]["credentialName"] = credential
    return docs


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    with Rig(tmp_path) as started:
        yield started


def running_status(rig: Rig, timeout: float = 120) -> dict[str, Any]:
    assert rig.cluster is not None
    cluster = rig.cluster

    def status() -> dict[str, Any] | None:
        found = cluster.get(JOINT_INFERENCE_SERVICE, "default", "digits").get("status") or {}
        return found if found.get("phase") == "Running" else None

    try:
        return eventually(status, timeout=timeout, interval=0.3, message="the JointInferenceService Running")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{rig.logs()}") from None


def edge_ip(rig: Rig) -> str:
    assert rig.cluster is not None
    for pod in rig.cluster.list(POD, "default"):
        if pod["metadata"]["labels"].get(f"{LABEL}/worker-type") == "edge":
            return str(pod["status"]["podIP"])
    raise AssertionError("no edge pod")


def test_the_digits_service_runs_and_its_counters_reach_the_status(rig: Rig, digits_models: dict[str, Any]) -> None:
    assert rig.cluster is not None
    for obj in digits_objects(str(digits_models["edge"]), str(digits_models["cloud"])):
        rig.cluster.create(obj)

    running_status(rig)

    from examples.joint_inference.digits import run_local
    from sedna.service.inference import GrpcInferenceClient

    host = edge_ip(rig)
    run_local.wait_listening(host, run_local.EDGE_GRPC_PORT)
    with GrpcInferenceClient(host, run_local.EDGE_GRPC_PORT, timeout=10.0) as client:
        for _ in range(5):
            result = client.infer("digits", {"x": np.ones((1, 64), np.float32)})
    assert np.asarray(result.outputs["probabilities"]).shape[-1] == 10
    cluster = rig.cluster
    inference = eventually(
        lambda: (cluster.get(JOINT_INFERENCE_SERVICE, "default", "digits")["status"].get("inference") or {}).get(
            "count", 0) >= 5 and cluster.get(JOINT_INFERENCE_SERVICE, "default", "digits")["status"]["inference"],
        timeout=60, interval=0.3, message="status.inference counting the 5 requests")
    assert inference["count"] >= 5, rig.logs()
