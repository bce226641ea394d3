"""The hub over real processes: resync, authentication, malformed upstream messages, live JI counters."""

from __future__ import annotations

import queue
from pathlib import Path

import grpc
import pytest

from gm.cluster.interface import DATASET, JOINT_INFERENCE_SERVICE, MODEL
from gm.cluster.local.store import LocalStore
from sedna.proto import edgehub_pb2, edgehub_pb2_grpc
from tests.hub.harness import GM, LC, dataset, ji_report, joint_inference, model, wait_until

pytestmark = pytest.mark.processes


@pytest.fixture
def store(tmp_path: Path):
    store = LocalStore(tmp_path / "gm.db")
    yield store
    store.close()


def _versions(store: LocalStore, *objs: tuple) -> dict[str, str]:
    out = {}
    for kind, name in objs:
        obj = store.get(kind, "default", name)
        out[f"{kind.kind.lower()}/default/{name}"] = obj["metadata"]["resourceVersion"]
    return out


def _holds(lc: LC, expected: dict[str, str]) -> bool:
    """The LC holds exactly these objects, each at least at the version the test wrote.

    Status-only writes (the hub records the LC's dataset reports) bump an object's version in the
    store but are not sent down, by design, so the LC may keep the version of the last spec change.
    """
    held = lc.objects()
    return held.keys() == expected.keys() and all(int(held[k]) >= int(v) for k, v in expected.items())


def test_resync_after_lc_absence_sends_exactly_the_inserts_updates_and_deletes(tmp_path: Path, store) -> None:
    # Prepare: edge-0 holds two datasets, a JI and the models it references; edge-1's dataset stays away.
    store.create(dataset("ds-a", "edge-0", "/nowhere/a.txt"))
    store.create(dataset("ds-b", "edge-0", "/nowhere/b.txt"))
    store.create(dataset("ds-c", "edge-1", "/nowhere/c.txt"))
    store.create(model("edge-model"))
    store.create(model("cloud-model"))
    store.create(model("edge-model-v2"))
    store.create(joint_inference("ji", "edge-0"))
    expected = _versions(store, (DATASET, "ds-a"), (DATASET, "ds-b"), (MODEL, "edge-model"),
                         (MODEL, "cloud-model"), (JOINT_INFERENCE_SERVICE, "ji"))
    gm = GM(tmp_path, {"edge-0": "t0"}).start()
    lc = LC(tmp_path, gm.address, "edge-0", "t0").start()
    try:
        wait_until(lambda: _holds(lc, expected), message="initial objects on edge-0")
        lc.stop()

        # Execute: while the LC is away, delete one dataset, change one, add one, switch the JI's model.
        store.delete(DATASET, "default", "ds-a")
        changed = store.get(DATASET, "default", "ds-b")
        changed["spec"]["url"] = "/nowhere/b2.txt"
        written = [store.update(changed), store.create(dataset("ds-d", "edge-0", "/nowhere/d.txt"))]
        ji = store.get(JOINT_INFERENCE_SERVICE, "default", "ji")
        ji["spec"]["edgeWorker"]["model"]["name"] = "edge-model-v2"
        written.append(store.update(ji))
        lc.start()

        # Assert: exactly the new state; the log names 4 upserts (ds-b, ds-d, ji, edge-model-v2), 2 deletes.
        expected = {**_versions(store, (MODEL, "edge-model-v2"), (MODEL, "cloud-model")),
                    **{f"{o['kind'].lower()}/default/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
                       for o in written}}
        wait_until(lambda: _holds(lc, expected), message="objects after resync")
        assert "resync sent 4 upserts, 2 deletes" in lc.log.read_text()

        # A live change reaches the connected LC too.
        store.delete(MODEL, "default", "cloud-model")
        expected.pop("model/default/cloud-model")
        wait_until(lambda: _holds(lc, expected), message="live delete")
    finally:
        lc.stop()
        gm.stop()


