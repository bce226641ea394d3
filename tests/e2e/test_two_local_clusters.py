"""Two ``sedna local up`` clusters on one machine, each running the digits joint-inference service.

Regression: every cluster gave its Pods 127.0.1.N and its Services 127.0.2.N, and the workers listen
on fixed ports, so the second cluster's workers collided with the first's (its edge reached the
other cluster's cloud worker: UNAUTHENTICATED, or the wrong model's answer). Each cluster now has its
own loopback block (``loopback.json``), kept when its GM is killed and started again.

The edge model answers the uniform distribution, so every sample is a hard example and the answer
is the cloud model's: each cluster's cloud model differs, so the answer says whose cloud replied.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from examples.joint_inference.digits import run_local
from tests.e2e import local_cluster
from tests.support.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.processes]
X = np.ones((1, 64), np.float32)


def uniform_model(path: Path) -> None:
    """A 64 -> 10 model whose answer is always the uniform distribution (maximally unsure: always offloaded)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probabilities"])],
        "uniform", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 10])],
        [numpy_helper.from_array(np.zeros((64, 10), np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def expected(model: Path) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["probabilities"], {"x": X})[0])


def apply(state: Path, models: Path, seed: int) -> None:
    models.mkdir(parents=True)
    uniform_model(models / "edge.onnx")
    local_cluster.tiny_model(models / "cloud.onnx", seed)
    manifest = models / "resources.yaml"
    manifest.write_text(run_local.manifests({"edge": models / "edge.onnx", "cloud": models / "cloud.onnx"}))
    applied = local_cluster.sedna(state, "apply", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr


def answer(state: Path) -> np.ndarray:
    from sedna.cli._local_secrets import edge_token
    from sedna.service.inference import GrpcInferenceClient

    host = run_local.edge_pod_ip(state)
    run_local.wait_listening(host, run_local.EDGE_GRPC_PORT)
    with GrpcInferenceClient(host, run_local.EDGE_GRPC_PORT, token=edge_token(state), timeout=10.0) as client:
        return np.asarray(client.infer("digits", {"x": X}).outputs["probabilities"])


def block(state: Path) -> str:
    return str(json.loads((state / "loopback.json").read_text())["block"])


@pytest.fixture
def clusters(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    states = (tmp_path / "a", tmp_path / "b")
    try:
        for state in states:
            up = local_cluster.sedna(state, "local", "up", "--nodes", "cloud,edge-0")
            assert up.returncode == 0, up.stdout + up.stderr
            assert f"loopback block {block(state)}" in up.stdout
        yield states
    finally:
        for state in states:
            local_cluster.sedna(state, "local", "down")


def test_two_clusters_each_answer_from_their_own_cloud_and_keep_their_addresses(
        clusters: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = clusters
    assert block(a) != block(b)
    apply(a, tmp_path / "models-a", seed=2)
    apply(b, tmp_path / "models-b", seed=3)
    run_local.wait_running(a, timeout=90)
    run_local.wait_running(b, timeout=90)
    cloud_a, cloud_b = expected(tmp_path / "models-a" / "cloud.onnx"), expected(tmp_path / "models-b" / "cloud.onnx")
    assert not np.allclose(cloud_a, cloud_b)
    np.testing.assert_allclose(answer(a), cloud_a, rtol=1e-5)
    np.testing.assert_allclose(answer(b), cloud_b, rtol=1e-5)
    ips = {w: local_cluster.pod_ip(a, w) for w in ("edge", "cloud")}
    assert all(ip.startswith(block(a).rsplit(".", 2)[0] + ".") for ip in ips.values())

    gm = int(json.loads((a / "local.json").read_text())["gm"])
    os.kill(gm, signal.SIGKILL)  # cluster a's GM dies; its workers keep running; a restart adopts them
    eventually(lambda: not os.path.exists(f"/proc/{gm}") or "zombie" in Path(f"/proc/{gm}/status").read_text()
               .lower(), message="the GM gone")
    up = local_cluster.sedna(a, "local", "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"loopback block {block(a)}" in up.stdout
    assert {w: local_cluster.pod_ip(a, w) for w in ("edge", "cloud")} == ips
    np.testing.assert_allclose(answer(a), cloud_a, rtol=1e-5)
    np.testing.assert_allclose(answer(b), cloud_b, rtol=1e-5)
