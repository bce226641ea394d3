"""Checks on a LifelongLearningJob that the CRD schema cannot express.

As for incremental learning: the train trigger is checked by :mod:`sedna.algorithms.triggers` (the
parser the LC evaluates with), a missing Dataset (or one with no node, whose LC would never see the
job) is ``waiting``, a wrong value fails the job until it is fixed, and every problem names its
field. Added here: an algorithm choice in a container that runs this project's lifelong workers
(``workers.lifelong.*``), e.g. env ``task_definition=TaskDefinitionByDataAtr``, must name a
plug-in the SDK's registry has; the problem names the container's env entry and the closest name.
A container running other code (a user's worker, which may register its own plug-ins) is not
judged here: its startup failure report names the field instead.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from gm.cluster.interface import Obj
from gm.controllers.common.problems import Lookup, Problem, containers, dataset_reference, did_you_mean
from sedna.algorithms.triggers import trigger_problems
from sedna.common.class_factory import ClassFactory, ClassType

ALGORITHMS: dict[str, ClassType] = {
    "task_definition": ClassType.STP, "task_relationship_discovery": ClassType.STP,
    "task_allocation": ClassType.STP, "task_remodeling": ClassType.STP, "inference_integrate": ClassType.STP,
    "task_update_decision": ClassType.KM, "unseen_task_allocation": ClassType.UTP,
    "unseen_sample_recognition": ClassType.UTD, "unseen_sample_re_recognition": ClassType.UTD,
}
"""``LifelongLearning``'s algorithm arguments (the env names the workers read) and their plug-in types."""
SIDES = ("trainSpec", "evalSpec", "deploySpec")
WORKER_MODULE_PREFIX = "workers.lifelong."


def validate(job: Obj, dataset: Lookup, nodes: Collection[str] = ()) -> list[Problem]:
    """Every problem of ``job``'s spec; ``dataset(name)`` looks up in its namespace."""
    spec = job.get("spec") or {}
    ns = job["metadata"].get("namespace", "default")
    problems: list[Problem] = []
    name = (spec.get("dataset") or {}).get("name")
    problems += dataset_reference("spec.dataset.name", name if isinstance(name, str) else "", dataset, ns,
                                  need_node=True, nodes=nodes)
    prob = (spec.get("dataset") or {}).get("trainProb")
    if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0 <= prob <= 1:
        problems.append(Problem("spec.dataset.trainProb", f"must be a number between 0 and 1, got {prob!r}"))
    trigger = (spec.get("trainSpec") or {}).get("trigger")
    problems.extend(Problem(p.field, p.message) for p in trigger_problems(trigger or {}, "spec.trainSpec.trigger"))
    for side in SIDES:
        template = (spec.get(side) or {}).get("template")
        found = containers(f"spec.{side}.template", template)
        problems += found or algorithm_problems(f"spec.{side}.template", template)
    if not isinstance(spec.get("outputDir"), str) or not spec.get("outputDir", "").strip():
        problems.append(Problem("spec.outputDir", "required: where rounds write samples and the knowledge base"))
    elif str(spec["outputDir"]).startswith(("s3://", "http://", "https://")):
        problems.append(Problem("spec.outputDir", f"{spec['outputDir']!r}: a LifelongLearningJob needs a local "
                                "outputDir (its workers keep the knowledge base there); the Dataset may be "
                                "an s3:// or http(s):// URL"))
    return problems


def runs_lifelong_worker(container: Any) -> bool:
    """Whether ``container`` runs one of this project's lifelong workers (``python -m workers.lifelong.X``)."""
    words = [*(container.get("command") or []), *(container.get("args") or [])] if isinstance(container, dict) else []
    return any(isinstance(w, str) and w.startswith(WORKER_MODULE_PREFIX) for w in words)


def algorithm_problems(field: str, template: Any) -> list[Problem]:
    """Unknown algorithm names in the env of the template's lifelong-worker containers."""
    problems: list[Problem] = []
    for i, container in enumerate(((template or {}).get("spec") or {}).get("containers") or []):
        if not runs_lifelong_worker(container):
            continue
        for item in container.get("env") or []:
            name = item.get("name") if isinstance(item, dict) else None
            if name not in ALGORITHMS or not isinstance(item.get("value"), str):
                continue
            where = f"{field}.spec.containers[{i}].env.{name}"
            method, error = _method(item["value"])
            if error:
                problems.append(Problem(where, error))
            elif method and not ClassFactory.is_exists(ALGORITHMS[name], method):
                hint = did_you_mean(method, ClassFactory.names(ALGORITHMS[name]))
                problems.append(Problem(where, f"unknown algorithm {method!r}{hint}"))
    return problems


def _method(raw: str) -> tuple[str, str]:
    """``(method, error)`` of an env value: a plug-in name or JSON ``{"method": ..., "param": ...}``."""
    text = raw.strip()
    if not text.startswith("{"):
        return text, ""
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        return "", f"not valid JSON ({exc.msg} at char {exc.pos}): {text!r}"
    method = body.get("method") if isinstance(body, dict) else None
    if method is None:
        return "", ""
    if not isinstance(method, str):
        return "", f"method must be a plug-in name, got {method!r}"
    return method, ""
