"""Incremental-learning triggers: a timer window AND a metric condition (Sedna §3.4, fixed).

A trigger spec is Sedna's ``{checkPeriodSeconds, timer: {start, end}, condition: {operator,
threshold, metric}}``. :func:`parse_trigger` turns it into a :class:`Trigger` or raises
:class:`TriggerSpecError` naming the field (the GM calls it when a job is created, the LC when it
evaluates), so both sides agree on the syntax. :meth:`Trigger.evaluate` is pure: it takes the
metric values and the local time of day and returns a :class:`Decision` whose message says why.

Where Sedna was wrong:

- an unqualified list metric (``precision_delta`` when eval reports per-class lists) was
  silently compared as 0; here it is reduced by its mean and the message says so, and
  ``precision_delta.mean`` / ``.min`` / ``.max`` or ``precision_delta[1]`` choose explicitly;
- a metric missing from the values raised nothing and the trigger never fired; here
  :class:`MissingMetric` names it and the metrics that do exist;
- an unknown operator or a malformed time made the trigger silently false; here it is a
  :class:`TriggerSpecError` at job creation;
- ``checkPeriodSeconds`` was parsed and ignored; here it is on the :class:`Trigger` for the
  caller's loop to honour.

The timer window is half-open, ``[start, end)`` in local time; ``24:00`` means the end of the
day; when ``end < start`` it wraps midnight; ``start == end`` means the whole day.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import time as dtime
from typing import Any

EQ_TOLERANCE = 1e-6
DEFAULT_CHECK_PERIOD_SECONDS = 60

_OPERATORS: dict[str, str] = {
    "gt": "gt", ">": "gt", "ge": "ge", ">=": "ge", "eq": "eq", "=": "eq", "==": "eq",
    "ne": "ne", "!=": "ne", "le": "le", "<=": "le", "lt": "lt", "<": "lt",
}
_SYMBOL = {"gt": ">", "ge": ">=", "eq": "==", "ne": "!=", "le": "<=", "lt": "<"}
_METRIC = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:\[(?P<index>\d+)\]|\.(?P<reduce>mean|min|max))?$")
_TIME = re.compile(r"^(?P<h>\d{2}):(?P<m>\d{2})$")


class TriggerSpecError(ValueError):
    """A trigger spec is malformed; ``field`` is the path of the offending value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class MissingMetric(KeyError):
    """The metric a condition names is not among the values (an eval result lacks it)."""

    def __init__(self, metric: str, available: Sequence[str]) -> None:
        have = ", ".join(sorted(available)) or "none"
        super().__init__(f"metric {metric!r} is missing from the results (have: {have})")
        self.metric = metric

    def __str__(self) -> str:
        return str(self.args[0])


def parse_operator(raw: Any, field: str = "operator") -> str:
    """The canonical operator (``gt`` ... ``lt``) for a name or symbol."""
    op = _OPERATORS.get(raw.strip().lower()) if isinstance(raw, str) else None
    if op is None:
        raise TriggerSpecError(field, f"unknown operator {raw!r} (use one of gt, ge, eq, ne, le, lt "
                                      "or >, >=, ==, !=, <=, <)")
    return op


def compare(value: float, op: str, threshold: float) -> bool:
    """``value <op> threshold``; equality within :data:`EQ_TOLERANCE`."""
    equal = abs(value - threshold) < EQ_TOLERANCE
    return {"gt": value > threshold and not equal, "ge": value > threshold or equal, "eq": equal,
            "ne": not equal, "le": value < threshold or equal, "lt": value < threshold and not equal}[op]


def parse_time(raw: Any, field: str) -> int:
    """Minutes since midnight of ``HH:MM`` (``24:00`` allowed)."""
    match = _TIME.match(raw.strip()) if isinstance(raw, str) else None
    if match is None:
        raise TriggerSpecError(field, f"{raw!r} is not a time of day in HH:MM form (e.g. 02:00)")
    hours, minutes = int(match["h"]), int(match["m"])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise TriggerSpecError(field, f"{raw!r} is not a valid time (00:00 to 24:00)")
    return hours * 60 + minutes


