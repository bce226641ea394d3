"""Issue 11 item 3: a worker reports to its LC only for its own owner, as itself, about work on its node.

A real GM hub routes two JointInferenceServices to ``edge-0`` and one to ``edge-1``; a real LC
joins as ``edge-0``. Workers present the credentials the GM issues (``LC_TOKEN``, built here by
the GM's own :class:`~gm.workloads.credentials.WorkerCredentials` over the same identity key). A
credential bound to one service cannot report for the other, nor as another worker, nor for
another kind; one issued for ``edge-1`` is refused on ``edge-0``; a report about an object the
LC does not hold is refused and nothing is queued; the counters of a deleted service are
dropped. Sedna's own workers (no credential) are refused unless the LC allows them. (Before: any
Pod holding the node's one shared ``LC_TOKEN`` reported for any job, and fake rows stayed.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gm.cluster.interface import JOINT_INFERENCE_SERVICE
from gm.cluster.local.store import LocalStore
from gm.identity import NodeIdentity
from gm.workloads.credentials import WorkerCredentials
from sedna.controlplane import credentials
from tests.hub.harness import GM, LC, ji_report, joint_inference, wait_until

pytestmark = pytest.mark.processes

BOOT = "bootstrap-token-for-worker-tests"
JI = "jointinferenceservice"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[LocalStore, GM, WorkerCredentials]]:
    store = LocalStore(tmp_path / "gm.db", poll_interval=0.05)
    for name, node in (("ji", "edge-0"), ("other", "edge-0"), ("far", "edge-1")):
        store.create(joint_inference(name, node))
    gm = GM(tmp_path, {}, "--bootstrap-token", BOOT).start()
    identity = NodeIdentity(store)  # the GM's identity key, read from the store: the keys the GM issues with
    identity.load_key()
    try:
        yield store, gm, WorkerCredentials(identity)
    finally:
        gm.stop()
        store.close()


def edge_lc(tmp_path: Path, gm: GM, *extra: str) -> LC:
    lc = LC(tmp_path, gm.address, "edge-0", None, "--bootstrap-token", BOOT, *extra).start()
    wait_until(lc.connected, message="edge-0 joined")
    wait_until(lambda: {f"{JI}/default/ji", f"{JI}/default/other"} <= set(lc.objects()), message="services on edge-0")
    wait_until(lambda: (lc.state / "node-credential.json").exists(), message="the credential stored")
    return lc


def token(creds: WorkerCredentials, owner: str = "ji", node: str = "edge-0", kind: str = JI,
          worker: str = "ji-edge-", prefix: bool = True) -> str:
    return creds.lc_token(node, kind, "default", owner, worker, prefix)


def post(lc: LC, worker: str, body: dict[str, Any], credential: str) -> tuple[int, str]:
    reply = lc.post(worker, body, token=credential)
    return reply.status_code, reply.json()["Message"]


def counters(lc: LC) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{lc.state / 'lc.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT scope, worker FROM counters ORDER BY scope, worker").fetchall()
    db.close()
    return rows


def test_a_worker_reports_only_for_its_own_owner_as_itself(cluster, tmp_path: Path) -> None:
    store, gm, creds = cluster
    lc = edge_lc(tmp_path, gm)
    try:
        mine = token(creds)
        assert post(lc, "ji-edge-5d8f-x2k4q", ji_report("ji-edge-5d8f-x2k4q", "ji", 10, 2), mine) == (200, "OK")
        wait_until(lambda: (store.get(JOINT_INFERENCE_SERVICE, "default", "ji").get("status") or {})
                   .get("inference", {}).get("count") == 10, message="the worker's counters in status")
        outbox = lc.health()["outbox"]

        refused = [
            # another service on the same node
            post(lc, "ji-edge-5d8f-x2k4q", ji_report("ji-edge-5d8f-x2k4q", "other", 10**9, 0), mine),
            # another worker of its own service
            post(lc, "ji-cloud-1", ji_report("ji-cloud-1", "ji", 10**9, 0), mine),
            post(lc, "ji-edge-", ji_report("ji-edge-", "ji", 10**9, 0), mine),
            # another kind, another namespace
            post(lc, "ji-edge-a", {**ji_report("ji-edge-a", "ji", 1, 0), "ownerKind": "federatedlearningjob"}, mine),
            post(lc, "ji-edge-a", {**ji_report("ji-edge-a", "ji", 1, 0), "namespace": "prod"}, mine),
        ]
        assert [status for status, _ in refused] == [403] * 5
        assert "ownerName 'other' is not the credential's 'ji'" in refused[0][1]
        assert "worker 'ji-cloud-1' does not start with the credential's 'ji-edge-'" in refused[1][1]
        assert "worker 'ji-edge-' does not start with" in refused[2][1]
        assert "ownerKind 'federatedlearningjob' is not the credential's 'jointinferenceservice'" in refused[3][1]
        assert "namespace 'prod' is not the credential's 'default'" in refused[4][1]

        # credentials that are not this node's, or not credentials at all
        elsewhere = token(creds, node="edge-1")
        forged = mine.replace(mine.split(".")[1], credentials.issue(b"k" * 32, credentials.WorkerClaims(
            JI, "default", "other", "ji-edge-", True)).split(".")[1])
        unauthorized = [post(lc, "ji-edge-a", ji_report("ji-edge-a", "ji", 1, 0), t)
                        for t in (elsewhere, forged, "", "the-old-shared-node-token")]
        assert [status for status, _ in unauthorized] == [401] * 4
        assert "not issued for this node" in unauthorized[0][1] and "not issued for this node" in unauthorized[1][1]
        assert "missing bearer token" in unauthorized[2][1] and "wrong bearer token" in unauthorized[3][1]

        # a valid credential for an object this node does not hold: refused, nothing stored
        far = token(creds, owner="far", worker="far-edge-")
        status, message = post(lc, "far-edge-1", ji_report("far-edge-1", "far", 10**9, 0), far)
        assert status == 403 and "jointinferenceservice default/far is not held by this LC (node 'edge-0')" in message
        ghost = token(creds, owner="ghost", worker="ghost-edge-")
        assert post(lc, "ghost-edge-1", ji_report("ghost-edge-1", "ghost", 1, 0), ghost)[0] == 403

        assert lc.health()["outbox"] == outbox
        assert counters(lc) == [(f"{JI}/default/ji", "ji-edge-5d8f-x2k4q")]
        assert (store.get(JOINT_INFERENCE_SERVICE, "default", "other").get("status") or {}).get("inference") is None
        text = lc.metrics_text()
        assert 'sedna_lc_worker_reports_total{owner_kind="jointinferenceservice",result="forbidden"} 4.0' in text
        assert 'sedna_lc_worker_reports_total{owner_kind="jointinferenceservice",result="unknown_owner"} 2.0' in text
    finally:
        lc.stop()


def test_the_counters_of_a_deleted_owner_are_dropped_and_its_workers_refused(cluster, tmp_path: Path) -> None:
    store, gm, creds = cluster
    lc = edge_lc(tmp_path, gm)
    try:
        mine = token(creds)
        assert post(lc, "ji-edge-a", ji_report("ji-edge-a", "ji", 3, 1), mine)[0] == 200
        assert counters(lc) == [(f"{JI}/default/ji", "ji-edge-a")]
        store.delete(JOINT_INFERENCE_SERVICE, "default", "ji")
        wait_until(lambda: f"{JI}/default/ji" not in lc.objects(), message="the deleted service gone from the LC")
        assert counters(lc) == []
        status, message = post(lc, "ji-edge-a", ji_report("ji-edge-a", "ji", 4, 1), mine)
        assert status == 403 and "not held by this LC" in message
        assert counters(lc) == []
    finally:
        lc.stop()


def test_sedna_workers_without_a_credential_report_only_when_the_lc_allows_it(cluster, tmp_path: Path) -> None:
    _store, gm, _creds = cluster
    lc = edge_lc(tmp_path, gm, "--allow-unauthenticated-workers")
    try:
        assert post(lc, "ji-edge-a", ji_report("ji-edge-a", "ji", 3, 1), "") == (200, "OK")
        status, message = post(lc, "far-edge-a", ji_report("far-edge-a", "far", 3, 1), "")
        assert status == 403 and "not held by this LC" in message
        assert "accepts reports without a credential" in lc.log.read_text()
    finally:
        lc.stop()


def test_the_gm_gives_each_worker_its_own_credential_for_its_nodes_lc(cluster) -> None:
    from gm.controllers.incremental_learning import workers as il_workers
    from gm.controllers.joint_inference import workers as ji_workers
    from gm.settings import ControllerSettings

    store, _gm, creds = cluster
    settings = ControllerSettings(credentials=creds, default_cloud_node="cloud")
    ji = store.get(JOINT_INFERENCE_SERVICE, "default", "ji")
    for side in ("edgeWorker", "cloudWorker"):
        ji["spec"][side]["template"]["spec"]["containers"] = [{"name": "worker", "image": "w"}]
    plans = ji_workers.plan_workers(ji, {"edge": "/m/e.onnx", "cloud": "/m/c.onnx"}, None, settings)
    keys = {node: creds.keys.worker_key(node) for node in ("edge-0", "cloud")}

    def lc_token(obj: dict[str, Any]) -> str:
        spec = obj["spec"]["template"]["spec"] if obj["kind"] == "Deployment" else obj["spec"]
        return next(e["value"] for e in spec["containers"][0]["env"] if e["name"] == "LC_TOKEN")

    assert credentials.verify(keys["edge-0"], lc_token(plans["edge"].obj)) == credentials.WorkerClaims(
        JI, "default", "ji", "ji-edge-", True)
    assert credentials.verify(keys["cloud"], lc_token(plans["cloud"].obj)) == credentials.WorkerClaims(
        JI, "default", "ji", "ji-cloud-", True)
    with pytest.raises(credentials.BadCredential):
        credentials.verify(keys["cloud"], lc_token(plans["edge"].obj))
    il = {"apiVersion": "sedna.io/v1alpha1", "kind": "IncrementalLearningJob",
          "metadata": {"name": "il", "namespace": "default", "uid": "u-1"},
          "spec": {"dataset": {"name": "ds"}, "deploySpec": {"model": {"name": "m"}, "template": {"spec": {
              "containers": [{"name": "c"}]}}}, "trainSpec": {"template": {"spec": {"containers": [{"name": "c"}]}}},
              "outputDir": "/out"}}
    train = il_workers.stage_pod(il, "Train", 2, {"model": "/m", "outputDir": "/o", "dataURL": "/d"}, "/ds", settings)
    assert credentials.verify(keys["cloud"], lc_token(train)) == credentials.WorkerClaims(
        "incrementallearningjob", "default", "il", "il-train-2", False)
    # the same inputs give the same credential: a reconcile never restarts a worker for it
    again = ji_workers.plan_workers(ji, {"edge": "/m/e.onnx", "cloud": "/m/c.onnx"}, None, settings)
    assert lc_token(again["edge"].obj) == lc_token(plans["edge"].obj)
