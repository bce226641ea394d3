"""Per-node upstream high-water marks, persisted on the cluster's Node object.

The GM applies each ``(node, seq)`` report once: a report whose ``seq`` is not above the node's
high-water mark is a duplicate. The mark is the annotation ``edgehub.sedna.io/upstream-seq`` =
``"<outbox epoch>:<seq>"`` on the ``v1/Node`` named after the edge node (created when missing),
so it survives a GM restart in both backends and needs no table of its own. A new epoch (an LC
whose database was wiped) restarts the mark at 0. The mark is written after the report's status
write: a GM crash between the two re-applies one report, which every built-in handler tolerates
because reports carry absolute values (counts, cumulative counters), never increments.
"""

from __future__ import annotations

import threading

from gm.cluster.interface import NODE, AlreadyExists, Cluster, Conflict, NotFound

ANNOTATION = "edgehub.sedna.io/upstream-seq"


class SequenceBook:
    """Thread-safe cache of ``node -> (epoch, seq)`` backed by Node annotations."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self._marks: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()

    def begin(self, node: str, epoch: str) -> int:
        """Called on hello: load the node's mark, restarting it when the epoch changed; return it."""
        stored = self._load(node)
        mark = stored if stored[0] == epoch else (epoch, 0)
        with self._lock:
            self._marks[node] = mark
        return mark[1]

    def mark(self, node: str) -> int:
        with self._lock:
            return self._marks.get(node, ("", 0))[1]

    def advance(self, node: str, seq: int) -> None:
        """Record ``seq`` as applied (persisting it) when it is above the mark."""
        with self._lock:
            epoch, current = self._marks.get(node, ("", 0))
            if seq <= current:
                return
            self._marks[node] = (epoch, seq)
        self._save(node, f"{epoch}:{seq}")

    def _load(self, node: str) -> tuple[str, int]:
        try:
            obj = self._cluster.get(NODE, "", node)
        except NotFound:
            return ("", 0)
        raw = str(((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION, ""))
        epoch, _, seq = raw.rpartition(":")
        return (epoch, int(seq)) if seq.isdigit() else ("", 0)

    def _save(self, node: str, value: str) -> None:
        for _ in range(5):
            try:
                obj = self._cluster.get(NODE, "", node)
            except NotFound:
                obj = None
            if obj is None:
                try:
                    self._cluster.create({"apiVersion": "v1", "kind": "Node",
                                          "metadata": {"name": node, "annotations": {ANNOTATION: value}}})
                    return
                except AlreadyExists:  # a racing writer created it: read it again
                    continue
            meta = obj.setdefault("metadata", {})
            meta.setdefault("annotations", {})[ANNOTATION] = value
            try:
                self._cluster.update(obj)
                return
            except Conflict:
                continue
        raise Conflict(f"could not record upstream sequence {value!r} on Node {node!r} after 5 attempts")
