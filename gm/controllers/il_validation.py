"""Checks on an IncrementalLearningJob that the CRD schema cannot express.

Trigger syntax (operator, ``HH:MM`` times, metric expressions such as ``precision_delta[1]``) is
checked by the SDK's :mod:`sedna.algorithms.triggers`, the same parser the LC evaluates with, so
a job the GM accepts is a job the LC can run. A missing Dataset or Model is ``waiting`` (the job
stays Waiting and recovers when it appears); a wrong value is not (the stage is Failed until the
spec is fixed). Every :class:`~gm.controllers.ji_validation.Problem` names its field.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from gm.cluster.interface import Obj
from gm.controllers.ji_validation import Problem
from sedna.algorithms.triggers import trigger_problems
from sedna.common.class_factory import ClassFactory, ClassType

Lookup = Callable[[str], Obj | None]


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
    ds_name = _name(spec, "dataset", "name")
    if not ds_name:
        problems.append(Problem("spec.dataset.name", "no dataset named"))
    else:
        found = dataset(ds_name)
        if found is None:
            problems.append(Problem("spec.dataset.name", f"Dataset {ds_name!r} not found in namespace {ns!r}",
                                    waiting=True))
        elif not (found.get("spec") or {}).get("url"):
            problems.append(Problem("spec.dataset.name", f"Dataset {ds_name!r} has no spec.url", waiting=True))
    prob = (spec.get("dataset") or {}).get("trainProb")
    if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0 <= prob <= 1:
        problems.append(Problem("spec.dataset.trainProb", f"must be a number between 0 and 1, got {prob!r}"))
    for field, path in (("spec.initialModel.name", ("initialModel", "name")),
                        ("spec.deploySpec.model.name", ("deploySpec", "model", "name")),
                        ("spec.evalSpec.initialEvalModel.name", ("evalSpec", "initialEvalModel", "name"))):
        name = _name(spec, *path)
        if not name:
            if not field.endswith("initialEvalModel.name"):
                problems.append(Problem(field, "no model named"))
            continue
        found = model(name)
        if found is None:
            problems.append(Problem(field, f"Model {name!r} not found in namespace {ns!r}", waiting=True))
        elif not (found.get("spec") or {}).get("url"):
            problems.append(Problem(field, f"Model {name!r} has no spec.url", waiting=True))
    for field, trigger in (("spec.trainSpec.trigger", (spec.get("trainSpec") or {}).get("trigger")),
                           ("spec.deploySpec.trigger", (spec.get("deploySpec") or {}).get("trigger"))):
        problems.extend(Problem(p.field, p.message) for p in trigger_problems(trigger or {}, field))
    for side in ("trainSpec", "evalSpec", "deploySpec"):
        containers = (((spec.get(side) or {}).get("template") or {}).get("spec") or {}).get("containers")
        if not isinstance(containers, list) or not containers:
            problems.append(Problem(f"spec.{side}.template.spec.containers", "needs at least one container"))
    if not isinstance(spec.get("outputDir"), str) or not spec.get("outputDir", "").strip():
        problems.append(Problem("spec.outputDir", "required: where rounds write samples and models"))
    problems.extend(_hem_problems((spec.get("deploySpec") or {}).get("hardExampleMining")))
    return problems


def _hem_problems(hem: Any) -> list[Problem]:
    if not hem:
        return []  # optional for incremental learning: nothing is hard
    field = "spec.deploySpec.hardExampleMining.name"
    name = hem.get("name") if isinstance(hem, dict) else None
    if not name:
        return [Problem(field, "no hard example mining algorithm named")]
    if ClassFactory.is_exists(ClassType.HEM, name):
        return []
    known = ClassFactory.names(ClassType.HEM)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known) or 'none'})"
    return [Problem(field, f"unknown algorithm {name!r}{hint}")]
