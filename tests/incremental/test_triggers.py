"""The trigger truth table: operators at their boundary, windows, metric expressions, bad specs."""

from __future__ import annotations

from datetime import time

import numpy as np
import pytest

from sedna.algorithms.triggers import (
    MissingMetric,
    TriggerSpecError,
    metric_deltas,
    parse_trigger,
    trigger_problems,
)

NOON = time(12, 0)


def cond(op: str, threshold: float = 500, metric: str = "num_of_samples") -> dict:
    return {"condition": {"operator": op, "threshold": threshold, "metric": metric}}


# -- operators at their boundary -----------------------------------------------------------------
TRUTH = {
    # operator: (below, at, above) for threshold 500
    "gt": (False, False, True),
    "ge": (False, True, True),
    "eq": (False, True, False),
    "ne": (True, False, True),
    "le": (True, True, False),
    "lt": (True, False, False),
}
SYMBOLS = {">": "gt", ">=": "ge", "=": "eq", "==": "eq", "!=": "ne", "<=": "le", "<": "lt"}


@pytest.mark.parametrize("op", [*TRUTH, *SYMBOLS])
@pytest.mark.parametrize("position,value", [(0, 499), (1, 500), (2, 501)])
def test_each_operator_and_symbol_at_its_boundary(op: str, position: int, value: int) -> None:
    expected = TRUTH[SYMBOLS.get(op, op)][position]
    assert parse_trigger(cond(op)).evaluate({"num_of_samples": value}, NOON).fired is expected


def test_equality_tolerates_float_noise_but_not_more() -> None:
    trigger = parse_trigger(cond("eq", 0.1, "accuracy_delta"))
    assert trigger.evaluate({"accuracy_delta": 0.1 + 1e-9}, NOON).fired
    assert not trigger.evaluate({"accuracy_delta": 0.1 + 1e-5}, NOON).fired
    assert not parse_trigger(cond("gt", 0.1, "a")).evaluate({"a": 0.1 + 1e-9}, NOON).fired


def test_operator_names_are_case_and_space_insensitive() -> None:
    assert parse_trigger(cond(" GT ")).evaluate({"num_of_samples": 501}, NOON).fired


# -- timer windows ----------------------------------------------------------------------------
@pytest.mark.parametrize("start,end,moment,inside", [
    ("02:00", "20:00", time(1, 59), False),
    ("02:00", "20:00", time(2, 0), True),
    ("02:00", "20:00", time(19, 59), True),
    ("02:00", "20:00", time(20, 0), False),
    ("02:00", "24:00", time(23, 59), True),
    ("22:00", "06:00", time(23, 0), True),   # wraps midnight
    ("22:00", "06:00", time(0, 0), True),
    ("22:00", "06:00", time(5, 59), True),
    ("22:00", "06:00", time(6, 0), False),
    ("22:00", "06:00", time(21, 59), False),
    ("22:00", "06:00", time(12, 0), False),
    ("08:00", "08:00", time(3, 0), True),    # start == end: the whole day
])
def test_timer_window(start: str, end: str, moment: time, inside: bool) -> None:
    trigger = parse_trigger({"timer": {"start": start, "end": end}})
    decision = trigger.evaluate({}, moment)
    assert decision.fired is inside
    if not inside:
        assert "outside the window" in decision.message


def test_timer_and_condition_must_both_hold() -> None:
    trigger = parse_trigger({"timer": {"start": "22:00", "end": "06:00"}, **cond("gt")})
    assert trigger.evaluate({"num_of_samples": 600}, time(23, 30)).fired
    assert not trigger.evaluate({"num_of_samples": 600}, time(12, 0)).fired
    assert not trigger.evaluate({"num_of_samples": 400}, time(23, 30)).fired


def test_check_period_is_kept_and_defaults_to_60() -> None:
    assert parse_trigger({"checkPeriodSeconds": 5}).check_period_seconds == 5
    assert parse_trigger({}).check_period_seconds == 60


# -- metric expressions -----------------------------------------------------------------------
PRECISION = {"precision_delta": [0.05, 0.30, -0.10]}


@pytest.mark.parametrize("metric,op,threshold,fired", [
    ("precision_delta[1]", "gt", 0.29, True),
    ("precision_delta[1]", "gt", 0.30, False),
    ("precision_delta[2]", "lt", 0.0, True),
    ("precision_delta.mean", "ge", 0.25 / 3, True),
    ("precision_delta.mean", "gt", 0.25 / 3, False),
    ("precision_delta.min", "eq", -0.10, True),
    ("precision_delta.max", "eq", 0.30, True),
])
def test_indexed_and_reduced_list_metrics(metric: str, op: str, threshold: float, fired: bool) -> None:
    assert parse_trigger(cond(op, threshold, metric)).evaluate(PRECISION, NOON).fired is fired


