"""A real LC against a minimal GM-side gRPC server: objects that arrive together are acked together.

A GM fanning one change out to thousands of nodes should write to all of them before it reads
their acks; an LC that answered every downstream message at once made the GM read as many acks
as it wrote while still writing. The LC now gathers its acks for up to ``lc.hubclient.ACK_DELAY``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sedna.controlplane import edgehub as eh
from tests.hub.harness import LC, scripted_gm
from tests.support.waiting import eventually

pytestmark = pytest.mark.processes
OBJECTS = 5


def model(i: int) -> tuple[eh.ObjectRef, dict[str, Any]]:
    obj = {"apiVersion": "sedna.io/v1alpha1", "kind": "Model",
           "metadata": {"name": f"m{i}", "namespace": "default", "resourceVersion": str(10 + i)},
           "spec": {"url": f"/models/m{i}.onnx", "format": "onnx"}}
    return eh.ObjectRef(eh.key_of(obj), str(10 + i)), obj


class OneShotGM:
    """Answers a hello with ResyncDone, sends :data:`OBJECTS` upserts as separate messages, records what it reads."""

    def __init__(self) -> None:
        self.received: queue.Queue[eh.UpMessage] = queue.Queue()
        self.done = threading.Event()

    def connect(self, requests: Iterator[Any], context: Any) -> Iterator[bytes]:
        first = eh.up_from_proto(next(requests))
        assert isinstance(first, eh.Hello)
        threading.Thread(target=self._read, args=(requests,), daemon=True).start()
        yield eh.down_bytes(eh.ResyncDone(0, 0))
        for i in range(OBJECTS):
            ref, obj = model(i)
            yield eh.down_bytes(eh.Upsert(ref, obj))
        self.done.wait(30)

    def _read(self, requests: Iterator[Any]) -> None:
        for pb in requests:
            self.received.put(eh.up_from_proto(pb))


def test_objects_arriving_together_are_acked_in_one_message(tmp_path: Path) -> None:
    gm = OneShotGM()
    server, address = scripted_gm(gm.connect)
    lc = LC(tmp_path, address, "edge-0", "t0")
    acks: list[eh.UpMessage] = []
    acked: set[eh.ObjectRef] = set()
    try:
        lc.start()

        def all_acked() -> bool:
            while not gm.received.empty():
                msg = gm.received.get()
                if isinstance(msg, (eh.ObjectAck, eh.ObjectAcks)):
                    acks.append(msg)
                    acked.update(msg.refs if isinstance(msg, eh.ObjectAcks) else [msg.ref])
            return len(acked) == OBJECTS

        eventually(all_acked, 20, 0.05, "acks for every object")
        stored = lc.objects()
    finally:
        gm.done.set()
        lc.stop()
        server.stop(0)
    assert acked == {model(i)[0] for i in range(OBJECTS)}
    assert len(stored) == OBJECTS  # an ack still means "stored"
    # one message per object before the batching; how many batches depends on how fast the store writes
    # (2 on a quiet machine, 3 seen under heavy load), so the test asks for batching, not for a count
    assert len(acks) < OBJECTS, f"{OBJECTS} objects sent back to back were acked in {len(acks)} messages"
    assert any(isinstance(m, eh.ObjectAcks) and len(m.refs) >= 2 for m in acks), acks
