"""The filter contract: ``filter(inference_result) -> bool`` (True = hard example).

A result a filter cannot judge (empty, scores outside [0, 1], wrong shape) is *not*
hard: the filter returns False, counts the fault by kind in :class:`FaultCounter`
and logs the first occurrence of each kind only, so a misbehaving model can never
crash or flood the worker.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from sedna.common.log import get_logger

LOG = get_logger(__name__)


class UnjudgeableResult(ValueError):
    """Raised inside a filter when a result cannot be judged; the base turns it into False."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class FaultCounter:
    """Counts unjudgeable results by kind; thread-safe."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, kind: str) -> bool:
        """Count one fault; True when it is the first of its kind."""
        with self._lock:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            return self._counts[kind] == 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())


class BaseFilter:
    """Base of every hard-example-mining filter; subclasses implement :meth:`judge`."""

    def __init__(self) -> None:
        self.faults = FaultCounter()

    def judge(self, infer_result: Any) -> bool:
        """Decide hardness of a valid result; raise :class:`UnjudgeableResult` otherwise."""
        raise NotImplementedError

    def __call__(self, infer_result: Any = None) -> bool:
        try:
            return bool(self.judge(infer_result))
        except UnjudgeableResult as exc:
            if self.faults.add(exc.kind):
                LOG.warning("%s cannot judge an inference result (%s); treating it as not hard "
                            "(further faults of this kind are only counted)", type(self).__name__, exc)
            return False

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "faults" and not k.startswith("_"))
        return f"{type(self).__name__}({params})"


def as_float_array(value: Any, what: str, check_finite: bool = True) -> np.ndarray:
    """``value`` as a float64 array, or UnjudgeableResult('not numeric' / 'empty' / 'not finite')."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise UnjudgeableResult("not numeric", f"{what} is not numeric: {type(value).__name__}") from None
    if arr.size == 0:
        raise UnjudgeableResult("empty", f"{what} is empty")
    if check_finite and not np.all(np.isfinite(arr)):
        raise UnjudgeableResult("not finite", f"{what} contains NaN or infinity")
    return arr


def check_probabilities(scores: np.ndarray, what: str) -> None:
    """Scores must lie in [0, 1]."""
    if np.any(scores < 0.0) or np.any(scores > 1.0):
        raise UnjudgeableResult("score out of range", f"{what} outside [0, 1]")
