"""A bounded on-disk store of hard examples.

Each example is two files in one directory: ``<id>.npy`` (the raw input tensor,
saved without pickle) and ``<id>.json`` (metadata: time, edge result, state, cloud
result once known). State is ``pending`` until the cloud has answered it, then
``answered``. When the store is full, the oldest answered examples go first, then
the oldest pending ones; every eviction is counted. The store survives restarts:
pending examples left by a previous run are offloaded when the cloud is back.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PENDING = "pending"
ANSWERED = "answered"


@dataclass(frozen=True)
class StoredExample:
    id: str
    meta: dict[str, Any]
    path: Path

    def load(self) -> np.ndarray:
        """The stored input tensor."""
        return np.load(self.path.with_suffix(".npy"), allow_pickle=False)


def _storable(array: np.ndarray) -> np.ndarray:
    """``array`` as numpy can save without pickle: text (BYTES) held as objects becomes fixed-width."""
    if array.dtype != object:
        return array
    from sedna.backend import bytes_tensors

    text = np.asarray(bytes_tensors.to_text(array))
    if text.dtype == object:
        raise ValueError("a hard example holds objects that are neither numbers nor text; it cannot be stored")
    return text


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        from sedna.backend import bytes_tensors

        return bytes_tensors.to_text(value) if bytes_tensors.is_text_array(value) else value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if isinstance(value, np.generic):
        return value.item()
    return value


class HardExampleStore:
    """Hard examples kept under ``root``, at most ``capacity`` of them."""

    def __init__(self, root: str | Path, capacity: int = 10000) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.capacity = capacity
        self.evicted = 0
        self._lock = threading.Lock()
        self._order: dict[str, str] = {}  # id -> state, oldest first
        for meta_path in sorted(self.root.glob("*.json"), key=lambda p: p.stat().st_mtime):
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, json.JSONDecodeError):
                continue  # a half-written file from a crash; its .npy is removed below
            self._order[meta_path.stem] = meta.get("state", PENDING)
        for npy in self.root.glob("*.npy"):
            if npy.stem not in self._order:
                npy.unlink(missing_ok=True)

    def put(self, data: np.ndarray, edge_result: Any = None, state: str = PENDING,
            cloud_result: Any = None, **extra: Any) -> str:
        """Store one example; returns its id."""
        example_id = f"{time.time_ns():x}-{uuid.uuid4().hex[:8]}"
        meta = {"id": example_id, "time": time.time(), "state": state, "dtype": str(np.asarray(data).dtype),
                "shape": list(np.shape(data)), "edge_result": _jsonable(edge_result),
                "cloud_result": _jsonable(cloud_result), **{k: _jsonable(v) for k, v in extra.items()}}
        np.save(self.root / f"{example_id}.npy", _storable(np.asarray(data)), allow_pickle=False)
        self._write_meta(example_id, meta)
        with self._lock:
            self._order[example_id] = state
            self._evict_locked()
        return example_id

    def mark_answered(self, example_id: str, cloud_result: Any) -> None:
        """Record the cloud's answer for a pending example."""
        path = self.root / f"{example_id}.json"
        try:
            meta = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return
        meta.update(state=ANSWERED, cloud_result=_jsonable(cloud_result), answered_at=time.time())
        self._write_meta(example_id, meta)
        with self._lock:
            if example_id in self._order:
                self._order[example_id] = ANSWERED

    def pending(self, limit: int = 100) -> Iterator[StoredExample]:
        """The oldest pending examples, up to ``limit``."""
        with self._lock:
            ids = [i for i, state in self._order.items() if state == PENDING][:limit]
        for example_id in ids:
            path = self.root / f"{example_id}.json"
            try:
                yield StoredExample(example_id, json.loads(path.read_text()), path)
            except (OSError, json.JSONDecodeError):
                continue

    def counts(self) -> dict[str, int]:
        with self._lock:
            pending = sum(1 for s in self._order.values() if s == PENDING)
            return {"pending": pending, "answered": len(self._order) - pending, "evicted": self.evicted}

    def _write_meta(self, example_id: str, meta: dict[str, Any]) -> None:
        tmp = self.root / f".{example_id}.json.tmp"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self.root / f"{example_id}.json")

    def _evict_locked(self) -> None:
        while len(self._order) > self.capacity:
            victim = next((i for i, s in self._order.items() if s == ANSWERED), None)
            if victim is None:
                victim = next(iter(self._order))
            del self._order[victim]
            self.evicted += 1
            for suffix in (".json", ".npy"):
                (self.root / f"{victim}{suffix}").unlink(missing_ok=True)
