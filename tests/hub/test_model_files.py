"""Issue 13: a Model whose file is missing on a node that needs it is Failed, naming the node and path.

A real GM hub (with the controllers' report handlers) routes a JointInferenceService's edge Model
to ``edge-0``; a real LC there checks the Model's file and reports upstream; the real Model
controller (in this process, on the same store) turns the node's report into the condition.
(Before: the Model stayed ``Ready`` with "spec is valid" while its file was missing.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gm.cluster.interface import MODEL
from gm.cluster.local.store import LocalStore
from gm.controllers import model as model_controller
from gm.runtime.reconciling import Manager
from gm.settings import ControllerSettings
from tests.hub.harness import GM, LC, joint_inference, wait_until

pytestmark = pytest.mark.processes


def model(name: str, url: str) -> dict[str, Any]:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "Model", "metadata": {"name": name, "namespace": "default"},
            "spec": {"url": url, "format": "onnx"}}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    store = LocalStore(tmp_path / "gm.db", poll_interval=0.05)
    manager = Manager(store, resync_period=300.0)
    model_controller.setup(manager, ControllerSettings())
    manager.start()
    try:
        yield store
    finally:
        manager.stop()
        store.close()


def condition(store: LocalStore, name: str) -> tuple[str, str, str]:
    """The Model's true condition: (type, reason, message)."""
    conditions = (store.get(MODEL, "default", name).get("status") or {}).get("conditions") or []
    true = [c for c in conditions if c.get("status") == "True"]
    return (true[-1]["type"], true[-1].get("reason", ""), true[-1].get("message", "")) if true else ("", "", "")


def test_a_missing_model_file_fails_the_model_naming_node_and_path_until_it_appears(store: LocalStore,
                                                                                      tmp_path: Path) -> None:
    path = tmp_path / "models" / "edge.onnx"
    store.create(model("edge-model", str(path)))
    store.create(model("cloud-model", "s3://bucket/cloud.onnx"))  # remote: not checked by an LC
    store.create(joint_inference("ji", "edge-0"))
    gm = GM(tmp_path, {"edge-0": "t0"}, "--controller-handlers").start()
    lc = LC(tmp_path, gm.address, "edge-0", "t0", "--model-period", "0.2").start()
    try:
        wait_until(lambda: condition(store, "edge-model")[:2] == ("Failed", "FileMissing"),
                   message="the Model failed with FileMissing")
        message = condition(store, "edge-model")[2]
        assert "node edge-0" in message and str(path) in message
        assert condition(store, "cloud-model")[0] == "Ready"

        path.parent.mkdir()
        path.write_bytes(b"onnx")
        wait_until(lambda: condition(store, "edge-model")[0] == "Ready", message="the Model ready again")
        assert "available on edge-0" in condition(store, "edge-model")[2]
        report = store.get(MODEL, "default", "edge-model")["status"]["nodeReports"]["edge-0"]
        assert report["available"] is True and report["generation"] == 1
    finally:
        lc.stop()
        gm.stop()
