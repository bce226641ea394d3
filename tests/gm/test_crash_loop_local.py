"""A real crash-looping worker in the local backend: its service never shows Running, and says why.

The edge worker of a JointInferenceService is a real process that prints why it cannot start and
exits 3; the local runtime restarts it with back-off, as a kubelet would. Once it has crashed, the
service stays Failed with reason CrashLoopBackOff, the restart count and the worker's own last log
line, even in the moments the process is up again between crashes, and the crashes are one Warning
Event whose count grows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gm.cluster.interface import EVENT, JOINT_INFERENCE_SERVICE, Obj
from gm.cluster.local.backend import LocalBackend
from gm.cluster.local.runtime import Backoff
from gm.controllers.setup import setup_controllers
from gm.runtime.reconciling import Manager
from gm.settings import ControllerSettings
from tests.gm.test_local_runtime import wait_for

pytestmark = pytest.mark.processes

CRASH = "print('edge worker: cannot open /models/small.onnx: no such file', flush=True); raise SystemExit(3)"


def _model(name: str) -> Obj:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "Model", "metadata": {"name": name, "namespace": "default"},
            "spec": {"url": f"/models/{name}.onnx", "format": "onnx"}}


def _service() -> Obj:
    def worker(node: str, code: str) -> dict[str, Any]:
        return {"spec": {"nodeName": node, "containers": [{"name": "worker", "image": "sedna-py",
                                                            "command": ["python", "-c", code]}]}}

    return {"apiVersion": "sedna.io/v1alpha1", "kind": "JointInferenceService",
            "metadata": {"name": "digits", "namespace": "default"},
            "spec": {"edgeWorker": {"model": {"name": "small"}, "hardExampleMining": {"name": "IBT"},
                                    "template": worker("edge-0", CRASH)},
                     "cloudWorker": {"model": {"name": "big"},
                                     "template": worker("cloud", "import time; time.sleep(120)")}}}


@pytest.fixture
def running(tmp_path: Path) -> Iterator[LocalBackend]:
    backend = LocalBackend(tmp_path / "state", ["cloud", "edge-0"], token="t", api_port=None,
                           backoff=Backoff(0.3, 1.0, 60.0))
    backend.runtime.tick = 0.05
    backend.store.poll_interval = 0.02
    backend.start()
    settings = ControllerSettings(default_cloud_node="cloud", nodes=("cloud", "edge-0"), wait_for_cluster_ip=True,
                                  pod_log_dir=str(backend.runtime.log_dir), workers=2)
    manager = Manager(backend.store, resync_period=60)
    setup_controllers(manager, settings)
    manager.start()
    try:
        yield backend
    finally:
        manager.stop()
        backend.stop()


def test_a_crash_looping_worker_never_shows_its_service_running(running: LocalBackend) -> None:
    store = running.store
    for obj in (_model("small"), _model("big"), _service()):
        store.create(obj)

    def status() -> dict[str, Any]:
        return store.get(JOINT_INFERENCE_SERVICE, "default", "digits").get("status") or {}

    def failed() -> dict[str, Any]:
        return next((c for c in status().get("conditions") or [] if c["type"] == "Failed"), {})

    wait_for(lambda: failed().get("reason") == "CrashLoopBackOff" and "restarted" in failed()["message"],
             timeout=60, message="the service failing with CrashLoopBackOff")
    message = failed()["message"]
    assert "edge worker: pod digits-edge-" in message and "last exit code 3" in message
    assert "last log lines: edge worker: cannot open /models/small.onnx: no such file" in message

    seen, deadline = set(), time.monotonic() + 4.0  # several restarts, each with the process up for a moment
    while time.monotonic() < deadline:
        seen.add(status().get("phase"))
        time.sleep(0.02)
    assert seen == {"Failed"}

    events = [e for e in store.list(EVENT, "default") if e["reason"] == "CrashLoopBackOff"]
    assert len(events) == 1 and events[0]["type"] == "Warning" and events[0]["count"] >= 2
    assert events[0]["involvedObject"]["name"] == "digits"
