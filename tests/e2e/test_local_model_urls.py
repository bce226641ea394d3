"""``sedna local up`` with Models at ``s3://`` and ``http://`` URLs: the storage initializer fetches them.

Real processes: a moto S3 server and an HTTP server on 127.0.0.1 hold tiny digits models, the
cluster (GM, LCs, broker) is the one ``sedna local up`` starts, and the joint-inference workers are
the real ones, started by the local runtime after their ``storage-initializer`` init container.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from examples.joint_inference.digits import run_local
from sedna.common import s3
from tests.e2e.local_cluster import sedna, tiny_model
from tests.support.procs import free_port, running
from tests.support.waiting import eventually

pytest.importorskip("moto")
pytestmark = [pytest.mark.slow, pytest.mark.processes]

KEYS = {"ACCESS_KEY_ID": "sedna-test", "SECRET_ACCESS_KEY": "sedna-test-secret"}


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A moto server holding s3://models/digits/cloud.onnx and an HTTP server serving /digits/edge.onnx."""
    root = tmp_path_factory.mktemp("sources")
    (root / "www" / "digits").mkdir(parents=True)
    tiny_model(root / "www" / "digits" / "edge.onnx", 1)
    tiny_model(root / "cloud.onnx", 2)
    s3_port, http_port = free_port(), free_port()
    endpoint = f"127.0.0.1:{s3_port}"
    with running("moto.server", {}, root / "moto.log", s3_port, ["-H", "127.0.0.1", "-p", str(s3_port)]), \
            running("http.server", {}, root / "http.log", http_port,
                    ["-b", "127.0.0.1", "-d", str(root / "www"), str(http_port)]):
        client = s3.S3Settings.from_env({"S3_ENDPOINT_URL": endpoint, "S3_USE_HTTPS": "0", **KEYS}).client()
        client.create_bucket(Bucket="models")
        client.put_object(Bucket="models", Key="digits/cloud.onnx", Body=(root / "cloud.onnx").read_bytes())
        yield {"s3": endpoint, "http": f"http://127.0.0.1:{http_port}"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state = tmp_path_factory.mktemp("cluster") / "state"
    up = sedna(state, "local", "up", "--nodes", "cloud,edge-0")
    assert up.returncode == 0, up.stderr
    try:
        yield state
    finally:
        sedna(state, "local", "down")


def _secret(endpoint: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "models-s3", "annotations": {"s3-endpoint": endpoint, "s3-usehttps": "0"}},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in KEYS.items()}}


def _apply(state: Path, tmp: Path, edge_url: str, cloud_url: str, credential: str = "models-s3",
           *extra: dict[str, Any]) -> None:
    docs = [d for d in yaml.safe_load_all(run_local.manifests({"edge": "e", "cloud": "c"})) if d]
    for doc in docs:
        if doc["kind"] == "Model":
            cloud = doc["metadata"]["name"].endswith("-cloud")
            doc["spec"]["url"] = cloud_url if cloud else edge_url
            if cloud:
                doc["spec"]["credentialName"] = credential
    manifest = tmp / "resources.yaml"
    manifest.write_text(yaml.safe_dump_all([*extra, *docs], sort_keys=False))
    applied = sedna(state, "apply", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr


def _ji(state: Path) -> dict[str, Any]:
    done = sedna(state, "get", "ji", "digits", "-o", "json")
    return json.loads(done.stdout) if done.returncode == 0 else {}


def _condition(state: Path, kind: str) -> dict[str, Any]:
    conditions = (_ji(state).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind and c.get("status") == "True"), {})


@pytest.fixture
def clean(cluster: Path) -> Iterator[Path]:
    yield cluster
    sedna(cluster, "delete", "ji", "digits")
    eventually(lambda: json.loads(sedna(cluster, "get", "pods", "-o", "json").stdout)["items"] == [], timeout=60,
               message="the service's Pods gone")


def test_models_at_s3_and_http_urls_reach_the_workers_and_the_service_answers(
        clean: Path, sources: dict[str, str], tmp_path: Path) -> None:
    state = clean
    edge_url, cloud_url = f"{sources['http']}/digits/edge.onnx", "s3://models/digits/cloud.onnx"
    _apply(state, tmp_path, edge_url, cloud_url, "models-s3", _secret(sources["s3"]))

    run_local.wait_running(state, timeout=120)
    host = run_local.edge_pod_ip(state)
    run_local.wait_listening(host, run_local.EDGE_GRPC_PORT)
    from sedna.cli._local_secrets import edge_token
    from sedna.service.inference import GrpcInferenceClient

    with GrpcInferenceClient(host, run_local.EDGE_GRPC_PORT, token=edge_token(state), timeout=10.0) as client:
        result = client.infer("digits", {"x": np.ones((1, 64), np.float32)})
    assert np.asarray(result.outputs["probabilities"]).shape[-1] == 10

    pods = json.loads(sedna(state, "get", "pods", "-o", "json").stdout)["items"]
    inits = [c for p in pods for c in p["status"].get("initContainerStatuses") or []]
    assert len(inits) == 2 and all(c["state"]["terminated"]["reason"] == "Completed" for c in inits)
    logs = " ".join(f.read_text() for f in state.rglob("*_storage-initializer.log"))
    assert cloud_url in logs and edge_url in logs
    downloaded = [p for p in state.rglob("cloud.onnx") if "volumes" in p.parts and "digits-cloud" in str(p)]
    assert len(downloaded) == 1  # in the Pod's emptyDir, under its STATE_DIR area


def test_a_model_url_that_cannot_be_fetched_fails_the_service_naming_it(
        clean: Path, sources: dict[str, str], tmp_path: Path) -> None:
    state = clean
    missing = f"{sources['http']}/digits/missing.onnx"
    _apply(state, tmp_path, missing, "s3://models/digits/cloud.onnx", "models-s3", _secret(sources["s3"]))

    failed = eventually(lambda: _condition(state, "Failed"), timeout=90, message="a Failed condition")

    assert missing in failed["message"] and "Init:Error" in failed["message"]
    assert (_ji(state)["status"].get("phase")) == "Failed"


def test_a_missing_credential_secret_keeps_the_service_pending_naming_it(
        clean: Path, sources: dict[str, str], tmp_path: Path) -> None:
    state = clean
    _apply(state, tmp_path, f"{sources['http']}/digits/edge.onnx", "s3://models/digits/cloud.onnx", "absent-s3")

    pending = eventually(lambda: _condition(state, "Pending"), timeout=60, message="a Pending condition")

    assert "s3://models/digits/cloud.onnx: the credential Secret 'absent-s3' does not exist" in pending["message"]
    assert json.loads(sedna(state, "get", "pods", "-o", "json").stdout)["items"] == []  # nothing half-configured
