"""Per-round metrics of a learning job, read from its status, and a text sparkline of them.

Two readers of the same status shape the GM writes: :func:`federated_rounds` reads a
FederatedLearningJob's ``status.roundHistory`` (one entry per aggregated round: ``round``,
``clients``, ``failures``, ``metrics``; the last 100 rounds) and :func:`incremental_rounds` reads an
IncrementalLearningJob's stage history (``status.conditions``: each completed ``Eval`` carries the
round and the evaluated models' metrics, the new model first). ``sedna describe`` draws them with
:func:`sparkline`; the GM's dashboard charts them. Pure functions of a dict: no I/O, no imports
of ``gm``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

BARS = "▁▂▃▄▅▆▇█"
ASCII_BARS = "_.-:=+*#"
"""For terminals that cannot print the block characters."""
PREFERRED = ("accuracy", "acc", "precision", "recall", "f1", "loss")


@dataclass(frozen=True)
class Round:
    """One round: its number, the metrics it ended with, and (federated) who took part."""

    round: int
    metrics: dict[str, float] = field(default_factory=dict)
    clients: int | None = None
    failures: int | None = None
    time: str = ""


def federated_rounds(obj: dict[str, Any]) -> list[Round]:
    """The aggregated rounds of a FederatedLearningJob, oldest first."""
    status = obj.get("status") or {}
    out: dict[int, Round] = {}
    for entry in status.get("roundHistory") or []:
        if isinstance(entry, dict) and _is_int(entry.get("round")):
            out[entry["round"]] = Round(entry["round"], _numbers(entry.get("metrics")),
                                        _int_or_none(entry.get("clients")), _int_or_none(entry.get("failures")),
                                        str(entry.get("updateTime") or ""))
    current = status.get("currentRound")
    if not out and _is_int(current) and _numbers(status.get("latestMetrics")):  # a GM that kept no history
        agg = status.get("aggregation") or {}
        out[current] = Round(current, _numbers(status.get("latestMetrics")), _int_or_none(agg.get("clients")),
                             _int_or_none(agg.get("failures")), str(agg.get("updateTime") or ""))
    return [out[k] for k in sorted(out)]


def incremental_rounds(obj: dict[str, Any]) -> list[Round]:
    """The evaluated rounds of an IncrementalLearningJob (the new model's metrics), oldest first."""
    out: dict[int, Round] = {}
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if not isinstance(cond, dict) or cond.get("stage") != "Eval" or cond.get("type") != "Completed":
            continue
        data = _data(cond)
        models = (data.get("output") or {}).get("models") or []
        if _is_int(data.get("round")) and models and isinstance(models[0], dict):
            out[data["round"]] = Round(data["round"], _numbers(models[0].get("metrics")),
                                       time=str(cond.get("lastTransitionTime") or ""))
    return [out[k] for k in sorted(out)]


def metric_names(rounds: Sequence[Round]) -> list[str]:
    """Metric names present in ``rounds``, the usual headline metrics first."""
    names = {name for r in rounds for name in r.metrics}
    return [n for n in PREFERRED if n in names] + sorted(names - set(PREFERRED))


def sparkline(values: Sequence[float | None], bars: str = BARS) -> str:
    """One block character per value, scaled between the smallest and largest (a gap for None)."""
    present = [v for v in values if v is not None and math.isfinite(v)]
    if not present:
        return ""
    low, high = min(present), max(present)
    span = high - low
    out = []
    for value in values:
        if value is None or not math.isfinite(value):
            out.append(" ")
        elif span == 0:
            out.append(bars[len(bars) // 2])
        else:
            out.append(bars[min(int((value - low) / span * len(bars)), len(bars) - 1)])
    return "".join(out)


def describe_lines(rounds: Sequence[Round], limit: int = 3, width: int = 40, bars: str = BARS) -> list[str]:
    """Indented lines for ``sedna describe``: a sparkline per metric (and clients), newest ``width`` rounds."""
    if not rounds:
        return []
    shown = list(rounds)[-width:]
    first, last = shown[0].round, shown[-1].round
    span = f"round {first}" if first == last else f"rounds {first}-{last}"
    rows: list[tuple[str, str, str]] = []
    for name in metric_names(shown)[:limit]:
        values = [r.metrics.get(name) for r in shown]
        known = [v for v in values if v is not None]
        rows.append((name, sparkline(values, bars), f"{_fmt(known[0])} -> {_fmt(known[-1])}" if len(known) > 1
                     else _fmt(known[0])))
    if any(r.clients is not None for r in shown):
        clients = [float(r.clients) if r.clients is not None else None for r in shown]
        seen = [int(c) for c in clients if c is not None]
        rows.append(("clients", sparkline(clients, bars), f"{min(seen)}-{max(seen)}" if min(seen) != max(seen)
                     else str(seen[0])))
    pad = max(len(name) for name, _, _ in rows)
    return [f"  {name.ljust(pad)}  {line}  {summary}" for name, line, summary in rows] + \
        [f"  ({span}{', the last ' + str(width) if len(rounds) > width else ''})"]


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _data(cond: dict[str, Any]) -> dict[str, Any]:
    raw = cond.get("data")
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _numbers(raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict):
        return {}
    out = {}
    for key, value in raw.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)) and math.isfinite(value):
            out[str(key)] = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                continue
            if math.isfinite(number):
                out[str(key)] = number
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_or_none(value: Any) -> int | None:
    return value if _is_int(value) else None
