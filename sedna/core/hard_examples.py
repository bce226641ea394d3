"""A bounded on-disk store of hard examples.

Each example is two files in one directory: ``<id>.npy`` (the raw input tensor,
saved without pickle) and ``<id>.json`` (metadata: time, edge result, state, cloud
result once known). State is ``pending`` until the cloud has answered it, then
``answered``. The store survives restarts: pending examples left by a previous run are
offloaded when the cloud is back.

Bounds (DESIGN §7: stores are bounded in bytes, and a full disk fails storing, never
serving):

* at most ``capacity`` examples and ``max_bytes`` bytes; when full, the oldest answered
  examples go first, then the oldest pending ones; every eviction is counted;
* inside :meth:`HardExampleStore.request` (one inference request, however many samples
  it carries) at most ``request_share`` of either bound is stored; the request's further
  examples are not kept (counted as ``over_share``), so one request cannot evict every
  pending example;
* a failed write (a full ``STATE_DIR``, a read-only disk) is counted, logged once per run
  of failures, leaves no partial file behind, and :meth:`HardExampleStore.put` returns
  None: the answer the models computed is served all the same.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

LOG = logging.getLogger(__name__)
PENDING = "pending"
ANSWERED = "answered"
_REQUEST: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("hard_example_request", default=None)


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
    """Hard examples kept under ``root``: at most ``capacity`` of them and ``max_bytes`` bytes."""

    def __init__(self, root: str | Path, capacity: int = 10000, max_bytes: int = 1 << 30,
                 request_share: float = 0.25) -> None:
        if capacity < 1 or max_bytes < 1 or not 0 < request_share <= 1:
            raise ValueError(f"HardExampleStore needs capacity >= 1, max_bytes >= 1 and 0 < request_share <= 1, "
                             f"got {capacity!r}, {max_bytes!r}, {request_share!r}")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.request_share = request_share
        self.evicted = 0
        self.over_share = 0
        """Examples not kept because their request had used its share of the store."""
        self.write_failures = 0
        """Examples not kept because writing them failed (e.g. no space left on the device)."""
        self._failing = False
        self._lock = threading.Lock()
        self._order: dict[str, str] = {}  # id -> state, oldest first
        self._sizes: dict[str, tuple[int, int]] = {}  # id -> (.npy bytes, .json bytes)
        self._bytes = 0
        for tmp in self.root.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)  # a write interrupted by a crash or a full disk
        for meta_path in sorted(self.root.glob("*.json"), key=lambda p: p.stat().st_mtime):
            try:
                meta = json.loads(meta_path.read_text())
                sizes = (meta_path.with_suffix(".npy").stat().st_size, meta_path.stat().st_size)
            except (OSError, json.JSONDecodeError):
                continue  # a half-written file from a crash; its .npy is removed below
            self._order[meta_path.stem] = meta.get("state", PENDING)
            self._sizes[meta_path.stem] = sizes
            self._bytes += sum(sizes)
        for npy in self.root.glob("*.npy"):
            if npy.stem not in self._order:
                npy.unlink(missing_ok=True)
        for meta_path in self.root.glob("*.json"):
            if meta_path.stem not in self._order:
                meta_path.unlink(missing_ok=True)
        with self._lock:
            self._evict_locked()

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Count what is stored inside the block as one request, held to ``request_share`` of the store."""
        token = _REQUEST.set([0, 0])
        try:
            yield
        finally:
            _REQUEST.reset(token)

    def put(self, data: np.ndarray, edge_result: Any = None, state: str = PENDING,
            cloud_result: Any = None, **extra: Any) -> str | None:
        """Store one example; its id, or None when it was not kept (over its request's share, or a write failed)."""
        array = _storable(np.asarray(data))
        example_id = f"{time.time_ns():x}-{uuid.uuid4().hex[:8]}"
        meta = {"id": example_id, "time": time.time(), "state": state, "dtype": str(array.dtype),
                "shape": list(array.shape), "edge_result": _jsonable(edge_result),
                "cloud_result": _jsonable(cloud_result), **{k: _jsonable(v) for k, v in extra.items()}}
        used = _REQUEST.get()
        estimate = array.nbytes + 128
        share_bytes, share_count = self.max_bytes * self.request_share, max(1.0, self.capacity * self.request_share)
        if estimate > share_bytes or (used is not None and (used[0] + 1 > share_count
                                                            or used[1] + estimate > share_bytes)):
            with self._lock:
                self.over_share += 1
            return None
        try:
            sizes = (self._write_npy(example_id, array), self._write_meta(example_id, meta))
        except OSError as exc:
            self._write_failed(example_id, exc)
            return None
        if self._failing:
            self._failing = False
            LOG.info("hard examples are stored again under %s", self.root)
        if used is not None:
            used[0] += 1
            used[1] += sum(sizes)
        with self._lock:
            self._order[example_id] = state
            self._sizes[example_id] = sizes
            self._bytes += sum(sizes)
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
        try:
            size = self._write_meta(example_id, meta)
        except OSError as exc:  # the example stays pending and is offered again; nothing is lost
            self._write_failed(None, exc)
            return
        with self._lock:
            if example_id in self._order:
                self._order[example_id] = ANSWERED
                npy, old = self._sizes[example_id]
                self._sizes[example_id] = (npy, size)
                self._bytes += size - old

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
        """Pending and answered examples, and how many were evicted."""
        with self._lock:
            pending = sum(1 for s in self._order.values() if s == PENDING)
            return {"pending": pending, "answered": len(self._order) - pending, "evicted": self.evicted}

    def stats(self) -> dict[str, int]:
        """:meth:`counts`, the bytes held, and what was not kept (over a request's share, failed writes)."""
        with self._lock:
            held = self._bytes
        return {**self.counts(), "bytes": held, "over_share": self.over_share, "write_failures": self.write_failures}

    def _write_npy(self, example_id: str, array: np.ndarray) -> int:
        tmp = self.root / f".{example_id}.npy.tmp"
        try:
            with tmp.open("wb") as handle:
                np.save(handle, array, allow_pickle=False)
            os.replace(tmp, self.root / f"{example_id}.npy")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return (self.root / f"{example_id}.npy").stat().st_size

    def _write_meta(self, example_id: str, meta: dict[str, Any]) -> int:
        tmp = self.root / f".{example_id}.json.tmp"
        body = json.dumps(meta).encode()
        try:
            with tmp.open("wb") as handle:
                handle.write(body)
            os.replace(tmp, self.root / f"{example_id}.json")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return len(body)

    def _write_failed(self, example_id: str | None, exc: OSError) -> None:
        """Count a failed write, remove what it left, and log only the first of a run of failures."""
        if example_id is not None:
            for suffix in (".npy", ".json"):
                (self.root / f"{example_id}{suffix}").unlink(missing_ok=True)
        with self._lock:
            self.write_failures += 1
            first = not self._failing
            self._failing = True
        if first:
            LOG.error("cannot store hard examples under %s: %s; answers are served, examples are not kept "
                      "until space is freed (counted as write_failures)", self.root, exc.strerror or exc)

    def _evict_locked(self) -> None:
        while self._order and (len(self._order) > self.capacity or self._bytes > self.max_bytes):
            victim = next((i for i, s in self._order.items() if s == ANSWERED), None)
            if victim is None:
                victim = next(iter(self._order))
            del self._order[victim]
            self._bytes -= sum(self._sizes.pop(victim, (0, 0)))
            self.evicted += 1
            for suffix in (".json", ".npy"):
                (self.root / f"{victim}{suffix}").unlink(missing_ok=True)
