"""Vectorised, memory-lean kernels shared by the strategies.

Every kernel walks the flattened tensors in blocks of :data:`BLOCK` elements, so the
per-block accumulator and temporaries stay in cache and the extra memory is one output
array plus a few blocks, whatever the number of clients. Accumulation happens in the
tensor's own float dtype (float16 is widened to float32; integer tensors to float64 and
rounded back), which keeps FedAvg at memory-bandwidth speed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from sedna.algorithms.aggregation.records import Weights

BLOCK = 1 << 16


def _acc_dtype(dtype: np.dtype) -> np.dtype:
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype.kind == "f":
        return dtype
    return np.dtype(np.float64)


def _finish(acc: np.ndarray, like: np.ndarray) -> np.ndarray:
    if like.dtype.kind in "iub":
        acc = np.rint(acc)
    return acc.astype(like.dtype, copy=False).reshape(like.shape)


def _flat(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.ascontiguousarray(a).reshape(-1) for a in arrays]


def weighted_average(updates: Sequence[Weights], factors: Sequence[float], precise: bool = False) -> Weights:
    """``sum_k factors[k] * updates[k]`` per tensor (factors should sum to 1).

    ``precise`` accumulates in float64 (for server optimisers, whose tiny ``tau`` would
    turn float32 rounding noise in the average into a full step).
    """
    out: Weights = {}
    for name, like in updates[0].items():
        flat = _flat([u[name] for u in updates])
        acc_dt = np.dtype(np.float64) if precise else _acc_dtype(like.dtype)
        size = flat[0].size
        acc = np.empty(size, acc_dt)
        tmp = np.empty(min(BLOCK, size), acc_dt)
        for start in range(0, size, BLOCK):
            stop = min(start + BLOCK, size)
            block, scratch = acc[start:stop], tmp[: stop - start]
            np.multiply(flat[0][start:stop], factors[0], out=block, dtype=acc_dt)
            for arr, factor in zip(flat[1:], factors[1:], strict=True):
                np.multiply(arr[start:stop], factor, out=scratch, dtype=acc_dt)
                np.add(block, scratch, out=block)
        out[name] = _finish(acc, like)
    return out


def coordinatewise(updates: Sequence[Weights], reduce: Callable[[np.ndarray], np.ndarray]) -> Weights:
    """Apply ``reduce`` (clients x block -> block) to every block of every tensor."""
    out: Weights = {}
    for name, like in updates[0].items():
        flat = _flat([u[name] for u in updates])
        acc_dt = _acc_dtype(like.dtype)
        size = flat[0].size
        acc = np.empty(size, acc_dt)
        stack = np.empty((len(flat), min(BLOCK, size)), acc_dt)
        for start in range(0, size, BLOCK):
            stop = min(start + BLOCK, size)
            view = stack[:, : stop - start]
            for row, arr in enumerate(flat):
                view[row] = arr[start:stop]
            acc[start:stop] = reduce(view)
        out[name] = _finish(acc, like)
    return out


def pairwise_sq_distances(updates: Sequence[Weights]) -> np.ndarray:
    """Squared euclidean distances between whole models (float64, clients x clients)."""
    n = len(updates)
    dist = np.zeros((n, n), np.float64)
    for name in updates[0]:
        flat = _flat([u[name] for u in updates])
        size = flat[0].size
        stack = np.empty((n, min(BLOCK, size)), np.float64)
        for start in range(0, size, BLOCK):
            stop = min(start + BLOCK, size)
            view = stack[:, : stop - start]
            for row, arr in enumerate(flat):
                view[row] = arr[start:stop]
            sq = np.einsum("ij,ij->i", view, view)
            dist += sq[:, None] + sq[None, :] - 2.0 * (view @ view.T)
    np.maximum(dist, 0.0, out=dist)
    np.fill_diagonal(dist, 0.0)
    return dist


def axpy(weights: Weights, direction: Weights, scale: float) -> Weights:
    """``weights + scale * direction`` as new arrays in the weights' dtypes."""
    return {k: (w + scale * direction[k]).astype(w.dtype, copy=False) for k, w in weights.items()}
