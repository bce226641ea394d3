"""Checks an update must pass before a strategy sees it.

Two stages: :func:`check_header` compares the announced names, dtypes and shapes with the
global model before any byte is stored, and :func:`check_finite` scans the decoded arrays
for NaN/Inf in bounded blocks. Each returns a reason (sent back to the client in a
``Rejected`` message and recorded in the round's history) or None.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

Spec = Mapping[str, tuple[str, tuple[int, ...]]]

_BLOCK = 1 << 20


def check_header(expected: Spec, got: Spec) -> str | None:
    """Why ``got`` does not match ``expected`` (names, then dtype, then shape), or None."""
    missing = [n for n in expected if n not in got]
    extra = [n for n in got if n not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing tensors {missing[:5]}")
        if extra:
            parts.append(f"unexpected tensors {extra[:5]}")
        return "wrong tensor names: " + ", ".join(parts)
    for name, (dtype, shape) in expected.items():
        got_dtype, got_shape = got[name]
        if got_dtype != dtype:
            return f"tensor {name!r}: dtype {got_dtype} but the model has {dtype}"
        if tuple(got_shape) != tuple(shape):
            return f"tensor {name!r}: shape {list(got_shape)} but the model has {list(shape)}"
    return None


def check_finite(weights: Mapping[str, np.ndarray]) -> str | None:
    """Name the first tensor holding NaN or Inf, or None."""
    for name, arr in weights.items():
        if arr.dtype.kind not in "fc":
            continue
        flat = arr.reshape(-1)
        for start in range(0, flat.size, _BLOCK):
            block = flat[start : start + _BLOCK]
            if not np.isfinite(block).all():
                bad = int(np.flatnonzero(~np.isfinite(block))[0]) + start
                return f"tensor {name!r} holds a non-finite value ({flat[bad]!r} at flat index {bad})"
    return None
