"""``sedna local up`` → apply the federated digits YAML → the job trains to Succeeded → ONNX → down.

Real processes end to end: the CLI, the GM (local backend, controllers, hub), one LC per node
(cloud, edge-0..2), the aggregation worker behind its Service proxy and three trainers placed on
their Datasets' nodes. Round reports travel worker → LC → hub → job and Model status. A trainer Pod
deleted while the job runs comes back (new uid) and the job still completes every round.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from examples.federated_learning.digits import run_local
from examples.joint_inference.digits.run_local import sedna
from sedna.cli import _kinds
from sedna.cli._client import Client, read_ready
from tests.e2e.test_local_cli import worker_processes

pytestmark = [pytest.mark.slow, pytest.mark.processes]
ROUNDS = 6


def _pods(state: Path) -> dict[str, dict[str, Any]]:
    out = sedna("get", "pods", "-o", "json", state_dir=state, check=False)
    if out.returncode != 0:
        return {}
    return {p["metadata"]["name"]: p for p in json.loads(out.stdout)["items"]}


def _settled(state: Path, job: dict[str, Any], timeout: float) -> dict[str, Any]:
    """The job as stored once no worker Pod is active any more (or as last seen after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while (job.get("status") or {}).get("active") and time.monotonic() < deadline:
        time.sleep(0.5)
        out = sedna("get", "fl", job["metadata"]["name"], "-o", "json", state_dir=state, check=False)
        if out.returncode == 0:
            job = json.loads(out.stdout)
    return job


def _delete_a_trainer(state: Path, record: dict[str, Any], stop: threading.Event) -> None:
    """As soon as trainer 1's Pod exists, delete it; record its uid before and after it comes back.

    Talks to the API directly (the CLI takes seconds to start on a loaded machine, the job does
    not). The aggregator needs all three trainers for round 1 and then waits for a rejoin, so the
    job cannot end before the controller has recreated the Pod.
    """
    path = _kinds.find("pods").path("default", "digits-fl-train-1")
    while not stop.is_set() and (read_ready(state) is None or not (state / "token").exists()):
        time.sleep(0.1)
    if stop.is_set():
        return
    client = Client(read_ready(state)["api"], (state / "token").read_text().strip())  # type: ignore[index]
    try:
        while not stop.is_set():
            pod = client.request("GET", path, allow_404=True)
            if pod is None:
                time.sleep(0.05)
                continue
            if "before" not in record:
                record["before"] = pod["metadata"]["uid"]
                client.request("DELETE", path, allow_404=True)
            elif pod["metadata"]["uid"] != record["before"]:
                record["after"] = pod["metadata"]["uid"]
                return
            time.sleep(0.05)
    finally:
        client.close()


def test_federated_digits_from_yaml(tmp_path: Path) -> None:
    state = tmp_path / "state"
    record: dict[str, Any] = {}
    stop = threading.Event()
    killer = threading.Thread(target=_delete_a_trainer, args=(state, record, stop), daemon=True)
    killer.start()
    try:
        result = run_local.run(tmp_path, state, ROUNDS, timeout=75, keep=True)
        # the trainers stop once the aggregator said so; the counts settle when their Pods finish
        result["job"] = _settled(state, result["job"], timeout=30)
        pods = _pods(state)
    finally:
        stop.set()
        killer.join(5)
        sedna("local", "down", state_dir=state, check=False)

    status = result["job"]["status"]
    assert status["phase"] == "Succeeded"
    assert {c["type"]: c["status"] for c in status["conditions"]}["Complete"] == "True"
    assert status["currentRound"] == ROUNDS
    assert status["latestMetrics"]["accuracy"] > 0.85
    assert (status["active"], status["failed"]) == (0, 0) and status["succeeded"] >= 4
    assert status["startTime"] <= status["completionTime"]
    assert status["aggregation"]["round"] == ROUNDS and status["aggregation"]["status"] == "completed"
    assert set(status["trainingWorkers"]) == {f"digits-fl-train-{k}" for k in range(3)}
    assert [k for k, v in status.items() if isinstance(v, list) and k != "conditions"] == ["roundHistory"]
    history = [h["round"] for h in status["roundHistory"]]  # what describe and the dashboard draw
    assert history == sorted(set(history)) and set(history) <= set(range(1, ROUNDS + 1))
    assert history[-1] == ROUNDS  # (a worker's report is best effort: under load one round may be missing)
    assert status["roundHistory"][-1]["metrics"]["accuracy"] == status["latestMetrics"]["accuracy"]
    # the deleted trainer came back and the job lost no round
    assert record.get("after") and record["after"] != record["before"], record
    assert [row["round"] for row in result["rounds"]] == list(range(1, ROUNDS + 1))
    assert result["rounds"][-1]["test"] > 0.85
    # placement: trainers on their Datasets' nodes, the aggregator in the cloud
    assert {n: p["spec"]["nodeName"] for n, p in pods.items()} == {
        "digits-fl-aggregation": "cloud", "digits-fl-train-0": "edge-0", "digits-fl-train-1": "edge-1",
        "digits-fl-train-2": "edge-2"}
    # the aggregated model's metrics reached the Model resource
    metrics = {m["key"]: float(m["value"]) for m in result["model_metrics"]}
    assert metrics["accuracy"] == pytest.approx(status["latestMetrics"]["accuracy"])
    assert result["onnx"].exists() and result["onnx_accuracy"] == pytest.approx(result["rounds"][-1]["test"])
    assert worker_processes(state) == []
