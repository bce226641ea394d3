"""The built-in filters, with Sedna's names, formulas and defaults.

- ``Threshold``: boxes ``[x1, y1, x2, y2, score, label]``; hard iff mean score < threshold.
- ``CrossEntropy``: class probabilities p over K classes;
  confidence = 1 + Σ pᵢ·ln pᵢ / ln K; hard iff confidence < threshold. (K = 1: the
  distribution is certain, confidence 1; Sedna divided by zero.)
- ``IBT`` (image-box threshold): hard iff (#boxes with score ≤ threshold_box) / #boxes
  ≥ 1 − threshold_img.
- ``Random``: hard with probability ``random_ratio`` (seedable).
- ``CloudOnly`` / ``EdgeOnly``: always / never hard.

Box inputs may be a list of boxes or an (N, ≥6) array; a batch of one row of
probabilities (shape (1, K)) is accepted as the single sample it is.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np

from sedna.algorithms.hard_example_mining.base import (
    BaseFilter,
    UnjudgeableResult,
    as_float_array,
    check_probabilities,
)
from sedna.common.class_factory import ClassFactory, ClassType


def _boxes(infer_result: Any) -> np.ndarray:
    boxes = as_float_array(infer_result, "boxes")
    if boxes.ndim == 1:
        boxes = boxes.reshape(1, -1)
    if boxes.ndim != 2 or boxes.shape[1] < 5:
        raise UnjudgeableResult("bad box shape", f"boxes must be [x1, y1, x2, y2, score, ...], got shape {boxes.shape}")
    return boxes


def _number(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"hard example mining parameter {name}={value!r} is not a number") from None


@ClassFactory.register(ClassType.HEM, alias="Threshold")
class ThresholdFilter(BaseFilter):
    """Hard iff the mean box score is below ``threshold``."""

    def __init__(self, threshold: float = 0.5, **_: Any) -> None:
        super().__init__()
        self.threshold = _number(threshold, "threshold")

    def judge(self, infer_result: Any) -> bool:
        scores = _boxes(infer_result)[:, 4]
        return bool(scores.mean() < self.threshold)


@ClassFactory.register(ClassType.HEM, alias="CrossEntropy")
class CrossEntropyFilter(BaseFilter):
    """Hard iff the normalised-entropy confidence is below ``threshold_cross_entropy``."""

    def __init__(self, threshold_cross_entropy: float = 0.5, **_: Any) -> None:
        super().__init__()
        self.threshold_cross_entropy = _number(threshold_cross_entropy, "threshold_cross_entropy")

    def confidence(self, infer_result: Any) -> float:
        """1 + Σ pᵢ ln pᵢ / ln K, in [0, 1]: 1 for a one-hot, 0 for the uniform distribution."""
        if isinstance(infer_result, np.ndarray) and infer_result.dtype.kind == "f" and 1 < infer_result.size <= 64 \
                and (infer_result.ndim == 1 or infer_result.shape[:-1] == (1,) * (infer_result.ndim - 1)):
            return _small_confidence(infer_result.ravel().tolist())
        probs = as_float_array(infer_result, "class probabilities", check_finite=False)
        if probs.ndim == 2 and probs.shape[0] == 1:
            probs = probs[0]
        if probs.ndim != 1:
            raise UnjudgeableResult("bad probability shape",
                                    f"expected one probability vector, got shape {probs.shape}")
        lo, hi = probs.min(), probs.max()
        if not (lo >= 0.0 and hi <= 1.0):  # also false for NaN
            kind = "score out of range" if np.isfinite(lo) and np.isfinite(hi) else "not finite"
            raise UnjudgeableResult(kind, "class probabilities outside [0, 1] or not finite")
        k = probs.shape[0]
        if k == 1:
            return 1.0
        # p·ln p with 0·ln 0 = 0, in one dot product
        return float(1.0 + np.dot(probs, np.log(np.where(probs > 0.0, probs, 1.0))) / math.log(k))

    def judge(self, infer_result: Any) -> bool:
        return self.confidence(infer_result) < self.threshold_cross_entropy


def _small_confidence(probs: list[float]) -> float:
    """The same formula in plain Python: for a few classes it beats numpy's per-call overhead,
    which matters on the edge's hot path (a sample that stays on the edge pays it in full)."""
    lo, hi = min(probs), max(probs)
    if not (lo >= 0.0 and hi <= 1.0):  # also false for NaN
        kind = "score out of range" if math.isfinite(lo) and math.isfinite(hi) else "not finite"
        raise UnjudgeableResult(kind, "class probabilities outside [0, 1] or not finite")
    log = math.log
    total = 0.0
    for p in probs:
        if p > 0.0:
            total += p * log(p)
    return 1.0 + total / log(len(probs))


@ClassFactory.register(ClassType.HEM, alias="IBT")
class IBTFilter(BaseFilter):
    """Hard iff the share of low-score boxes is at least ``1 - threshold_img``."""

    def __init__(self, threshold_img: float = 0.5, threshold_box: float = 0.5, **_: Any) -> None:
        super().__init__()
        self.threshold_img = _number(threshold_img, "threshold_img")
        self.threshold_box = _number(threshold_box, "threshold_box")

    def judge(self, infer_result: Any) -> bool:
        scores = _boxes(infer_result)[:, 4]
        check_probabilities(scores, "box scores")
        low = int(np.count_nonzero(scores <= self.threshold_box))
        boxes: int = scores.shape[0]
        return low / boxes >= 1.0 - self.threshold_img


@ClassFactory.register(ClassType.HEM, alias="Random")
class RandomFilter(BaseFilter):
    """Hard with probability ``random_ratio``; pass ``seed`` for a repeatable sequence."""

    def __init__(self, random_ratio: float = 0.3, seed: int | None = None, **_: Any) -> None:
        super().__init__()
        self.random_ratio = _number(random_ratio, "random_ratio")
        self._rng = random.Random(seed)

    def judge(self, infer_result: Any = None) -> bool:
        return self._rng.random() < self.random_ratio


@ClassFactory.register(ClassType.HEM, alias="CloudOnly")
class CloudOnlyFilter(BaseFilter):
    """Every sample is hard: the cloud answers everything."""

    def judge(self, infer_result: Any = None) -> bool:
        return True


@ClassFactory.register(ClassType.HEM, alias="EdgeOnly")
class EdgeOnlyFilter(BaseFilter):
    """No sample is hard: the edge answers everything."""

    def judge(self, infer_result: Any = None) -> bool:
        return False
