"""Edge autonomy: the edge keeps working without the GM and nothing it reported is lost or doubled."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gm.cluster.interface import JOINT_INFERENCE_SERVICE, NODE
from gm.cluster.local.store import LocalStore
from tests.hub.harness import GM, LC, ji_report, joint_inference, wait_until

pytestmark = pytest.mark.processes


def _status(store: LocalStore) -> dict:
    return store.get(JOINT_INFERENCE_SERVICE, "default", "ji").get("status") or {}


def _upstream_seq(store: LocalStore) -> int:
    annotations = store.get(NODE, "", "edge-0")["metadata"].get("annotations") or {}
    return int(annotations["edgehub.sedna.io/upstream-seq"].rpartition(":")[2])


class Workers:
    """Two fake JI edge workers with cumulative counters: w1 does 10 inferences/2 hard per report, w2 4/1."""

    def __init__(self, lc: LC) -> None:
        self.lc = lc
        self.counts = {"w1": [0, 0], "w2": [0, 0]}
        self.posts = 0

    def report(self) -> None:
        for worker, (step, hard) in (("w1", (10, 2)), ("w2", (4, 1))):
            self.counts[worker][0] += step
            self.counts[worker][1] += hard
            count, hard_total = self.counts[worker]
            reply = self.lc.post(worker, ji_report(worker, "ji", count, hard_total, cloudFailures=0, fallbacks=0))
            assert reply.status_code == 200, reply.text
            assert reply.json() == {"Status": 200, "Message": "OK"}
            self.posts += 1

    def totals(self) -> tuple[int, int]:
        return (sum(c for c, _ in self.counts.values()), sum(h for _, h in self.counts.values()))


def test_reports_made_while_gm_is_down_for_30s_all_reach_status_exactly_once(tmp_path: Path) -> None:
    # Prepare: GM with a JI service on edge-0, its LC connected, workers reporting.
    store = LocalStore(tmp_path / "gm.db")
    store.create(joint_inference("ji", "edge-0"))
    gm = GM(tmp_path, {"edge-0": "t0"}).start()
    lc = LC(tmp_path, gm.address, "edge-0", "t0").start()
    workers = Workers(lc)
    try:
        wait_until(lc.connected, message="LC connected")
        for _ in range(4):
            workers.report()
        wait_until(lambda: lc.health()["outbox"] == 0, message="outbox drained before the outage")
        applied_before = gm.metric("sedna_edgehub_reports_total", result="applied")
        assert applied_before == workers.posts == 8

        # Execute: GM down for 30 s while the workers keep reporting to the LC.
        gm.stop()
        outage_end = time.monotonic() + 30
        while time.monotonic() < outage_end:
            workers.report()
            time.sleep(0.5)
        assert lc.health() == {"status": "ok", "hub": "disconnected", "outbox": workers.posts - 8}
        gm.start()
        workers.report()
        wait_until(lambda: lc.health()["outbox"] == 0, timeout=30, message="outbox drained after the GM returned")

        # Assert: exact cumulative counters, every seq applied once.
        count, hard = workers.totals()
        status = wait_until(lambda: _status(store).get("inference", {}).get("count") == count and _status(store),
                            message="final counters in status")
        inference = {k: v for k, v in status["inference"].items() if k != "updateTime"}
        assert inference == {"count": count, "hardExamples": hard, "offloadRatio": round(hard / count, 6),
                             "cloudFailures": 0, "fallbacks": 0}
        assert status["metrics"] == [{"key": "inferenceNumber", "value": str(count)},
                                     {"key": "hardExampleNumber", "value": str(hard)},
                                     {"key": "uploadCloudRatio", "value": str(round(hard / count, 6))}]
        applied_after = gm.metric("sedna_edgehub_reports_total", result="applied")
        assert applied_before + applied_after == workers.posts
        assert _upstream_seq(store) == workers.posts
    finally:
        lc.stop()
        gm.stop()
        store.close()


def test_lc_restarted_while_gm_is_down_resumes_from_sqlite(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "gm.db")
    store.create(joint_inference("ji", "edge-0"))
    gm = GM(tmp_path, {"edge-0": "t0"}).start()
    lc = LC(tmp_path, gm.address, "edge-0", "t0").start()
    workers = Workers(lc)
    try:
        wait_until(lambda: "jointinferenceservice/default/ji" in lc.objects(), message="JI delivered to the LC")
        workers.report()
        wait_until(lambda: lc.health()["outbox"] == 0, message="first reports applied")
        gm.stop()
        for _ in range(3):
            workers.report()

        # Execute: restart the LC with the GM still down.
        lc.stop()
        lc.start()

        # Assert: objects and queued reports came back from SQLite before any GM contact.
        assert list(lc.objects()) == ["jointinferenceservice/default/ji"]
        assert lc.health() == {"status": "ok", "hub": "disconnected", "outbox": 6}
        workers.report()  # w1 and w2 keep counting; w2's earlier counters come from SQLite
        gm.start()
        wait_until(lambda: lc.health()["outbox"] == 0, timeout=30, message="outbox drained")
        count, hard = workers.totals()
        wait_until(lambda: _status(store).get("inference", {}).get("count") == count, message="final count")
        assert _status(store)["inference"]["hardExamples"] == hard
        assert _upstream_seq(store) == workers.posts == 10
    finally:
        lc.stop()
        gm.stop()
        store.close()
