"""gm.schema's fast path: fastjsonschema accepts exactly what jsonschema accepts, and validate() still answers
with jsonschema's violations (the sample objects and mistakes are test_schema's)."""

from __future__ import annotations

from typing import Any

import pytest

from gm import schema
from tests.gm.test_schema import DATASET, FEDERATED, INCREMENTAL, JOINT_INFERENCE, LIFELONG, MODEL, changed

SHA = "0123456789abcdef" * 4

VALID = {
    "ji": JOINT_INFERENCE, "incremental": INCREMENTAL, "federated": FEDERATED, "dataset": DATASET, "model": MODEL,
    "lifelong": LIFELONG,
    "open-template": changed(JOINT_INFERENCE, "spec.cloudWorker.template.spec.anyFutureField", {"x": [1]}),
    "open-status": {**DATASET, "status": {"phase": "Ready", "whatever": [1, None]}},
    "integral-float-is-integer": changed(INCREMENTAL, "spec.deploySpec.model.pollPeriodSeconds", 60.0),
    "int-is-number": changed(INCREMENTAL, "spec.dataset.trainProb", 1),
    "timer-24h": changed(INCREMENTAL, "spec.trainSpec.trigger.timer.end", "24:00"),
    "sha256": changed(MODEL, "spec.sha256", SHA),
    "generate-name": changed(DATASET, "metadata", {"generateName": "ds-"}),
    "bad-name-only": changed(DATASET, "metadata.name", "My_Dataset"),  # the name check's, not the schema's
    "no-metadata": changed(DATASET, "metadata", ...),
}

INVALID = {
    "missing-required": changed(JOINT_INFERENCE, "spec.edgeWorker.hardExampleMining.name", ...),
    "missing-spec": changed(DATASET, "spec", ...),
    "unknown-field": changed(JOINT_INFERENCE, "spec.edgeWorker.hardExampleMinning", {"name": "IBT"}),
    "unknown-top-level-field": changed(DATASET, "specs", {}),
    "below-minimum": changed(JOINT_INFERENCE, "spec.edgeWorker.replicas", -1),
    "fractional-integer": changed(JOINT_INFERENCE, "spec.edgeWorker.replicas", 2.5),
    "bool-is-no-integer": changed(JOINT_INFERENCE, "spec.edgeWorker.replicas", True),
    "bool-is-no-number": changed(INCREMENTAL, "spec.dataset.trainProb", True),
    "string-is-no-number": changed(INCREMENTAL, "spec.dataset.trainProb", "0.8"),
    "null-is-no-number": changed(INCREMENTAL, "spec.dataset.trainProb", None),
    "above-maximum": changed(INCREMENTAL, "spec.dataset.trainProb", 1.5),
    "enum": changed(DATASET, "spec.format", "json"),
    "null-enum": changed(DATASET, "spec.format", None),
    "operator": changed(INCREMENTAL, "spec.trainSpec.trigger.condition.operator", "bigger"),
    "pattern": changed(INCREMENTAL, "spec.trainSpec.trigger.timer.start", "2am"),
    "pattern-24:30": changed(INCREMENTAL, "spec.trainSpec.trigger.timer.end", "24:30"),
    "numeric-timer": changed(INCREMENTAL, "spec.trainSpec.trigger.timer.end", 1200),
    "sha256-uppercase": changed(MODEL, "spec.sha256", SHA.upper()),
    "empty-string": changed(FEDERATED, "spec.trainingWorkers.0.dataset.name", ""),
    "no-items": changed(FEDERATED, "spec.trainingWorkers", []),
    "object-for-array": changed(FEDERATED, "spec.trainingWorkers", {}),
    "string-for-array": changed(MODEL, "spec.device_soc_versions", "Ascend310"),
    "bad-item": changed(MODEL, "spec.device_soc_versions", ["Ascend310", 310]),
    "list-for-object": changed(JOINT_INFERENCE, "spec.edgeWorker.template", []),
    "many": changed(changed(INCREMENTAL, "spec.dataset.trainProb", -0.1), "spec.outputDir", ...),
}


def full_only(obj: dict[str, Any]) -> list[schema.Violation]:
    """validate() as it was before the fast path: the name check plus every jsonschema error."""
    violations = schema._check_name(obj.get("metadata"))
    for error in validators(obj).full.iter_errors(dict(obj)):
        violations.extend(schema._describe(error))
    return sorted(set(violations))


def validators(obj: dict[str, Any]) -> Any:
    return schema._compiled()[(obj["apiVersion"], obj["kind"])]


def fast_accepts(v: Any, instance: Any) -> bool:
    return schema._accepts(v.fast, instance)


CASES = pytest.mark.parametrize("case", [*VALID, *INVALID])


@CASES
def test_fast_and_full_validators_agree(case: str) -> None:
    obj = VALID.get(case) or INVALID[case]
    v = validators(obj)
    full_accepts = not list(v.full.iter_errors(dict(obj)))

    assert full_accepts == (case in VALID)
    assert fast_accepts(v, dict(obj)) == full_accepts


@CASES
def test_validate_answers_what_jsonschema_alone_answered(case: str) -> None:
    obj = VALID.get(case) or INVALID[case]

    assert schema.validate(obj) == full_only(obj)


def test_where_the_fast_validator_is_stricter_jsonschema_decides() -> None:
    # fastjsonschema reads a pattern's $ as \Z; Python's re (jsonschema) also matches $ before a final newline
    obj = changed(INCREMENTAL, "spec.trainSpec.trigger.timer.start", "02:00\n")

    assert not fast_accepts(validators(obj), obj)
    assert schema.validate(obj) == full_only(obj) == []


NULLABLE = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "nullable": True, "minLength": 1},
        "count": {"type": "integer", "nullable": True, "minimum": 0},
        "closed": {"type": "object", "properties": {"a": {"type": "string"}}},
        "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                 "properties": {"a": {"type": "string"}}},
        "free": {"type": "object"},
        "items": {"type": "array",
                  "items": {"type": "object", "required": ["k"], "properties": {"k": {"type": "string"}}}},
    },
}


@pytest.mark.parametrize(("instance", "valid"), [
    ({}, True),
    ({"name": None, "count": None}, True),
    ({"name": "x", "count": 0}, True),
    ({"name": ""}, False),
    ({"count": -1}, False),
    ({"count": 1.0}, True),
    ({"count": "1"}, False),
    ({"closed": {"a": "x"}}, True),
    ({"closed": {"b": "x"}}, False),
    ({"closed": None}, False),
    ({"open": {"b": 1}}, True),
    ({"open": {"a": 1}}, False),
    ({"free": {"anything": [1]}}, True),
    ({"items": [{"k": "v"}]}, True),
    ({"items": [{"k": "v", "x": 1}]}, False),
    ({"items": [{}]}, False),
    ({"unknown": 1}, False),
])
def test_nullable_and_closed_objects_mean_the_same_to_both(instance: dict[str, Any], valid: bool) -> None:
    v = schema._compile(NULLABLE)

    assert fast_accepts(v, instance) is valid
    assert (not list(v.full.iter_errors(instance))) is valid


def test_warm_compiles_every_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "_validators", None)

    schema.warm()

    assert {kind for _, kind in schema._validators or {}} >= {
        "Dataset", "Model", "JointInferenceService", "FederatedLearningJob", "IncrementalLearningJob",
        "LifelongLearningJob"}
