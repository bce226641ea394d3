"""The embedded cluster survives its components' crashes: adoption, restart, and a clean ``down``.

Issue 11.7 and 17: a GM killed with ``kill -9`` used to leave workers running against a dead hub,
and the next ``up`` answered "already up" or killed and recreated every worker; restarting an LC by
hand lost its ``LC_WORKER_TOKEN``. Now ``sedna local up`` starts only what is not running, on the
recorded ports; the new GM adopts the running workers (same processes, no restart), ``sedna local
restart`` keeps every credential, and ``down`` stops everything even after the GM died. Every edge
Pod's ``STATE_DIR`` lives under its node's state dir. Real processes over 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from examples.joint_inference.digits import run_local
from sedna.cli import _local_secrets as creds
from sedna.service.inference import GrpcInferenceClient
from tests.e2e.local_cluster import apply_digits, cluster_processes, pods, sedna, workers
from tests.support.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.processes]


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    state = tmp_path / "state"
    up = sedna(state, "local", "up", "--nodes", "cloud,edge-0")
    assert up.returncode == 0, up.stderr
    try:
        apply_digits(state, tmp_path)
        yield state
    finally:
        sedna(state, "local", "down")


def record(state: Path) -> dict[str, Any]:
    return dict(json.loads((state / "local.json").read_text()))


def ready(state: Path) -> dict[str, Any]:
    return dict(json.loads((state / "gm.ready.json").read_text()))


def infer_through_the_edge(state: Path) -> None:
    with GrpcInferenceClient(run_local.edge_pod_ip(state), run_local.EDGE_GRPC_PORT, token=creds.edge_token(state),
                             timeout=10.0) as client:
        assert np.asarray(client.infer("digits", {"x": np.ones((1, 64), np.float32)}).outputs["probabilities"]
                          ).shape[-1] == 10


def inference_count(state: Path) -> int:
    """``status.inference.count`` of the digits service: the edge's counters, reported via its LC."""
    service = json.loads(sedna(state, "get", "ji", "digits", "-o", "json").stdout)
    return int(((service.get("status") or {}).get("inference") or {}).get("count", 0))


def pod_view(state: Path) -> dict[str, tuple[str, int]]:
    """``{pod name: (uid, restart count)}``."""
    return {p["metadata"]["name"]: (p["metadata"]["uid"], p["status"]["containerStatuses"][0]["restartCount"])
            for p in pods(state)}


def test_a_gm_killed_with_sigkill_comes_back_adopting_workers_lcs_and_broker(state: Path) -> None:
    before, addresses = record(state), ready(state)
    running = eventually(lambda: (w := workers(state)) and len(w) == 2 and w, timeout=60, message="both workers")
    view = pod_view(state)

    os.kill(int(before["gm"]), signal.SIGKILL)
    eventually(lambda: not psutil.pid_exists(int(before["gm"])) or
               psutil.Process(int(before["gm"])).status() == psutil.STATUS_ZOMBIE, message="GM gone")
    status = sedna(state, "local", "status")
    assert status.returncode == 1 and "the GM is NOT running" in status.stdout
    assert workers(state) == running  # the workers outlive it

    up = sedna(state, "local", "up")
    assert up.returncode == 0, up.stderr
    assert "started: GM)" in up.stdout  # nothing else: the LCs and the broker kept running
    after = record(state)
    assert after["lc"] == before["lc"] and after["mqtt_broker"] == before["mqtt_broker"]
    assert {k: ready(state)[k] for k in ("api", "hub")} == {k: addresses[k] for k in ("api", "hub")}
    assert workers(state) == running  # adopted: the same processes
    assert pod_view(state) == view    # the same Pods, not restarted
    run_local.wait_running(state, timeout=60)
    infer_through_the_edge(state)

    # a graceful GM restart hands the workers over too
    restarted = sedna(state, "local", "restart", "gm")
    assert restarted.returncode == 0 and "started: GM)" in restarted.stdout, restarted.stdout + restarted.stderr
    assert workers(state) == running and pod_view(state) == view
    assert "ContainerStatusUnknown" not in json.dumps(pods(state))


