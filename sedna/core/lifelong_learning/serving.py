"""The edge side: keep a local copy of the knowledge base, follow new versions, answer samples.

:class:`EdgeKnowledge` syncs a :class:`~sedna.service.kb.sources.LocalKB` (``EDGE_KB_DIR``)
from the index location (``MODEL_URLS``) and serves from that copy, so a cloud KB that is away
costs nothing but freshness: a failed sync keeps the last version, and a restarted worker
starts from the copy on disk. :meth:`EdgeKnowledge.refresh` (called every poll period by a
thread when ``MODEL_HOT_UPDATE=true``) swaps in a new version under a lock, between requests.

:func:`answer` is the inference pipeline: allocate each sample to a known task, ask the
recognizer which samples are unseen, answer seen samples with their task's model (remodel
per task, run, integrate back in order), and unseen ones with the unseen estimator or the
task the unseen-task allocation picks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sedna.algorithms.lifelong.samples import TaskSamples
from sedna.common.errors import ModelLoadError
from sedna.common.log import get_logger
from sedna.core.lifelong_learning.knowledge import EstimatorFactory, Knowledge
from sedna.service.kb.sources import IndexSource, LocalKB, open_source

LOG = get_logger(__name__)


@dataclass
class Answer:
    """Results in row order, the unseen mask, and the task that answered each row."""

    result: np.ndarray
    unseen: np.ndarray
    entries: list[str]


@dataclass
class Algorithms:
    """The plug-ins one inference uses."""

    allocation: Any
    recognizer: Any
    remodeling: Any
    integrate: Any
    unseen_allocation: Any


def answer(knowledge: Knowledge, samples: TaskSamples, algorithms: Algorithms, unseen_estimator: Any = None,
           post_process: Callable[[Any], Any] | None = None) -> Answer:
    """Run the inference pipeline on ``samples`` (see the module docstring)."""
    groups = knowledge.deployed_groups()
    known = [g.known() for g in groups]
    n = len(samples)
    if not known:
        raise ModelLoadError(f"knowledge base version {knowledge.version} has no deployable task group")
    allocations = np.asarray(algorithms.allocation(samples, known))
    unseen = np.asarray(algorithms.recognizer(samples, known, allocations), np.bool_)
    answered_by = np.where(unseen, -1, allocations)
    if unseen.any():
        fallback = np.asarray(algorithms.unseen_allocation(samples.subset(unseen), known))
        answered_by[unseen] = fallback
    parts: list[tuple[TaskSamples, np.ndarray]] = []
    local = TaskSamples(samples.x, samples.y, samples.attrs, np.arange(n))
    if unseen_estimator is not None and unseen.any():
        rows = local.subset(unseen)
        parts.append((rows, np.asarray(unseen_estimator.predict(rows.x), np.float32)))
        answered_by[unseen] = -2
    for j, rows in algorithms.remodeling(local, answered_by):
        if j < 0:
            continue
        result = groups[j].predict_proba(rows.x)
        parts.append((rows, post_process(result) if post_process is not None else result))
    result = algorithms.integrate(parts, n)
    entries = [groups[j].entry if j >= 0 else ("unseen" if j == -2 else "") for j in answered_by]
    return Answer(result, unseen, entries)


class EdgeKnowledge:
    """The served knowledge base: a local copy synced from ``location``."""

    def __init__(self, location: str, local_dir: str, factory: EstimatorFactory, token: str = "",
                 on_change: Callable[[Knowledge], None] | None = None) -> None:
        self.location = location
        self.local = LocalKB(local_dir)
        self._factory = factory
        self._token = token
        self._on_change = on_change
        self._lock = threading.RLock()
        self.knowledge: Knowledge | None = None
        self.last_error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._opened: IndexSource | None = None
        self._opened_for = ""

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def _source(self) -> IndexSource:
        """One source (and its HTTP connections) per location, reused across polls."""
        if self._opened is None or self._opened_for != self.location:
            if self._opened is not None:
                self._opened.close()
            self._opened, self._opened_for = open_source(self.location, self._token), self.location
        return self._opened

    def follow(self, location: str) -> bool:
        """Switch to another index location (a deploy naming a new version) and refresh."""
        self.location = location
        return self.refresh()

    def refresh(self) -> bool:
        """Sync the local copy; load and swap in a new version. True when the served version changed."""
        result = self.local.sync(self._source()) if self.location else None
        self.last_error = result.error if result is not None else ""
        with self._lock:
            if self.knowledge is not None and (result is None or not result.changed):
                return False
            if self.local.read() is None:
                raise ModelLoadError(f"no knowledge base to serve: {self.location or 'MODEL_URLS is empty'} gave "
                                     f"none ({self.last_error or 'no index'}) and {self.local.root} has no copy")
            knowledge = Knowledge.load(self.local, self._factory)
            self.knowledge = knowledge
        LOG.info("serving knowledge base version %s (%d task groups) from %s", knowledge.version,
                 len(knowledge.groups), self.local.root)
        if self._on_change is not None:
            self._on_change(knowledge)
        return True

    def start(self, period: float) -> None:
        """Refresh every ``period`` seconds on a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, args=(period,), name="kb-hot-update", daemon=True)
            self._thread.start()

    def _run(self, period: float) -> None:
        while not self._stop.wait(period):
            try:
                self.refresh()
            except Exception:  # the next period retries; the old version keeps serving
                LOG.exception("knowledge base refresh from %s failed", self.location)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._opened is not None:
            self._opened.close()
            self._opened = None
