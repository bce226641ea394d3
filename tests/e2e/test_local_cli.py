"""``sedna local up`` → apply the digits YAML → workers run → infer through the edge → delete → down.

Real processes end to end: the CLI, the GM (local backend, API, controllers, hub), the embedded
MQTT broker, one LC per node and the two joint-inference workers the runtime starts from the
YAML; device requests go from ``sedna device simulate`` through the broker to the edge worker.
Models are tiny ONNX files written here (a 64→10 linear layer), not the trained digits models.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest

from examples.joint_inference.digits import run_local
from tests.support.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.processes]
ROOT = Path(__file__).resolve().parents[2]


def tiny_model(path: Path, seed: int) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(seed).normal(size=(64, 10)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probabilities"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 10])],
        [numpy_helper.from_array(weights, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def sedna(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sedna", *args, "--state-dir", str(state)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def worker_processes(state: Path) -> list[psutil.Process]:
    """Processes of this cluster: GM/LC (marked env) and workers (holding one of its worker tokens)."""
    tokens_file = state / "worker-tokens"
    tokens = {line.split("=", 1)[1] for line in tokens_file.read_text().split()} if tokens_file.exists() else set()
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            env = proc.environ()
        except psutil.Error:
            continue
        if env.get("SEDNA_LOCAL_STATE_DIR") == str(state) or env.get("LC_TOKEN") in tokens:
            found.append(proc)
    return found


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Path]:
    state = tmp_path / "state"
    up = sedna(state, "local", "up", "--nodes", "cloud,edge-0")
    assert up.returncode == 0, up.stderr
    try:
        yield state
    finally:
        sedna(state, "local", "down")


def test_the_digits_service_runs_from_yaml_and_leaves_nothing_behind(cluster: Path, tmp_path: Path) -> None:
    state = cluster
    assert "already up" in sedna(state, "local", "up", "--nodes", "cloud,edge-0").stdout  # idempotent
    tiny_model(tmp_path / "edge.onnx", 1)
    tiny_model(tmp_path / "cloud.onnx", 2)
    manifest = tmp_path / "resources.yaml"
    manifest.write_text(run_local.manifests({"edge": tmp_path / "edge.onnx", "cloud": tmp_path / "cloud.onnx"}))

    applied = sedna(state, "apply", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.split("\n")[:3] == ["model/digits-edge created", "model/digits-cloud created",
                                              "jointinferenceservice/digits created"]
    assert sedna(state, "apply", "-f", str(manifest)).stdout.count("unchanged") == 3

    run_local.wait_running(state, timeout=90)
    host = run_local.edge_pod_ip(state)
    run_local.wait_listening(host, run_local.EDGE_GRPC_PORT)
    from sedna.service.inference import GrpcInferenceClient

    with GrpcInferenceClient(host, run_local.EDGE_GRPC_PORT, timeout=10.0) as client:
        result = client.infer("digits", {"x": np.ones((1, 64), np.float32)})
    probabilities = np.asarray(result.outputs["probabilities"])
    assert probabilities.shape[-1] == 10 and abs(float(probabilities.sum()) - 1.0) < 1e-4

    broker = run_local.mqtt_broker(state)  # the embedded broker `local up` started, given to the edge worker
    assert broker.startswith("127.0.0.1:")
    assert "MQTT broker: pid" in sedna(state, "local", "status").stdout
    run_local.wait_gateway_online(broker, timeout=60)
    devices = sedna(state, "device", "simulate", "--service", "digits", "--count", "20", "--json")
    assert devices.returncode == 0, devices.stdout + devices.stderr
    summary = json.loads(devices.stdout)
    assert (summary["sent"], summary["answered"], summary["errors"]) == (20, 20, 0)

    table = sedna(state, "get", "ji").stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "PHASE", "READY"] and table[1].split()[:3] == ["digits", "Running", "2/2"]
    page = sedna(state, "describe", "ji", "digits").stdout
    assert "WorkersReady" in page and "created Deployment digits-edge" in page
    pods = json.loads(sedna(state, "get", "pods", "-o", "json").stdout)["items"]
    assert len(pods) == 2 and all(p["metadata"]["name"] in page for p in pods)
    assert "_edge.log" in page and "_cloud.log" in page
    workers = [p for p in worker_processes(state) if "workers.joint_inference" in " ".join(p.cmdline())]
    assert len(workers) == 2

    deleted = sedna(state, "delete", "ji", "digits")
    assert deleted.stdout.strip() == "jointinferenceservice/digits deleted"
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert alive == []
    assert json.loads(sedna(state, "get", "pods", "-o", "json").stdout)["items"] == []

    down = sedna(state, "local", "down")
    assert down.returncode == 0
    eventually(lambda: worker_processes(state) == [], message="every process of the cluster to exit")
    assert sedna(state, "local", "status").returncode == 1


def test_an_invalid_manifest_is_refused_listing_every_bad_field(cluster: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("""
apiVersion: sedna.io/v1alpha1
kind: JointInferenceService
metadata: {name: broken}
spec:
  edgeWorker:
    model: {name: m}
    hardExampleMinning: {name: IBT}
    template: {spec: {containers: [{name: e, image: x}]}}
  cloudWorker:
    template: {spec: {containers: [{name: c, image: x}]}}
""")

    refused = sedna(cluster, "apply", "-f", str(bad))

    assert refused.returncode != 0
    fields = [line.split(":")[0].strip() for line in refused.stderr.splitlines()[1:]]
    assert "spec.edgeWorker.hardExampleMinning" in fields
    assert "spec.cloudWorker.model" in fields
    assert sedna(cluster, "get", "ji", "broken").returncode != 0
    assert sedna(cluster, "get", "nosuchkind").stderr.startswith("error: unknown resource type 'nosuchkind'")
