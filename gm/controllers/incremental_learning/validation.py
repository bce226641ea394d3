"""Checks on an IncrementalLearningJob that the CRD schema cannot express.

Trigger syntax (operator, ``HH:MM`` times, metric expressions such as ``precision_delta[1]``) is
checked by the SDK's :mod:`sedna.algorithms.triggers`, the same parser the LC evaluates with, so
a job the GM accepts is a job the LC can run. A missing Dataset or Model is ``waiting`` (the job
stays Waiting and recovers when it appears); a wrong value is not (the stage is Failed until the
spec is fixed). Every :class:`~gm.controllers.common.problems.Problem` names its field.
"""

from __future__ import annotations

from typing import Any

from gm.cluster.interface import Obj
from gm.controllers.common.problems import Lookup, Problem, containers, dataset_reference, hem_name, model_reference
from sedna.algorithms.triggers import trigger_problems


def _name(spec: dict[str, Any], *path: str) -> str:
    value: Any = spec
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value if isinstance(value, str) else ""


def validate(job: Obj, dataset: Lookup, model: Lookup) -> list[Problem]:
    """Every problem of ``job``'s spec; ``dataset(name)`` / ``model(name)`` look up in its namespace."""
    spec = job.get("spec") or {}
    ns = job["metadata"].get("namespace", "default")
    problems: list[Problem] = []
    problems += dataset_reference("spec.dataset.name", _name(spec, "dataset", "name"), dataset, ns)
    prob = (spec.get("dataset") or {}).get("trainProb")
    if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0 <= prob <= 1:
        problems.append(Problem("spec.dataset.trainProb", f"must be a number between 0 and 1, got {prob!r}"))
    for field, path in (("spec.initialModel.name", ("initialModel", "name")),
                        ("spec.deploySpec.model.name", ("deploySpec", "model", "name")),
                        ("spec.evalSpec.initialEvalModel.name", ("evalSpec", "initialEvalModel", "name"))):
        problems += model_reference(field, _name(spec, *path), model, ns,
                                    required=not field.endswith("initialEvalModel.name"))
    for field, trigger in (("spec.trainSpec.trigger", (spec.get("trainSpec") or {}).get("trigger")),
                           ("spec.deploySpec.trigger", (spec.get("deploySpec") or {}).get("trigger"))):
        problems.extend(Problem(p.field, p.message) for p in trigger_problems(trigger or {}, field))
    for side in ("trainSpec", "evalSpec", "deploySpec"):
        problems += containers(f"spec.{side}.template", (spec.get(side) or {}).get("template"))
    if not isinstance(spec.get("outputDir"), str) or not spec.get("outputDir", "").strip():
        problems.append(Problem("spec.outputDir", "required: where rounds write samples and models"))
    problems.extend(_hem_problems((spec.get("deploySpec") or {}).get("hardExampleMining")))
    return problems


def _hem_problems(hem: Any) -> list[Problem]:
    """Optional for incremental learning (without one nothing is hard); when given, a known algorithm."""
    return hem_name("spec.deploySpec.hardExampleMining.name", hem, required=False)[0]
