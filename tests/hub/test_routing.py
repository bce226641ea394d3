"""Which object goes to which node, and what an update or a resync sends."""

from __future__ import annotations

from typing import Any

import pytest

from gm.hub.authorization import refusal
from gm.hub.routing import Router
from gm.workloads.placement import Placement
from sedna.controlplane.edgehub import ObjectKey, ObjectRef, Report
from tests.hub.harness import dataset, joint_inference, model


def _v(obj: dict, rv: int) -> dict:
    obj["metadata"]["resourceVersion"] = str(rv)
    return obj


def _fl(name: str, datasets: list[str], rv: int) -> dict:
    return _v({"apiVersion": "sedna.io/v1alpha1", "kind": "FederatedLearningJob",
               "metadata": {"name": name, "namespace": "default"},
               "spec": {"aggregationWorker": {"model": {"name": "agg"}},
                        "trainingWorkers": [{"dataset": {"name": d}} for d in datasets]}}, rv)


def _sent(changes) -> list[tuple[str, str, bool]]:
    return sorted((c.node, str(c.ref.key), c.object is not None) for c in changes)


def test_federated_job_and_its_model_follow_the_training_datasets() -> None:
    router = Router()
    router.apply("ADDED", _v(model("agg"), 1))
    router.apply("ADDED", _v(dataset("d0", "edge-0", "/a"), 2))
    router.apply("ADDED", _v(dataset("d1", "edge-1", "/b"), 3))
    assert _sent(router.apply("ADDED", _fl("fl", ["d0", "d1"], 4))) == [
        ("edge-0", "federatedlearningjob/default/fl", True), ("edge-0", "model/default/agg", True),
        ("edge-1", "federatedlearningjob/default/fl", True), ("edge-1", "model/default/agg", True)]
    # Moving d1 to edge-2 moves the job and its model with it.
    assert _sent(router.apply("MODIFIED", _v(dataset("d1", "edge-2", "/b"), 5))) == [
        ("edge-1", "dataset/default/d1", False), ("edge-1", "federatedlearningjob/default/fl", False),
        ("edge-1", "model/default/agg", False),
        ("edge-2", "dataset/default/d1", True), ("edge-2", "federatedlearningjob/default/fl", True),
        ("edge-2", "model/default/agg", True)]


def test_joint_inference_goes_to_the_node_selector_host_when_no_node_name() -> None:
    router = Router()
    ji = _v(joint_inference("ji", ""), 1)
    ji["spec"]["edgeWorker"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "edge-3"}
    assert _sent(router.apply("ADDED", ji)) == [("edge-3", "jointinferenceservice/default/ji", True)]


def test_status_only_writes_send_nothing_and_keep_the_version_lcs_hold() -> None:
    router = Router()
    router.apply("ADDED", _v(dataset("d0", "edge-0", "/a"), 1))
    with_status = {**_v(dataset("d0", "edge-0", "/a"), 2), "status": {"numberOfSamples": 3}}
    assert router.apply("MODIFIED", with_status) == []
    assert router.resync("edge-0", [ObjectRef(ObjectKey("dataset", "default", "d0"), "1")]) == []


def test_resync_is_exactly_the_difference() -> None:
    router = Router()
    router.apply("ADDED", _v(dataset("keep", "edge-0", "/a"), 1))
    router.apply("ADDED", _v(dataset("new", "edge-0", "/b"), 2))
    router.apply("ADDED", _v(dataset("other", "edge-1", "/c"), 3))
    held = [ObjectRef(ObjectKey("dataset", "default", "keep"), "1"),
            ObjectRef(ObjectKey("dataset", "default", "stale"), "9")]
    assert _sent(router.resync("edge-0", held)) == [("edge-0", "dataset/default/new", True),
                                                     ("edge-0", "dataset/default/stale", False)]


def _train_report(worker: str) -> Report:
    return Report(1, ObjectKey("federatedlearningjob", "default", "fl"), {"phase": "train", "worker": worker})


def test_a_training_report_is_judged_by_where_its_dataset_is_now() -> None:
    router = Router()
    router.apply("ADDED", _v(dataset("d0", "edge-0", "/a"), 1))
    router.apply("ADDED", _v(dataset("d1", "edge-1", "/b"), 2))
    router.apply("ADDED", _fl("fl", ["d0", "d1"], 3))
    assert refusal(router, "edge-1", _train_report("fl-train-1")) == ""
    assert "edge-1" in refusal(router, "edge-0", _train_report("fl-train-1"))
    router.apply("MODIFIED", _v(dataset("d1", "edge-2", "/b"), 4))  # the job itself is unchanged
    assert refusal(router, "edge-2", _train_report("fl-train-1")) == ""
    assert "not routed to node 'edge-1'" in refusal(router, "edge-1", _train_report("fl-train-1"))
    router.apply("DELETED", _v(dataset("d1", "edge-2", "/b"), 5))
    router.apply("ADDED", _v(dataset("d1", "edge-0", "/b"), 6))
    assert refusal(router, "edge-0", _train_report("fl-train-1")) == ""
    assert "not routed" in refusal(router, "edge-2", _train_report("fl-train-1"))


def test_a_job_is_placed_once_per_version_not_once_per_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """A job with a worker on each of many nodes: every node's report must not place all of them again."""
    placed: list[str] = []
    original = Placement.workers

    def counting(self: Placement, obj: dict, dataset_node: Any) -> dict[str, str]:
        if obj["kind"] == "FederatedLearningJob":
            placed.append(obj["metadata"]["resourceVersion"])
        return original(self, obj, dataset_node)

    monkeypatch.setattr(Placement, "workers", counting)
    router = Router()
    for i in range(200):
        router.apply("ADDED", _v(dataset(f"d{i}", f"edge-{i}", "/a"), i + 1))
    router.apply("ADDED", _fl("fl", [f"d{i}" for i in range(200)], 1000))
    for i in range(200):
        assert refusal(router, f"edge-{i}", _train_report(f"fl-train-{i}")) == ""
    assert placed == ["1000"]
    updated = _fl("fl", [f"d{i}" for i in range(200)], 1001)
    updated["spec"]["aggregationWorker"]["template"] = {"spec": {"nodeName": "cloud"}}
    router.apply("MODIFIED", updated)
    for i in range(200):
        assert refusal(router, f"edge-{i}", _train_report(f"fl-train-{i}")) == ""
    assert placed == ["1000", "1001"]
