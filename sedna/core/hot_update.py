"""Model hot update: watch ``model_config.json`` and reload the model on **every** change.

The Local Controller deploys a new model by writing (atomically: temp file + rename)::

    {"model_config": {"model_path": "<file>", "model_update_time": "<stamp>", "round": N}}

to the file ``MODEL_HOT_UPDATE_CONFIG`` names. :class:`HotUpdateWatcher` reads it every
``MODEL_POLL_PERIOD_SECONDS`` and, in between, stats it every ``stat_period`` (0.1 s): a
changed ``(inode, size, mtime)`` -- the LC's rename -- is read at once, so a deploy is picked up
within ~0.1 s while the periodic read stays the safety net (a filesystem whose mtime lags, a
write the stat missed). It calls ``load(config)`` whenever ``(model_path, model_update_time)``
differs from the last one it loaded. Sedna's loader kept a "completed"
flag and never reloaded after the first update (its issue #381); here the signature of the
config is the only state, so the tenth deploy works like the first. A relative
``model_path`` is resolved against the config file's directory. A config that cannot be
read or parsed is retried next period and logged once per distinct problem.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelConfig:
    """One version of ``model_config.json``."""

    model_path: str
    update_time: str
    round: int | None = None

    @property
    def signature(self) -> tuple[str, str]:
        return self.model_path, self.update_time


def read_model_config(path: str | Path) -> ModelConfig:
    """Parse the hot-update config; ValueError names the missing or malformed field."""
    p = Path(path)
    try:
        body = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: not valid JSON ({exc.msg} at char {exc.pos})") from None
    section = body.get("model_config") if isinstance(body, dict) else None
    if not isinstance(section, dict):
        raise ValueError(f"{p}: expected an object with a 'model_config' object")
    model_path = section.get("model_path")
    if not isinstance(model_path, str) or not model_path:
        raise ValueError(f"{p}: model_config.model_path must be a non-empty string, got {model_path!r}")
    if not Path(model_path).is_absolute():
        model_path = str(p.parent / model_path)
    stamp = section.get("model_update_time", "")
    round_ = section.get("round")
    return ModelConfig(model_path, str(stamp), round_ if isinstance(round_, int) else None)


Loader = Callable[[ModelConfig], None]


class HotUpdateWatcher:
    """Polls ``config_path``; ``load(config)`` runs on the watcher thread for each new version."""

    def __init__(self, config_path: str | Path, load: Loader, period: float = 60.0,
                 initial: tuple[str, str] | None = None, stat_period: float = 0.1) -> None:
        if period <= 0:
            raise ValueError(f"hot update poll period must be positive, got {period!r}")
        if stat_period <= 0:
            raise ValueError(f"hot update stat period must be positive, got {stat_period!r}")
        self.config_path = Path(config_path)
        self.period = period
        self.stat_period = min(stat_period, period)
        self._load = load
        self.loaded: tuple[str, str] | None = initial
        self._problem = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: tuple[int, int, int] | None = None
        self.reloads = 0

    def check(self) -> bool:
        """Look once; True when a new model version was handed to ``load``."""
        if not self.config_path.exists():
            return False
        try:
            config = read_model_config(self.config_path)
        except (OSError, ValueError) as exc:
            if str(exc) != self._problem:
                self._problem = str(exc)
                LOG.warning("hot update config unusable, retrying every %.3gs: %s", self.period, exc)
            return False
        self._problem = ""
        if config.signature == self.loaded:
            return False
        self.loaded = config.signature  # a broken model is not retried until the config changes again
        self._load(config)
        self.reloads += 1
        return True

    def start(self) -> None:
        # the baseline is taken here, not in the thread: a deploy landing before the thread first
        # runs must still look like a change (it did not, on a busy machine, until the next period)
        self._seen = _stat(self.config_path)
        self._thread = threading.Thread(target=self._run, name="model-hot-update", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        seen = self._seen
        last_read = time.monotonic()
        while not self._stop.wait(self.stat_period):
            now, stat = time.monotonic(), _stat(self.config_path)
            if stat == seen and now - last_read < self.period:
                continue
            seen, last_read = stat, now
            try:
                self.check()
            except Exception:  # the loader failed; it reported why, the watcher goes on
                LOG.exception("hot update of %s failed", self.config_path)


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def current_config(path: str | Path) -> ModelConfig | None:
    """The config at ``path`` when it exists and parses, else None."""
    try:
        return read_model_config(path) if Path(path).exists() else None
    except (OSError, ValueError):
        return None


__all__ = ["HotUpdateWatcher", "ModelConfig", "current_config", "read_model_config"]