@dataclass(frozen=True)
class TimeWindow:
    """``[start, end)`` in minutes since midnight; wraps midnight when ``end < start``."""

    start: int
    end: int

    def contains(self, moment: dtime) -> bool:
        minute = moment.hour * 60 + moment.minute
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def __str__(self) -> str:
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"


@dataclass(frozen=True)
class MetricExpr:
    """``name``, ``name[index]`` or ``name.mean|min|max``."""

    name: str
    index: int | None = None
    reduce: str | None = None

    @classmethod
    def parse(cls, raw: Any, field: str = "metric") -> MetricExpr:
        match = _METRIC.match(raw.strip()) if isinstance(raw, str) else None
        if match is None:
            raise TriggerSpecError(field, f"{raw!r} is not a metric expression (use name, name[index] or "
                                          "name.mean / name.min / name.max, e.g. precision_delta[1])")
        index = match["index"]
        return cls(match["name"], int(index) if index is not None else None, match["reduce"])

    def value(self, values: Mapping[str, Any]) -> tuple[float, str]:
        """The scalar this expression selects, and a note on how a list was reduced ('' if not)."""
        if self.name not in values:
            raise MissingMetric(self.name, list(values))
        raw = values[self.name]
        if isinstance(raw, (list, tuple)) or (hasattr(raw, "tolist") and getattr(raw, "ndim", 0) > 0):
            items = [_number(v, self.name) for v in list(raw)]
            if self.index is not None:
                if self.index >= len(items):
                    raise MissingMetric(f"{self}", [f"{self.name}[0..{len(items) - 1}]"])
                return items[self.index], ""
            if not items:
                raise MissingMetric(f"{self} (an empty list)", list(values))
            how = self.reduce or "mean"
            reduced = {"mean": math.fsum(items) / len(items), "min": min(items), "max": max(items)}[how]
            note = "" if self.reduce else f"{self.name} is a list of {len(items)} values; reduced by mean"
            return reduced, note
        if self.index is not None:
            raise TriggerSpecError("metric", f"{self} indexes {self.name!r}, which is a single number")
        return _number(raw, self.name), ""

    def __str__(self) -> str:
        if self.index is not None:
            return f"{self.name}[{self.index}]"
        return f"{self.name}.{self.reduce}" if self.reduce else self.name


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or (not isinstance(value, (int, float)) and not hasattr(value, "__float__")):
        raise TriggerSpecError("metric", f"value of {name!r} is not a number: {value!r}")
    return float(value)


@dataclass(frozen=True)
class Condition:
    """``metric <operator> threshold``."""

    operator: str
    threshold: float
    metric: MetricExpr

    def describe(self) -> str:
        return f"{self.metric} {_SYMBOL[self.operator]} {self.threshold:g}"


@dataclass(frozen=True)
class Decision:
    """Whether a trigger fired and why (the text goes into condition messages)."""

    fired: bool
    message: str


@dataclass(frozen=True)
class Trigger:
    """Timer AND condition; either may be absent (absent means "holds")."""

    check_period_seconds: float = DEFAULT_CHECK_PERIOD_SECONDS
    timer: TimeWindow | None = None
    condition: Condition | None = None

    def evaluate(self, values: Mapping[str, Any], now: dtime) -> Decision:
        """Decide on ``values`` at local time ``now``; raises :class:`MissingMetric`."""
        parts: list[str] = []
        if self.timer is not None and not self.timer.contains(now):
            return Decision(False, f"{now.strftime('%H:%M')} is outside the window {self.timer}")
        if self.timer is not None:
            parts.append(f"{now.strftime('%H:%M')} is inside {self.timer}")
        if self.condition is not None:
            cond = self.condition
            value, note = cond.metric.value(values)
            ok = compare(value, cond.operator, cond.threshold)
            text = f"{cond.metric} = {value:.6g} {'satisfies' if ok else 'does not satisfy'} {cond.describe()}"
            parts.append(f"{text} ({note})" if note else text)
            if not ok:
                return Decision(False, "; ".join(parts))
        return Decision(True, "; ".join(parts) or "no timer and no condition: always fires")


