"""A real LC pings only when its stream went quiet: a node busy acking a fan-out sends no pings.

With 10 000 nodes pinging every 5 s a GM reads 2000 pings a second, most of them from nodes it has
just heard from (their acks). The LC now pings when the stream did not carry a message both ways
within ``ping_interval``; an idle stream is pinged (and the GM's pongs keep it alive) as before.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sedna.controlplane import edgehub as eh
from tests.hub.harness import LC, scripted_gm
from tests.hub.test_ack_batching import model
from tests.support.waiting import eventually

pytestmark = pytest.mark.processes
BUSY_SECONDS, IDLE_SECONDS, EVERY = 4.0, 3.5, 0.3  # the harness's LC pings every 1 s


class BusyThenIdleGM:
    """Sends an upsert every 0.3 s for 4 s, then nothing but pongs; records (time, message) of what it reads."""

    def __init__(self) -> None:
        self.received: list[tuple[float, eh.UpMessage]] = []
        self.down: queue.Queue[bytes] = queue.Queue()
        self.busy_until = 0.0
        self.done = threading.Event()
        self.streams = 0

    def connect(self, requests: Iterator[Any], context: Any) -> Iterator[bytes]:
        first = eh.up_from_proto(next(requests))
        assert isinstance(first, eh.Hello)
        self.streams += 1
        threading.Thread(target=self._read, args=(requests,), daemon=True).start()
        yield eh.down_bytes(eh.ResyncDone(0, 0))
        started = time.monotonic()
        self.busy_until = started + BUSY_SECONDS
        i = 0
        while time.monotonic() < self.busy_until:
            ref, obj = model(i % 3)
            i += 1
            obj["metadata"]["resourceVersion"] = str(100 + i)
            yield eh.down_bytes(eh.Upsert(eh.ObjectRef(ref.key, str(100 + i)), obj))
            time.sleep(EVERY)
        while not self.done.is_set():
            try:
                yield self.down.get(timeout=0.1)
            except queue.Empty:
                continue

    def _read(self, requests: Iterator[Any]) -> None:
        for pb in requests:
            msg = eh.up_from_proto(pb)
            self.received.append((time.monotonic(), msg))
            if isinstance(msg, eh.Ping):
                self.down.put(eh.down_bytes(eh.Pong(msg.nonce)))


def test_a_busy_stream_carries_no_pings_and_an_idle_one_is_pinged(tmp_path: Path) -> None:
    gm = BusyThenIdleGM()
    server, address = scripted_gm(gm.connect)
    lc = LC(tmp_path, address, "edge-0", "t0")
    try:
        lc.start()
        eventually(lambda: gm.busy_until > 0, 20, 0.05, "the LC's stream")
        time.sleep(max(0.0, gm.busy_until - time.monotonic()) + IDLE_SECONDS)
        received = list(gm.received)
    finally:
        gm.done.set()
        lc.stop()
        server.stop(0)
    busy_start = gm.busy_until - BUSY_SECONDS
    # the first second may still hold the ping of a stream that had just been quiet
    busy = [m for at, m in received if busy_start + 1.5 <= at <= gm.busy_until]
    idle = [m for at, m in received if at > gm.busy_until + 1.2]
    assert any(isinstance(m, (eh.ObjectAck, eh.ObjectAcks)) for m in busy), busy
    assert [m for m in busy if isinstance(m, eh.Ping)] == [], "pings while acks were flowing"
    assert len([m for m in idle if isinstance(m, eh.Ping)]) >= 1, idle
    assert gm.streams == 1, "the idle stream was dropped and dialled again"
