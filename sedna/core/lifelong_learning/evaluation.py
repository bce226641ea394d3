"""Evaluate a knowledge base per task group and decide which groups are not deployed.

Metrics are named as in Sedna's eval env (``metrics``, ``metric_param``): ``accuracy``
(built in) or any ``sklearn.metrics`` function name, computed on the samples allocated to each
group. A group is dropped (``deploy = false``) when ``operator(score, model_threshold)`` holds
for the **first** metric -- Sedna dropped a group when *any* metric met the operator, and its
default ``operator`` ``>`` with ``model_threshold`` 0.1 dropped every useful model; here the
default is ``<`` 0.1 (drop a group whose model is nearly always wrong).
"""

from __future__ import annotations

import json
import operator as op
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from sedna.common.errors import ConfigError

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": op.gt, "<": op.lt, "=": op.eq, "==": op.eq, ">=": op.ge, "<=": op.le,
}
Metric = Callable[..., float]


def _accuracy(y_true: Any, y_pred: Any, **_: Any) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true.astype(y_pred.dtype) == y_pred).mean()) if len(y_true) else 0.0


def metric_functions(names: Any) -> dict[str, Metric]:
    """``{name: fn}`` for a name, a comma-separated or JSON list of names, or callables."""
    if names is None or names == "":
        return {"accuracy": _accuracy}
    if isinstance(names, str):
        text = names.strip()
        names = json.loads(text) if text.startswith("[") else [n.strip() for n in text.split(",") if n.strip()]
    if callable(names):
        names = [names]
    out: dict[str, Metric] = {}
    for item in names:
        if callable(item):
            out[getattr(item, "__name__", f"metric_{len(out)}")] = item
        elif item == "accuracy":
            out["accuracy"] = _accuracy
        else:
            try:
                from sklearn import metrics as sk_metrics
            except ImportError:
                raise ConfigError(f"metrics: {item!r} needs scikit-learn (pip install scikit-learn); the built-in "
                                  f"metric is 'accuracy'") from None
            fn = getattr(sk_metrics, str(item), None)
            if not callable(fn):
                raise ConfigError(f"metrics: {item!r} is neither 'accuracy' nor a sklearn.metrics function")
            out[str(item)] = fn
    return out


def metric_params(raw: Any) -> dict[str, Any]:
    """``metric_param`` as a dict (JSON, or Sedna's Python-literal ``{'average':'micro'}``)."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        value = json.loads(str(raw).replace("'", '"'))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"metric_param: not a JSON object ({exc.msg}): {raw!r}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"metric_param: must be an object, got {raw!r}")
    return value


def scores(metrics: Mapping[str, Metric], y_true: Any, y_pred: Any, params: Mapping[str, Any]) -> dict[str, float]:
    return {name: float(fn(y_true, y_pred, **params)) for name, fn in metrics.items()} if len(y_true) else {}


def drop_decision(per_group: Mapping[str, Mapping[str, float]], operator: str, threshold: float,
                  metric: str | None = None) -> list[str]:
    """Groups whose ``metric`` (default: the first one) satisfies ``operator threshold``."""
    if operator not in OPERATORS:
        raise ConfigError(f"operator: {operator!r} is not one of {', '.join(OPERATORS)}")
    compare = OPERATORS[operator]
    dropped = []
    for entry, values in per_group.items():
        if not values:
            continue
        name = metric if metric is not None else next(iter(values))
        if name in values and compare(float(values[name]), threshold):
            dropped.append(entry)
    return dropped


def group_rows(allocations: np.ndarray, entries: Sequence[str]) -> dict[str, np.ndarray]:
    """Row indices allocated to each entry."""
    allocations = np.asarray(allocations)
    return {entry: np.flatnonzero(allocations == j) for j, entry in enumerate(entries)}
