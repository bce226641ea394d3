"""Atomic round checkpoints: ``.npz`` of named arrays plus a JSON state file, no pickle.

Layout of the checkpoint directory::

    round-000007.npz          global weights after round 7
    round-000007.strategy.npz strategy state (momentum, moments), when there is any
    state.json                {"round": 7, "weights": "round-000007.npz", "history": [...], ...}

Files are written to a temporary name, fsynced and renamed, and ``state.json`` is
replaced last, so a crash at any point leaves the previous complete checkpoint readable.
Loading uses ``allow_pickle=False``. :class:`BackgroundWriter` writes one checkpoint at a time
on a thread, so the fsyncs of round N overlap the transport of round N+1.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sedna.algorithms.aggregation.records import Weights

STATE = "state.json"


@dataclass
class Checkpoint:
    """What a restarted server resumes from."""

    round: int
    weights: Weights
    history: list[dict[str, Any]] = field(default_factory=list)
    strategy_state: dict[str, np.ndarray] = field(default_factory=dict)
    done: bool = False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` atomically (temp file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        np.savez(handle, **arrays)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_npz(path: Path) -> Weights:
    """Named arrays of an ``.npz`` file, in file order; never unpickles."""
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


class CheckpointStore:
    """Saves and loads round checkpoints in one directory."""

    def __init__(self, directory: str | Path, keep: int = 2) -> None:
        self.directory = Path(directory)
        self.keep = keep

    def save(self, ckpt: Checkpoint) -> None:
        """Persist ``ckpt``; older weight files beyond ``keep`` are removed afterwards."""
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        name = f"round-{ckpt.round:06d}"
        save_npz(d / f"{name}.npz", ckpt.weights)
        if ckpt.strategy_state:
            save_npz(d / f"{name}.strategy.npz", ckpt.strategy_state)
        state = {
            "round": ckpt.round,
            "weights": f"{name}.npz",
            "strategy_state": f"{name}.strategy.npz" if ckpt.strategy_state else "",
            "done": ckpt.done,
            "saved_at": time.time(),
            "history": ckpt.history,
        }
        tmp = d / f".{STATE}.tmp"
        tmp.write_text(json.dumps(state, indent=1, default=float))
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, d / STATE)
        _fsync_dir(d)
        self._prune(ckpt.round)

    def _prune(self, current: int) -> None:
        if self.keep <= 0:
            return
        rounds = sorted({int(p.name[6:12]) for p in self.directory.glob("round-*.npz")})
        for old in rounds[: -self.keep]:
            if old != current:
                for p in self.directory.glob(f"round-{old:06d}*.npz"):
                    p.unlink(missing_ok=True)

    def load(self) -> Checkpoint | None:
        """The last complete checkpoint, or None when the directory holds none."""
        state_file = self.directory / STATE
        if not state_file.exists():
            return None
        try:
            state = json.loads(state_file.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"checkpoint {state_file} is not valid JSON: {exc}") from None
        weights = load_npz(self.directory / state["weights"])
        strategy = load_npz(self.directory / state["strategy_state"]) if state.get("strategy_state") else {}
        return Checkpoint(round=int(state["round"]), weights=weights, history=list(state.get("history", [])),
                          strategy_state=strategy, done=bool(state.get("done", False)))


class BackgroundWriter:
    """Saves checkpoints to a :class:`CheckpointStore` on a thread, one at a time."""

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, ckpt: Checkpoint, then: Callable[[], None] | None = None) -> None:
        """Start saving ``ckpt`` (after the previous save); ``then()`` runs once it is on disk.

        ``ckpt`` must not change afterwards: pass copies of anything the caller keeps mutating.
        """
        self.wait()

        def write() -> None:
            try:
                self.store.save(ckpt)
            except BaseException as exc:
                self._error = exc
                return
            if then is not None:
                then()

        self._thread = threading.Thread(target=write, name="fl-checkpoint", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Block until the pending save is on disk; re-raise its failure."""
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        error, self._error = self._error, None
        if error is not None:
            raise error