def test_wrong_token_and_unknown_node_are_refused_with_a_clear_error_on_both_sides(tmp_path: Path, store) -> None:
    gm = GM(tmp_path, {"edge-0": "t0"}).start()
    wrong = LC(tmp_path, gm.address, "edge-0", "not-the-token").start()
    stranger = LC(tmp_path, gm.address, "intruder", "t0").start()
    try:
        wait_until(lambda: "refused node 'edge-0'" in wrong.log.read_text(), message="LC error for the wrong token")
        wait_until(lambda: "refused node 'intruder'" in stranger.log.read_text(), message="LC error for the stranger")
        assert "wrong token for node 'edge-0'" in wrong.log.read_text()
        assert "node 'intruder' is not registered with this GM" in stranger.log.read_text()
        gm_log = gm.log.read_text()
        assert "wrong token for node 'edge-0'" in gm_log
        assert "node 'intruder' is not registered with this GM" in gm_log
        assert gm.metric("sedna_edgehub_auth_failures_total", reason="bad-token") >= 1
        assert wrong.health()["hub"] == "disconnected"
        assert stranger.health()["hub"] == "disconnected"
    finally:
        wrong.stop()
        stranger.stop()
        gm.stop()


def _up(**body) -> edgehub_pb2.UpMessage:
    return edgehub_pb2.UpMessage(**body)


def test_malformed_upstream_messages_are_rejected_with_a_reason_and_the_stream_goes_on(tmp_path: Path, store) -> None:
    store.create(dataset("ds", "edge-0", "/nowhere/x.txt"))
    store.create(joint_inference("ji", "edge-0"))
    gm = GM(tmp_path, {"edge-0": "t0"}).start()
    outgoing: queue.Queue = queue.Queue()
    outgoing.put(_up(hello=edgehub_pb2.Hello(node="edge-0", outbox_epoch="e1")))
    outgoing.put(_up(report=edgehub_pb2.Report(seq=1, kind="dataset", name="ds", payload=b"{not json")))
    outgoing.put(_up())  # no body at all
    outgoing.put(_up(report=edgehub_pb2.Report(seq=2, kind="jointinferenceservice", name="ji",
                                               payload=b'{"output": {"ownerInfo": {"inferenceNumber": -3}}}')))
    outgoing.put(_up(report=edgehub_pb2.Report(seq=3, kind="teapot", name="ds", payload=b"{}")))
    outgoing.put(_up(report=edgehub_pb2.Report(seq=4, kind="dataset", name="ds", payload=b'{"numberOfSamples": 7}')))

    def requests():
        while True:
            item = outgoing.get()
            if item is None:
                return
            yield item

    try:
        acks = {}
        with grpc.insecure_channel(gm.address) as channel:
            call = edgehub_pb2_grpc.EdgeHubStub(channel).Connect(
                requests(), metadata=(("x-sedna-node", "edge-0"), ("authorization", "Bearer t0")), timeout=20)
            for message in call:
                if message.WhichOneof("body") == "report_ack":
                    acks[message.report_ack.seq] = (message.report_ack.accepted, message.report_ack.reason)
                    if message.report_ack.seq == 4:
                        outgoing.put(None)
                        break
            call.cancel()
        assert acks[1][0] is False and "report.payload: not valid UTF-8 JSON" in acks[1][1]
        assert acks[2][0] is False and ("field 'output.ownerInfo.inferenceNumber': must be a non-negative integer, "
                                        "got -3") in acks[2][1]
        assert acks[3][0] is False and "kind: 'teapot' takes no status reports" in acks[3][1]
        assert acks[4] == (True, "")
        assert store.get(DATASET, "default", "ds")["status"]["numberOfSamples"] == 7
        assert "body: no message set" in gm.log.read_text()
    finally:
        gm.stop()


def test_ji_status_shows_live_counters_from_the_edge(tmp_path: Path, store) -> None:
    store.create(joint_inference("ji", "edge-0"))
    gm = GM(tmp_path, {"edge-0": "t0"}).start()
    lc = LC(tmp_path, gm.address, "edge-0", "t0").start()
    try:
        wait_until(lc.connected, message="LC connected")
        for count in (5, 20, 40):
            assert lc.post("w1", ji_report("w1", "ji", count, count // 5, uploadCloudRatio=0.2,
                                           cloudFailures=1, fallbacks=2)).status_code == 200

            def inference(count=count):
                status = store.get(JOINT_INFERENCE_SERVICE, "default", "ji").get("status") or {}
                return status.get("inference", {}).get("count") == count and status["inference"]

            live = wait_until(inference, message=f"count {count} in status")
            assert (live["hardExamples"], live["offloadRatio"], live["cloudFailures"], live["fallbacks"]) == (
                count // 5, 0.2, 1, 2)
    finally:
        lc.stop()
        gm.stop()
