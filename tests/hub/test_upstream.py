"""Upstream reports are applied once and in order, rejected with their real reason, or resent.

A handler's own error is neither misreported nor acknowledged: the sequence stays where it was,
the stream drops, and the LC resends the report (regression: a ``KeyError`` raised inside a
handler read as "kind takes no status reports" and the report was lost).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gm.cluster.interface import JOINT_INFERENCE_SERVICE, Cluster
from gm.cluster.local.store import LocalStore
from gm.hub.sequences import SequenceBook
from gm.hub.upstream import HandlerRegistry, MalformedReport, Upstream, handle_joint_inference
from sedna.controlplane import kinds
from sedna.controlplane.edgehub import NodeName, ObjectKey, Report
from tests.hub.harness import LC, ji_report, joint_inference, wait_until

NODE = NodeName("edge-0")
KEY = ObjectKey(kinds.JOINT_INFERENCE_SERVICE.key, "default", "ji")
COUNTERS = {"output": {"ownerInfo": {"inferenceNumber": 8, "hardExampleNumber": 2}}}


@pytest.fixture
def store() -> Iterator[LocalStore]:
    store = LocalStore(":memory:")
    store.create(joint_inference("ji", "edge-0"))
    yield store
    store.close()


class FailsOnce:
    """The built-in JI handler, with a bug on its first call."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls: list[int] = []

    def __call__(self, cluster: Cluster, node: str, report: Report) -> None:
        self.calls.append(report.seq)
        if len(self.calls) == 1:
            raise self.error
        handle_joint_inference(cluster, NodeName(node), report)


def upstream(store: LocalStore, **handlers: Any) -> Upstream:
    return Upstream(store, HandlerRegistry(handlers), SequenceBook(store))


def inference(store: LocalStore) -> dict[str, Any]:
    return store.get(JOINT_INFERENCE_SERVICE, "default", "ji").get("status", {}).get("inference", {})


@pytest.mark.parametrize("error", [KeyError("ownerInfo"), RuntimeError("boom")])
def test_a_handler_error_is_not_acknowledged_and_the_report_applies_when_resent(store, error) -> None:
    handler = FailsOnce(error)
    up = upstream(store, jointinferenceservice=handler)

    with pytest.raises(type(error)):
        up.apply(NODE, Report(1, KEY, COUNTERS))
    assert up.book.mark(NODE) == 0  # not recorded as applied: the resent report is not a duplicate

    ack = up.apply(NODE, Report(1, KEY, COUNTERS))

    assert (ack.seq, ack.accepted, ack.duplicate) == (1, True, False)
    assert handler.calls == [1, 1]
    assert (inference(store)["count"], inference(store)["hardExamples"]) == (8, 2)
    assert up.book.mark(NODE) == 1


def test_a_kind_without_status_reports_is_rejected_with_that_reason(store) -> None:
    up = upstream(store, jointinferenceservice=handle_joint_inference)

    ack = up.apply(NODE, Report(1, ObjectKey("reidjob", "default", "r"), {}))

    assert not ack.accepted
    assert ack.reason.startswith("kind: 'reidjob' takes no status reports (known: ")
    assert "jointinferenceservice" in ack.reason
    assert up.book.mark(NODE) == 1  # rejected for good: the LC drops it and goes on


@pytest.mark.parametrize(("payload", "reason"), [
    ({"output": {}}, "output.ownerInfo: expected an object of edge counters"),
    ({"output": {"ownerInfo": {"inferenceNumber": 8, "hardExampleNumber": -1}}},
     "field 'output.ownerInfo.hardExampleNumber': must be a non-negative integer, got -1"),
])
def test_a_payload_the_handler_refuses_is_rejected_with_the_field(store, payload, reason) -> None:
    up = upstream(store, jointinferenceservice=handle_joint_inference)

    ack = up.apply(NODE, Report(1, KEY, payload))

    assert (ack.accepted, ack.reason) == (False, f"{KEY}: {reason}")
    assert inference(store) == {}
    assert up.book.mark(NODE) == 1


def test_a_malformed_report_raised_by_a_registered_handler_is_rejected(store) -> None:
    def refuse(cluster: Cluster, node: str, report: Report) -> None:
        raise MalformedReport("round: expected an integer, got 'x'")

    ack = upstream(store, incrementallearningjob=refuse).apply(
        NODE, Report(1, ObjectKey(kinds.INCREMENTAL_LEARNING_JOB.key, "default", "il"), {}))

    assert (ack.accepted, ack.reason) == (False, "incrementallearningjob/default/il: round: expected an integer, "
                                                 "got 'x'")


@pytest.mark.processes
def test_an_lc_resends_a_report_whose_handler_failed_until_it_applies(tmp_path: Path) -> None:
    from gm.hub.server import start_hub

    store = LocalStore(tmp_path / "gm.db", poll_interval=0.05)
    store.create(joint_inference("ji", "edge-0"))
    handler = FailsOnce(KeyError("ownerInfo"))
    handlers = HandlerRegistry.default()
    handlers.register(kinds.JOINT_INFERENCE_SERVICE.key, handler)
    hub = start_hub(store, "127.0.0.1", 0, {"edge-0": "t0"}, handlers=handlers)
    lc = LC(tmp_path, f"127.0.0.1:{hub.port}", "edge-0", "t0").start()
    try:
        wait_until(lc.connected, message="edge-0 connected")
        wait_until(lambda: "jointinferenceservice/default/ji" in lc.objects(), message="the service on the LC")
        assert lc.post("w1", ji_report("w1", "ji", 8, 2)).status_code == 200

        wait_until(lambda: inference(store).get("count") == 8, message="the resent report applied")

        assert handler.calls[0] == handler.calls[1]  # the same report, resent after the dropped stream
        wait_until(lambda: lc.health()["outbox"] == 0, message="the LC's outbox drained")
    finally:
        lc.stop()
        hub.stop()
        store.close()
