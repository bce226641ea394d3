"""Helpers for tests that run ``sedna local up`` with the digits joint-inference service on tiny models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from examples.joint_inference.digits import run_local
from gm.controllers.joint_inference.workers import (
    CLOUD_GRPC_PORT,
    CLOUD_REST_PORT,
    EDGE_GRPC_PORT,
    EDGE_REST_PORT,
)

ROOT = Path(__file__).resolve().parents[2]


def tiny_model(path: Path, seed: int) -> None:
    """A 64 -> 10 linear layer with softmax, as an ONNX file."""
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


def sedna(state: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m sedna ARGS --state-dir STATE``."""
    return subprocess.run([sys.executable, "-m", "sedna", *args, "--state-dir", str(state)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def apply_digits(state: Path, models_dir: Path) -> None:
    """Apply the digits JointInferenceService (tiny models) and wait until it runs and every port of its edge and
    cloud workers listens (a worker opens its gRPC port before its REST port)."""
    tiny_model(models_dir / "edge.onnx", 1)
    tiny_model(models_dir / "cloud.onnx", 2)
    manifest = models_dir / "resources.yaml"
    manifest.write_text(run_local.manifests({"edge": models_dir / "edge.onnx", "cloud": models_dir / "cloud.onnx"}))
    applied = sedna(state, "apply", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr
    run_local.wait_running(state, timeout=90)
    for worker, ports in (("edge", (EDGE_GRPC_PORT, EDGE_REST_PORT)), ("cloud", (CLOUD_GRPC_PORT, CLOUD_REST_PORT))):
        host = pod_ip(state, worker)
        for port in ports:
            run_local.wait_listening(host, port)


def pods(state: Path) -> list[dict[str, Any]]:
    return list(json.loads(sedna(state, "get", "pods", "-o", "json").stdout)["items"])


def pod_ip(state: Path, worker_type: str) -> str:
    """The podIP of the digits service's ``edge`` or ``cloud`` Pod."""
    for pod in pods(state):
        if (pod["metadata"].get("labels") or {}).get(f"{run_local.LABEL}/worker-type") == worker_type:
            return str(pod["status"]["podIP"])
    raise AssertionError(f"no {worker_type} pod")


def lc_servers(state: Path) -> set[str]:
    """The worker API URLs of this cluster's LCs (what its workers get as ``LC_SERVER``)."""
    record = state / "local.json"
    return {lc["server"] for lc in json.loads(record.read_text()).get("lc", {}).values()} if record.exists() else set()


def cluster_processes(state: Path, servers: set[str] | None = None) -> list[psutil.Process]:
    """Processes of this cluster: GM/LC/broker (marked env) and workers (reporting to one of its LCs;
    ``servers`` defaults to those recorded now)."""
    servers = lc_servers(state) if servers is None else servers
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            env = proc.environ()
        except psutil.Error:
            continue
        if env.get("SEDNA_LOCAL_STATE_DIR") == str(state) or env.get("LC_SERVER") in servers:
            found.append(proc)
    return found


def workers(state: Path) -> dict[str, int]:
    """``{edge|cloud: pid}`` of the digits workers running."""
    found = {}
    for proc in cluster_processes(state):
        try:
            command = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        for role in ("edge", "cloud"):
            if f"workers.joint_inference.{role}" in command:
                found[role] = proc.pid
    return found
