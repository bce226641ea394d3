"""Lifelong-learning metrics as KubeEdge Ianvs defines them (pure functions, no I/O).

The **accuracy matrix** ``R`` has ``T + 1`` rows and ``T`` columns: row 0 is the knowledge base
before the stream (after the initial training), row ``i`` after learning the ``i``-th new
task; column ``j`` is the ``(j+1)``-th new task's test set. With ``L = T + 1`` (Ianvs'
``core/testcasecontroller/metrics/metrics.py``):

- ``bwt = 1/T² Σ_{i<T} Σ_{j<T} (R[i+1][j] − R[i][j])`` (it telescopes to the mean change of every
  column from row 0 to row T, divided by T);
- ``fwt = 1/T Σ_{i<T} (R[i][i] − R[0][i])``: accuracy on a task just before learning it,
  against row 0;
- ``task_avg_acc = 1/T² Σ_{i<T} Σ_{j<T} R[i+1][j]``;
- **forget rate** (Ianvs' class-incremental paradigm, per task instead of per sample): after
  learning task t, for every task k learned before, the largest drop ``max(0, R[s][k] − R[t][k])``
  over the rows ``s`` since k was learned and before t; averaged over those tasks (0 for the
  first task) and then over t;
- **samples transfer ratio** ``transferred / (inferred + 1)`` (Ianvs' smoothing), and the plain
  share ``transferred / inferred`` the benchmark reports as ``cloud_sample_share``.
"""

from __future__ import annotations

from collections.abc import Sequence

Matrix = Sequence[Sequence[float]]


def _check(matrix: Matrix) -> int:
    rows = len(matrix)
    if rows < 2:
        raise ValueError(f"accuracy matrix needs T+1 >= 2 rows, got {rows}")
    for i, row in enumerate(matrix):
        if len(row) != rows - 1:
            raise ValueError(f"accuracy matrix row {i} has {len(row)} columns, expected {rows - 1} (T+1 rows, T "
                             f"columns)")
    return rows - 1


def bwt(matrix: Matrix) -> float:
    """Backward transfer (Ianvs' formula)."""
    t = _check(matrix)
    total = sum(matrix[i + 1][j] - matrix[i][j] for i in range(t) for j in range(t))
    return total / (t * t)


def fwt(matrix: Matrix) -> float:
    """Forward transfer (Ianvs' formula)."""
    t = _check(matrix)
    return sum(matrix[i][i] - matrix[0][i] for i in range(t)) / t


def task_avg_acc(matrix: Matrix) -> float:
    """Mean accuracy over rows 1..T and all columns (Ianvs' ``accuracy``)."""
    t = _check(matrix)
    return sum(matrix[i + 1][j] for i in range(t) for j in range(t)) / (t * t)


def forget_rates(matrix: Matrix) -> list[float]:
    """The forget rate after each new task (task k is learned at row k + 1)."""
    t = _check(matrix)
    rates = []
    for row in range(1, t + 1):
        learned = range(row - 1)  # tasks learned before this row's task
        drops = [max([0.0] + [matrix[s][k] - matrix[row][k] for s in range(k + 1, row)]) for k in learned]
        rates.append(sum(drops) / row)
    return rates


def forget_rate(matrix: Matrix) -> float:
    """Mean of :func:`forget_rates`."""
    rates = forget_rates(matrix)
    return sum(rates) / len(rates)


def samples_transfer_ratio(pairs: Sequence[tuple[int, int]]) -> float:
    """Ianvs' ratio over ``(inferred, transferred)`` counts: Σ transferred / (Σ inferred + 1)."""
    inferred = sum(p[0] for p in pairs)
    transferred = sum(p[1] for p in pairs)
    return transferred / (inferred + 1)


def cloud_sample_share(inferred: int, transferred: int) -> float:
    """The share of inferred samples sent to the cloud (0 when nothing was inferred)."""
    if inferred < 0 or transferred < 0 or transferred > inferred:
        raise ValueError(f"need 0 <= transferred <= inferred, got {transferred} of {inferred}")
    return transferred / inferred if inferred else 0.0


def unseen_precision_recall(predicted: Sequence[bool], actual: Sequence[bool]) -> tuple[float, float]:
    """``(precision, recall)`` of unseen-sample detection (1.0 where the denominator is 0)."""
    if len(predicted) != len(actual):
        raise ValueError(f"{len(predicted)} predictions for {len(actual)} samples")
    tp = sum(1 for p, a in zip(predicted, actual, strict=True) if p and a)
    fp = sum(1 for p, a in zip(predicted, actual, strict=True) if p and not a)
    fn = sum(1 for p, a in zip(predicted, actual, strict=True) if a and not p)
    return (tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0)
