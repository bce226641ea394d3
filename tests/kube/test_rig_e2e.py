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


@pytest.fixture
def s3_server(tmp_path: Path) -> Iterator[dict[str, str]]:
    pytest.importorskip("moto")
    from tests.support.procs import free_port, running

    port = free_port()
    env = {"S3_ENDPOINT_URL": f"127.0.0.1:{port}", "S3_USE_HTTPS": "0", "ACCESS_KEY_ID": "rig",
           "SECRET_ACCESS_KEY": "rig-secret"}
    with running("moto.server", {}, tmp_path / "moto.log", port, ["-H", "127.0.0.1", "-p", str(port)]):
        yield env


def _credential_secret(rig: Rig, s3: dict[str, str]) -> None:
    import kubernetes.client

    assert rig.cluster is not None
    kubernetes.client.CoreV1Api(rig.cluster.api_client).create_namespaced_secret("default", {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "minio", "annotations": {"s3-endpoint": s3["S3_ENDPOINT_URL"], "s3-usehttps": "0"}},
        "stringData": {"ACCESS_KEY_ID": s3["ACCESS_KEY_ID"], "SECRET_ACCESS_KEY": s3["SECRET_ACCESS_KEY"]}})


def test_s3_models_are_downloaded_before_the_workers_start(rig: Rig, s3_server: dict[str, str],
                                                          digits_models: dict[str, Any]) -> None:
    from sedna.common import s3

    client = s3.S3Settings.from_env(s3_server).client()
    client.create_bucket(Bucket="models")
    for side in ("edge", "cloud"):
        client.upload_file(str(digits_models[side]), "models", f"digits/{side}.onnx")
    _credential_secret(rig, s3_server)
    assert rig.cluster is not None
    for obj in digits_objects("s3://models/digits/edge.onnx", "s3://models/digits/cloud.onnx", "minio"):
        rig.cluster.create(obj)

    running_status(rig)

    downloaded = sorted(p.relative_to(rig.root / "kubelet") for p in (rig.root / "kubelet").rglob("*.onnx"))
    assert [p.parts[-3:] for p in downloaded] == [("models", "digits", "cloud.onnx"), ("models", "digits", "edge.onnx")]


def test_a_model_url_that_cannot_be_fetched_fails_the_service_naming_the_url(
        rig: Rig, tmp_path: Path, digits_models: dict[str, Any]) -> None:
    from tests.support.procs import free_port, running

    www = tmp_path / "www"
    www.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}/digits/missing.onnx"
    assert rig.cluster is not None
    cluster = rig.cluster
    with running("http.server", {}, tmp_path / "http.log", port, ["-b", "127.0.0.1", "-d", str(www), str(port)]):
        for obj in digits_objects(str(digits_models["edge"]), url):
            cluster.create(obj)

        def failed() -> dict[str, Any] | None:
            status = cluster.get(JOINT_INFERENCE_SERVICE, "default", "digits").get("status") or {}
            return next((c for c in status.get("conditions") or [] if c["type"] == "Failed" and c["status"] == "True"),
                        None)

        condition = eventually(failed, timeout=90, interval=0.3, message="the service Failed")
    assert url in condition["message"] and "404" in condition["message"], condition
    assert "Init:Error" in condition["message"]
    cloud_pods = [p for p in cluster.list(POD, "default") if p["metadata"]["labels"].get(f"{LABEL}/worker-type") ==
                  "cloud"]
    assert all(p["status"].get("phase") != "Running" for p in cloud_pods)  # never started half-configured


def test_the_federated_digits_job_completes_its_rounds(tmp_path: Path) -> None:
    from examples.federated_learning.digits import run_local as fl
    from examples.federated_learning.digits.prepare import prepare
    from gm.cluster.interface import FEDERATED_LEARNING_JOB

    rounds = 3
    data = prepare(tmp_path / "data")
    docs = [d for d in yaml.safe_load_all(fl.manifests(data, tmp_path / "model", rounds)) if d]
    with Rig(tmp_path / "rig", nodes=("cloud", "edge-0", "edge-1", "edge-2")) as rig:
        assert rig.cluster is not None
        cluster = rig.cluster
        for doc in docs:
            doc["metadata"]["namespace"] = "default"
            cluster.create(doc)

        def done() -> dict[str, Any] | None:
            status = cluster.get(FEDERATED_LEARNING_JOB, "default", fl.JOB).get("status") or {}
            return status if status.get("phase") in ("Succeeded", "Failed") else None

        try:
            status = eventually(done, timeout=180, interval=0.5, message="the FL job finished")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{rig.logs()}") from None
        assert status["phase"] == "Succeeded", (status, rig.logs())
        # the last round reports travel worker -> LC outbox -> hub, the Pod's exit kubelet -> API server:
        # the reports may land after the phase (about a second later under load)
        eventually(lambda: (cluster.get(FEDERATED_LEARNING_JOB, "default", fl.JOB)["status"].get("currentRound")
                            == rounds), timeout=30, interval=0.3, message=f"status.currentRound {rounds}")
        pods = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in cluster.list(POD, "default")}
        assert {pods[f"{fl.JOB}-train-{k}"] for k in range(3)} == {"edge-0", "edge-1", "edge-2"}


def test_an_incremental_learning_job_trains_evaluates_and_deploys_a_new_model(tmp_path: Path) -> None:
    import json

    from examples.incremental_learning.digits.prepare import feed, prepare
    from examples.incremental_learning.digits.run import manifest
    from gm.cluster.interface import INCREMENTAL_LEARNING_JOB
    from tests.support.procs import free_port

    layout = prepare(tmp_path / "data")
    docs = [d for d in yaml.safe_load_all(manifest(layout.root, free_port(), free_port())) if d]
    with Rig(tmp_path / "rig") as rig:
        assert rig.cluster is not None
        cluster = rig.cluster
        for doc in docs:
            doc["metadata"]["namespace"] = "default"
            cluster.create(doc)
        feed(layout, 0, 300)  # past the trigger's 200 samples

        def deployed() -> bool:
            status = cluster.get(INCREMENTAL_LEARNING_JOB, "default", "digits").get("status") or {}
            seen = {(json.loads(c.get("data") or "{}").get("round"), c.get("stage"), c.get("type"))
                    for c in status.get("conditions") or []}
            return (1, "Deploy", "Completed") in seen

        try:
            eventually(deployed, timeout=180, interval=0.5, message="round 1 deployed")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{rig.logs()}") from None
    assert layout.deploy_model.read_bytes() != layout.initial_model.read_bytes()  # the new model is in place
