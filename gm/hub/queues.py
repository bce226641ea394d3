"""Per-node downstream queues: newest version per ``kind/namespace/name``, acked by resourceVersion.

A :class:`NodeQueue` lives as long as the hub (not the connection), so changes for a node that is
offline wait here; a reconnecting node's hello replaces the queue's content with the exact resync
difference (:meth:`NodeQueue.reset`). ``pending`` holds what still has to be written; ``take``
moves messages to ``inflight`` until the LC acks that key *at that resourceVersion*; a newer
version of a key supersedes both the pending and the in-flight one (so an ack for the old one is
ignored); :meth:`NodeQueue.requeue_expired` puts unacked messages back after a timeout.
Entries are ``(ref, wire bytes)``: the message is already serialised, so one big object fanned
out to a thousand nodes is encoded once, not a thousand times.
Used only from the hub's event loop, so there is no locking; ``wake`` is set on every put.
"""

from __future__ import annotations

import asyncio

from sedna.controlplane.edgehub import ObjectKey, ObjectRef

Down = tuple[ObjectRef, bytes]


class NodeQueue:
    def __init__(self) -> None:
        self.pending: dict[ObjectKey, Down] = {}
        self.inflight: dict[ObjectKey, tuple[Down, float]] = {}
        self.wake = asyncio.Event()

    def put(self, msg: Down) -> None:
        key = msg[0].key
        self.inflight.pop(key, None)
        self.pending.pop(key, None)
        self.pending[key] = msg
        self.wake.set()

    def reset(self, msgs: list[Down]) -> None:
        self.pending.clear()
        self.inflight.clear()
        for msg in msgs:
            self.put(msg)

    def take(self, now: float, limit: int = 256) -> list[Down]:
        out: list[Down] = []
        for key in list(self.pending)[:limit]:
            msg = self.pending.pop(key)
            self.inflight[key] = (msg, now)
            out.append(msg)
        return out

    def ack(self, ref: ObjectRef) -> bool:
        entry = self.inflight.get(ref.key)
        if entry is not None and entry[0][0].resource_version == ref.resource_version:
            del self.inflight[ref.key]
            return True
        return False

    def ack_exact(self, acks: list[tuple[ObjectKey, str]]) -> bool:
        """Retire every in-flight message named by ``(key, resourceVersion)`` when each one is in flight at
        that version; otherwise change nothing and return False."""
        inflight = self.inflight
        for key, version in acks:
            entry = inflight.get(key)
            if entry is None or entry[0][0].resource_version != version:
                return False
        for key, _version in acks:
            inflight.pop(key, None)
        return True

    def requeue_expired(self, now: float, timeout: float) -> int:
        expired = [msg for msg, sent in self.inflight.values() if now - sent > timeout]
        for msg in expired:
            self.put(msg)
        return len(expired)

    def __len__(self) -> int:
        return len(self.pending) + len(self.inflight)