def parse_trigger(spec: Any, field: str = "trigger") -> Trigger:
    """A :class:`Trigger` from its spec dict; :class:`TriggerSpecError` names the bad field."""
    if spec is None:
        return Trigger()
    if not isinstance(spec, Mapping):
        raise TriggerSpecError(field, f"must be an object, got {type(spec).__name__}")
    period: Any = spec.get("checkPeriodSeconds", DEFAULT_CHECK_PERIOD_SECONDS)
    if isinstance(period, bool) or not isinstance(period, (int, float)) or period <= 0:
        raise TriggerSpecError(f"{field}.checkPeriodSeconds", f"must be a positive number of seconds, got {period!r}")
    timer = None
    if spec.get("timer") is not None:
        raw = spec["timer"]
        if not isinstance(raw, Mapping):
            raise TriggerSpecError(f"{field}.timer", "must be an object with start and end (HH:MM)")
        timer = TimeWindow(parse_time(raw.get("start"), f"{field}.timer.start"),
                           parse_time(raw.get("end"), f"{field}.timer.end"))
    condition = None
    if spec.get("condition") is not None:
        raw = spec["condition"]
        if not isinstance(raw, Mapping):
            raise TriggerSpecError(f"{field}.condition", "must be an object with operator, threshold and metric")
        op = parse_operator(raw.get("operator"), f"{field}.condition.operator")
        threshold = raw.get("threshold")
        if isinstance(threshold, str):
            try:
                threshold = float(threshold)
            except ValueError:
                pass
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
            raise TriggerSpecError(f"{field}.condition.threshold", f"must be a number, got {threshold!r}")
        metric = MetricExpr.parse(raw.get("metric"), f"{field}.condition.metric")
        condition = Condition(op, float(threshold), metric)
    return Trigger(float(period), timer, condition)


def trigger_problems(spec: Any, field: str = "trigger") -> list[TriggerSpecError]:
    """Every problem of a trigger spec (empty when it parses); for validation that lists them all."""
    problems: list[TriggerSpecError] = []
    if not isinstance(spec, Mapping):
        try:
            parse_trigger(spec, field)
        except TriggerSpecError as exc:
            problems.append(exc)
        return problems
    for part in ("checkPeriodSeconds", "timer", "condition"):
        if part in spec:
            try:
                parse_trigger({part: spec[part]}, field)
            except TriggerSpecError as exc:
                problems.append(exc)
    return problems


def metric_deltas(new: Mapping[str, Any], old: Mapping[str, Any]) -> dict[str, Any]:
    """Deploy-trigger values: every metric ``m`` of the new model plus ``m_delta = new - old``.

    Lists subtract element-wise; a metric the old model lacks has no delta; lists of
    different lengths raise ValueError naming the metric.
    """
    out: dict[str, Any] = {}
    for name, value in new.items():
        out[name] = value
        if name not in old:
            continue
        before = old[name]
        if isinstance(value, (list, tuple)) != isinstance(before, (list, tuple)):
            raise ValueError(f"metric {name!r}: the new model reports {value!r}, the deployed one {before!r}")
        if isinstance(value, (list, tuple)):
            if len(value) != len(before):
                raise ValueError(f"metric {name!r}: {len(value)} values for the new model, {len(before)} "
                                 "for the deployed one")
            out[f"{name}_delta"] = [float(a) - float(b) for a, b in zip(value, before, strict=True)]
        elif isinstance(value, (int, float)) and isinstance(before, (int, float)):
            out[f"{name}_delta"] = float(value) - float(before)
    return out


__all__ = ["Condition", "Decision", "MetricExpr", "MissingMetric", "TimeWindow", "Trigger", "TriggerSpecError",
           "compare", "metric_deltas", "parse_operator", "parse_time", "parse_trigger", "trigger_problems"]
