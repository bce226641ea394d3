"""Issue 11 item 2: a node reports only about objects routed to it, and only in its own role.

A real GM hub (``tests.hub.gm_entry`` with the controllers' report handlers) holds, for two
edge nodes and the cloud: a Dataset on each edge node, a JointInferenceService whose edge worker
runs on ``node-b``, a FederatedLearningJob training on both, Incremental and LifelongLearningJobs on
``node-b`` and the Model ``m`` that service and that job use (routed to ``node-b`` and the
cloud). ``node-a`` joins with a bootstrap token and then,
with its own perfectly valid credential, reports about ``node-b``'s objects, about another
trainer, as the aggregator, and as the LC that decides an IL job's training (which would steer
the job's model paths, i.e. file copies on ``node-b``). Each report is refused with a reason,
counted as ``forbidden`` and acknowledged, so an LC drops it; nothing reaches any status. The
same reports from the right node are applied. (Before the fix every one of them was applied.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gm.cluster.interface import (
    DATASET,
    FEDERATED_LEARNING_JOB,
    INCREMENTAL_LEARNING_JOB,
    JOINT_INFERENCE_SERVICE,
    MODEL,
    Cluster,
)
from gm.cluster.local.store import LocalStore
from lc.store import Store
from sedna.controlplane.edgehub import ObjectKey
from tests.hub.harness import GM, LC, dataset, joint_inference, wait_until
from tests.security.rawnode import RawNode, join

pytestmark = pytest.mark.processes

BOOT = "bootstrap-token-for-isolation-tests"
JI, FL, IL, LL = "jointinferenceservice", "federatedlearningjob", "incrementallearningjob", "lifelonglearningjob"


def _spec(containers: list[Any] | None = None, node: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers or [{"name": "w", "image": "x"}]}
    if node:
        spec["nodeName"] = node
    return {"spec": spec}


def federated() -> dict[str, Any]:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "FederatedLearningJob",
            "metadata": {"name": "fl", "namespace": "default"},
            "spec": {"aggregationWorker": {"model": {"name": "m-fl"}, "template": _spec()},
                     "trainingWorkers": [{"dataset": {"name": "ds-a"}, "template": _spec()},
                                         {"dataset": {"name": "ds-b"}, "template": _spec()}]}}


def incremental() -> dict[str, Any]:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "IncrementalLearningJob",
            "metadata": {"name": "il", "namespace": "default"},
            "spec": {"dataset": {"name": "ds-b", "trainProb": 0.8}, "initialModel": {"name": "m"},
                     "trainSpec": {"template": _spec()}, "evalSpec": {"template": _spec()},
                     "deploySpec": {"model": {"name": "m"}, "template": _spec(node="node-b")},
                     "outputDir": "/output/il"}}


def lifelong() -> dict[str, Any]:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "LifelongLearningJob",
            "metadata": {"name": "ll", "namespace": "default"},
            "spec": {"dataset": {"name": "ds-b", "trainProb": 0.8},
                     "trainSpec": {"template": _spec()}, "evalSpec": {"template": _spec()},
                     "deploySpec": {"template": _spec(node="node-b")}, "outputDir": "/output/ll"}}


def model(name: str = "m") -> dict[str, Any]:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "Model", "metadata": {"name": name, "namespace": "default"},
            "spec": {"url": f"/models/{name}.onnx", "format": "onnx"}}


def ji_counters(count: int) -> dict[str, Any]:
    return {"phase": "inference", "status": "running", "workers": 1,
            "output": {"ownerInfo": {"inferenceNumber": count, "hardExampleNumber": 1}}}


def fl_round(worker: str, phase: str = "train") -> dict[str, Any]:
    return {"phase": phase, "status": "running", "worker": worker,
            "output": {"ownerInfo": {"currentRound": 1, "sampleCount": 10, "metrics": {"accuracy": 0.5}}}}


STEER = {"source": "lc", "phase": "train", "status": "ready", "round": 1, "message": "attacker",
         "input": {"model": "/etc/passwd", "dataURL": "/attacker/data.txt", "outputDir": "/etc"}}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[LocalStore, GM]]:
    store = LocalStore(tmp_path / "gm.db", poll_interval=0.05)
    for obj in (dataset("ds-a", "node-a", "/data/a.txt"), dataset("ds-b", "node-b", "/data/b.txt"), model(),
                model("m-fl"),
                joint_inference("ji", "node-b", "m"), federated(), incremental(), lifelong()):
        store.create(obj)
    gm = GM(tmp_path, {}, "--bootstrap-token", BOOT, "--default-node", "cloud", "--controller-handlers").start()
    try:
        yield store, gm
    finally:
        gm.stop()
        store.close()


def status(store: Cluster, kind: Any, name: str) -> dict[str, Any]:
    return store.get(kind, "default", name).get("status") or {}


def forbidden(ack: Any, *words: str) -> None:
    assert ack.accepted is False and ack.reason.startswith("forbidden: "), ack
    for word in words:
        assert word in ack.reason, ack.reason


def test_a_node_cannot_report_about_another_nodes_objects_or_in_another_role(cluster) -> None:
    store, gm = cluster
    nodes = {name: RawNode(gm.address, name, join(gm.address, name, BOOT).token) for name in ("node-a", "node-b",
                                                                                          "cloud")}
    a, b, cloud = nodes["node-a"], nodes["node-b"], nodes["cloud"]
    try:
        for node in nodes.values():
            node.hello()
        # node-a about node-b's objects: not routed to it
        forbidden(a.report(1, "dataset", "ds-b", {"numberOfSamples": 999}), "dataset/default/ds-b",
                  "not routed to node 'node-a'")
        forbidden(a.report(2, JI, "ji", ji_counters(1_000_000)), "not routed to node 'node-a'")
        forbidden(a.report(3, "model", "m", {"available": False, "reason": "FileMissing", "message": "gone"}),
                  "not routed")
        forbidden(a.report(4, IL, "il", STEER), "not routed")
        forbidden(a.report(5, LL, "ll", STEER), "lifelonglearningjob/default/ll", "not routed")
        # node-a holds the FL job (it trains train-0), but not as train-1 nor as the aggregator
        forbidden(a.report(6, FL, "fl", fl_round("fl-train-1")), "fl-train-1", "node 'node-b'")
        forbidden(a.report(7, FL, "fl", fl_round("fl-aggregation", "aggregation")), "aggregator's node 'cloud'")
        forbidden(a.report(8, FL, "fl", fl_round("fl-train-9")), "not a training worker")
        # the cloud holds the service (cloud worker) and the IL job (train/eval workers), not their roles
        forbidden(cloud.report(1, JI, "ji", ji_counters(1_000_000)), "edge worker's node 'node-b'")
        forbidden(cloud.report(2, IL, "il", STEER), "Dataset 'ds-b''s node 'node-b'")
        forbidden(cloud.report(3, LL, "ll", STEER), "Dataset 'ds-b''s node 'node-b'")
        forbidden(b.report(1, IL, "il", {"phase": "train", "status": "completed", "worker": "il-train-1"}),
                  "train worker's node 'cloud'")

        assert "numberOfSamples" not in status(store, DATASET, "ds-b")
        assert "inference" not in status(store, JOINT_INFERENCE_SERVICE, "ji")
        assert "nodeReports" not in status(store, MODEL, "m")
        assert "edgeReports" not in status(store, INCREMENTAL_LEARNING_JOB, "il")
        assert "trainingWorkers" not in status(store, FEDERATED_LEARNING_JOB, "fl")
        assert gm.metric("sedna_edgehub_reports_total", result="forbidden") == 12

        # the same reports from the node that holds the role are applied
        assert b.report(2, "dataset", "ds-b", {"numberOfSamples": 7}).accepted
        assert b.report(3, JI, "ji", ji_counters(5)).accepted
        assert b.report(4, IL, "il", STEER).accepted
        assert a.report(9, FL, "fl", fl_round("fl-train-0")).accepted
        assert b.report(5, LL, "ll", STEER).accepted  # no GM handler files LL reports yet: acknowledged, dropped
        assert status(store, DATASET, "ds-b")["numberOfSamples"] == 7
        assert status(store, JOINT_INFERENCE_SERVICE, "ji")["inference"]["count"] == 5
        assert status(store, INCREMENTAL_LEARNING_JOB, "il")["edgeReports"]["lc"]["input"]["outputDir"] == "/etc"
        assert set(status(store, FEDERATED_LEARNING_JOB, "fl")["trainingWorkers"]) == {"fl-train-0"}
        assert "node node-a: refused report 1: forbidden: dataset/default/ds-b is not routed to node 'node-a'" in \
            gm.log.read_text()
    finally:
        for node in nodes.values():
            node.close()


def test_a_refused_report_leaves_the_lcs_outbox_instead_of_being_resent_forever(cluster, tmp_path: Path) -> None:
    store, gm = cluster
    lc = LC(tmp_path, gm.address, "node-a", None, "--bootstrap-token", BOOT)
    outbox = Store(lc.state / "lc.db")  # a report about node-b's Dataset, queued before the LC starts
    outbox.enqueue(ObjectKey("dataset", "default", "ds-b"), {"numberOfSamples": 999})
    outbox.close()
    lc.start()
    try:
        wait_until(lc.connected, message="node-a joined and connected")
        wait_until(lambda: lc.health()["outbox"] == 0, message="the refused report dropped from the outbox")
        time.sleep(0.5)
        assert "GM rejected report 1: forbidden: dataset/default/ds-b is not routed to node 'node-a'" in \
            lc.log.read_text()
        assert "numberOfSamples" not in status(store, DATASET, "ds-b")
        assert gm.metric("sedna_edgehub_reports_total", kind="dataset", result="forbidden") == 1
    finally:
        lc.stop()
