"""What a node's pings and acks cost the hub, and what they still mean.

A ping is answered with a pong only when no object reached the node since its previous ping (the
node has heard from the GM within the interval either way), so a fan-out to thousands of nodes
is not followed by thousands of pongs. An ack batch whose every ref is in flight at that version
is applied without the validating decode; a batch that also names stale or malformed refs still
retires what it names correctly, and the malformed one is logged naming the field.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gm.cluster.interface import DATASET
from gm.cluster.local.store import LocalStore
from gm.hub.queues import NodeQueue
from sedna.controlplane import edgehub as eh
from tests.hub.harness import GM, dataset
from tests.security.rawnode import RawNode
from tests.support.waiting import eventually


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    store = LocalStore(tmp_path / "gm.db", poll_interval=0.05)
    yield store
    store.close()


def upserts_within(raw: RawNode, seconds: float) -> list[str]:
    """Names of the objects upserted to ``raw`` in the next ``seconds``."""
    names, deadline = [], time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = raw.messages.get(timeout=left)
        except queue.Empty:
            break
        if isinstance(msg, eh.Upsert):
            names.append(msg.ref.key.name)
    return names


@pytest.mark.processes
def test_a_ping_is_answered_unless_objects_reached_the_node_since_its_previous_ping(tmp_path: Path, store) -> None:
    store.create(dataset("ds", "edge-0", "/data/a.txt"))
    gm = GM(tmp_path, {"edge-0": "t0"}).start()
    raw = RawNode(gm.address, "edge-0", "t0")
    try:
        raw.send(eh.Hello(eh.NodeName("edge-0"), [], "raw"))
        raw.send(eh.ObjectAck(raw.next(eh.Upsert).ref))
        raw.next(eh.ResyncDone)
        raw.send(eh.Ping(1))
        assert raw.next(eh.Pong).nonce == 1  # the first ping of a stream is always answered
        raw.send(eh.Ping(2))
        assert raw.next(eh.Pong).nonce == 2  # nothing reached the node since ping 1

        changed = store.get(DATASET, "default", "ds")
        changed["spec"]["url"] = "/data/b.txt"
        store.update(changed)
        upsert = raw.next(eh.Upsert)
        assert upsert.object["spec"]["url"] == "/data/b.txt"
        raw.send(eh.ObjectAck(upsert.ref))
        raw.send(eh.Ping(3))  # the node has just heard from the GM: no pong
        raw.send(eh.Ping(4))  # nothing since ping 3: answered

        assert raw.next(eh.Pong).nonce == 4
        assert raw.error is None
    finally:
        raw.close()
        gm.stop()


@pytest.mark.processes
def test_an_ack_batch_retires_what_it_names_at_that_version_beside_stale_and_malformed_refs(
        tmp_path: Path, store) -> None:
    for name in ("ds-a", "ds-b"):
        store.create(dataset(name, "edge-0", f"/data/{name}.txt"))
    gm = GM(tmp_path, {"edge-0": "t0"}, "--ack-timeout", "1").start()
    raw = RawNode(gm.address, "edge-0", "t0")
    try:
        raw.send(eh.Hello(eh.NodeName("edge-0"), [], "raw"))
        first = {u.ref.key.name: u.ref for u in (raw.next(eh.Upsert), raw.next(eh.Upsert))}
        raw.next(eh.ResyncDone)
        a, b = first["ds-a"], first["ds-b"]
        stale_b = eh.ObjectRef(b.key, "0")
        unknown = eh.ObjectRef(eh.ObjectKey("dataset", "default", "nope"), "1")
        raw.send(eh.ObjectAcks([a, stale_b, unknown]))  # a is acked; b (at another version) is not

        again = upserts_within(raw, 3.0)  # b comes again after the 1 s ack timeout, a never does
        assert "ds-b" in again and "ds-a" not in again, again

        raw.send(eh.ObjectAcks([b]))  # every ref in flight: the fast path
        raw.send(eh.ObjectAcks([eh.ObjectRef(eh.ObjectKey("dataset", "default", ""), "1")]))
        eventually(lambda: "acks.refs[0].name: must not be empty" in gm.log.read_text(),
                   message="the malformed ack logged naming the field")
        assert upserts_within(raw, 2.5) == []
        assert raw.error is None
    finally:
        raw.close()
        gm.stop()


def test_ack_exact_retires_all_it_names_or_nothing() -> None:
    node_queue = NodeQueue()
    refs = [eh.ObjectRef(eh.ObjectKey("dataset", "default", f"d{i}"), str(i)) for i in range(3)]
    for ref in refs:
        node_queue.put((ref, b"wire"))
    node_queue.take(0.0)

    assert not node_queue.ack_exact([(refs[0].key, "0"), (refs[1].key, "9")])
    assert set(node_queue.inflight) == {r.key for r in refs}
    assert node_queue.ack_exact([(refs[0].key, "0"), (refs[1].key, "1"), (refs[1].key, "1")])
    assert set(node_queue.inflight) == {refs[2].key}