def test_restarting_the_broker_and_an_lc_keeps_ports_and_credentials(state: Path) -> None:
    before = record(state)
    restarted = sedna(state, "local", "restart", "broker")
    assert restarted.returncode == 0, restarted.stderr
    after = record(state)["mqtt_broker"]
    assert after["address"] == before["mqtt_broker"]["address"] and after["pid"] != before["mqtt_broker"]["pid"]
    device = creds.device_credentials(state)
    run_local.wait_gateway_online(after["address"], timeout=60, credentials=device)  # the edge worker reconnected
    done = sedna(state, "device", "simulate", "--service", "digits", "--count", "5", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["answered"] == 5, done.stdout + done.stderr

    assert sedna(state, "local", "restart", "edge-0").returncode == 0
    lc = record(state)["lc"]["edge-0"]
    assert lc["server"] == before["lc"]["edge-0"]["server"] and lc["pid"] != before["lc"]["edge-0"]["pid"]
    token = creds.read_pairs(state / "worker-tokens")["edge-0"]
    assert psutil.Process(int(lc["pid"])).environ()["LC_WORKER_TOKEN"] == token
    # the edge worker's reports (LC_TOKEN) are accepted by the restarted LC: its counters keep flowing to the GM
    counted = eventually(lambda: (n := inference_count(state)) >= 5 and n, timeout=60,
                         message="the devices' requests counted")
    for _ in range(3):
        infer_through_the_edge(state)
    eventually(lambda: inference_count(state) >= counted + 3, timeout=60,
               message="requests served after the LC restart counted")

    bad = sedna(state, "local", "restart", "nosuchnode")
    assert bad.returncode != 0 and "expected gm, broker or a node name (cloud, edge-0)" in bad.stderr


def test_up_starts_an_lc_that_died_instead_of_answering_already_up(state: Path) -> None:
    before = record(state)["lc"]["edge-0"]
    os.kill(int(before["pid"]), signal.SIGKILL)
    eventually(lambda: f"LC edge-0: pid {before['pid']} NOT running" in sedna(state, "local", "status").stdout,
               message="status shows the LC down")
    up = sedna(state, "local", "up")
    assert up.returncode == 0 and "started: LC edge-0)" in up.stdout, up.stdout + up.stderr
    assert record(state)["lc"]["edge-0"]["server"] == before["server"]


def test_every_pod_keeps_its_state_dir_under_its_node(state: Path) -> None:
    edge = psutil.Process(eventually(lambda: workers(state).get("edge"), timeout=60, message="edge worker"))
    expected = state / "lc" / "edge-0" / "pods" / "default_digits-edge"
    assert edge.environ()["STATE_DIR"] == str(expected) and expected.is_dir()
    [edge_pod] = [p["metadata"]["name"] for p in pods(state) if p["spec"]["nodeName"] == "edge-0"]
    assert sedna(state, "delete", "pod", edge_pod).returncode == 0  # its Deployment makes another Pod
    eventually(lambda: (w := workers(state).get("edge")) and w != edge.pid and w, timeout=60, message="new edge")
    assert psutil.Process(workers(state)["edge"]).environ()["STATE_DIR"] == str(expected)


def test_down_after_the_gm_died_leaves_nothing_running(state: Path) -> None:
    running = workers(state)
    os.kill(int(record(state)["gm"]), signal.SIGKILL)
    assert sedna(state, "local", "down").returncode == 0
    eventually(lambda: cluster_processes(state) == [], timeout=30, message="every process of the cluster to exit")
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in running.values())


def hard_examples(state: Path) -> dict[str, str]:
    """``{example id: state}`` of the hard examples the edge worker keeps in its ``STATE_DIR``."""
    root = state / "lc" / "edge-0" / "pods" / "default_digits-edge" / "hard_examples"
    return {p.stem: json.loads(p.read_text())["state"] for p in root.glob("*.json")} if root.exists() else {}


def test_hard_examples_stored_while_the_cloud_was_away_are_offloaded_after_an_edge_restart(state: Path) -> None:
    both = eventually(lambda: (w := workers(state)) and len(w) == 2 and w, timeout=60, message="both workers")
    cloud, edge = both["cloud"], both["edge"]
    os.kill(cloud, signal.SIGSTOP)  # the cloud stops answering
    try:
        with GrpcInferenceClient(run_local.edge_pod_ip(state), run_local.EDGE_GRPC_PORT,
                                 token=creds.edge_token(state), timeout=30.0) as client:
            for _ in range(3):  # an all-zero image: a uniform answer, the hardest example there is
                client.infer("digits", {"x": np.zeros((1, 64), np.float32)})
        stored = eventually(lambda: (h := hard_examples(state)) and len(h) >= 3 and h, timeout=30,
                            message="hard examples stored while the cloud is away")
        assert set(stored.values()) == {"pending"}, stored
        os.kill(edge, signal.SIGKILL)  # the edge restarts (its Pod's restart policy), on the same STATE_DIR
        eventually(lambda: workers(state).get("edge") not in (None, edge), timeout=60, message="edge restarted")
    finally:
        os.kill(cloud, signal.SIGCONT)
    offloaded = eventually(lambda: (h := hard_examples(state)) and set(h.values()) == {"answered"} and h,
                           timeout=60, message="the stored examples offloaded by the restarted edge")
    assert set(stored) <= set(offloaded)