def test_unqualified_list_metric_is_reduced_by_mean_and_says_so_never_zero() -> None:
    # Sedna compared this as 0 > 0.05 (never fires); the mean is 0.0833.
    decision = parse_trigger(cond(">", 0.05, "precision_delta")).evaluate(PRECISION, NOON)
    assert decision.fired
    assert "reduced by mean" in decision.message and "0.0833333" in decision.message


def test_numpy_values_are_numbers() -> None:
    values = {"precision_delta": np.array([0.2, 0.4]), "accuracy": np.float32(0.5)}
    assert parse_trigger(cond("eq", 0.3, "precision_delta")).evaluate(values, NOON).fired
    assert parse_trigger(cond("ge", 0.5, "accuracy")).evaluate(values, NOON).fired


def test_missing_metric_names_it_and_what_exists() -> None:
    with pytest.raises(MissingMetric) as caught:
        parse_trigger(cond(">", 0.1, "recall_delta")).evaluate({"accuracy": 1.0, "accuracy_delta": 0.1}, NOON)
    assert "'recall_delta'" in str(caught.value) and "accuracy, accuracy_delta" in str(caught.value)


def test_index_beyond_the_list_is_missing() -> None:
    with pytest.raises(MissingMetric, match=r"precision_delta\[7\]"):
        parse_trigger(cond(">", 0, "precision_delta[7]")).evaluate(PRECISION, NOON)


# -- syntax validation names the field -------------------------------------------------------------
@pytest.mark.parametrize("spec,field,words", [
    (cond("greater"), "spec.trainSpec.trigger.condition.operator", "unknown operator 'greater'"),
    (cond(None), "spec.trainSpec.trigger.condition.operator", "unknown operator None"),
    (cond(">", "lots"), "spec.trainSpec.trigger.condition.threshold", "must be a number"),
    (cond(">", 1, "precision delta"), "spec.trainSpec.trigger.condition.metric", "not a metric expression"),
    (cond(">", 1, "precision_delta[x]"), "spec.trainSpec.trigger.condition.metric", "not a metric expression"),
    (cond(">", 1, "precision_delta.median"), "spec.trainSpec.trigger.condition.metric", "not a metric"),
    ({"timer": {"start": "2am", "end": "06:00"}}, "spec.trainSpec.trigger.timer.start", "HH:MM"),
    ({"timer": {"start": "02:00", "end": "25:00"}}, "spec.trainSpec.trigger.timer.end", "not a valid time"),
    ({"timer": {"start": "02:60", "end": "03:00"}}, "spec.trainSpec.trigger.timer.start", "not a valid time"),
    ({"timer": {"start": "02:00"}}, "spec.trainSpec.trigger.timer.end", "HH:MM"),
    ({"checkPeriodSeconds": 0}, "spec.trainSpec.trigger.checkPeriodSeconds", "positive"),
])
def test_bad_syntax_names_the_field(spec: dict, field: str, words: str) -> None:
    with pytest.raises(TriggerSpecError) as caught:
        parse_trigger(spec, "spec.trainSpec.trigger")
    assert caught.value.field == field
    assert words in str(caught.value)
    assert str(caught.value).startswith(field + ": ")


def test_problems_lists_every_bad_part() -> None:
    spec = {"timer": {"start": "xx", "end": "06:00"}, **cond("≈", 1, "a")}
    fields = [p.field for p in trigger_problems(spec, "t")]
    assert fields == ["t.timer.start", "t.condition.operator"]
    assert trigger_problems({"checkPeriodSeconds": 5, **cond("lt")}, "t") == []


# -- deploy deltas -------------------------------------------------------------------------------
def test_metric_deltas_subtract_element_wise() -> None:
    out = metric_deltas({"accuracy": 0.9, "precision": [0.5, 1.0]}, {"accuracy": 0.8, "precision": [0.25, 1.0]})
    assert out["accuracy_delta"] == pytest.approx(0.1)
    assert out["precision_delta"] == [0.25, 0.0]
    assert out["precision"] == [0.5, 1.0]


def test_metric_deltas_refuse_lists_of_different_length() -> None:
    with pytest.raises(ValueError, match="'precision': 2 values for the new model, 3"):
        metric_deltas({"precision": [1, 2]}, {"precision": [1, 2, 3]})
