"""Checks on a FederatedLearningJob that the CRD schema cannot express.

The strategy is named the way Sedna names it: env ``aggregation`` of the aggregation worker's
container (a registered name such as ``FedAvg``, or JSON ``{"name": ..., "parameters": {...}}``),
with ``AGGREGATION_PARAMETERS`` (a JSON object or Sedna's key/value list). The check builds the
strategy with the SDK's own :func:`~sedna.algorithms.aggregation.create_strategy`, exactly as the
aggregator will, so a job the GM accepts starts, and a newly registered strategy needs no change
here. A missing Dataset or Model is ``waiting`` (the job stays Pending and recovers when it
appears); a wrong value is not (the job is Failed until the spec is fixed). Every
:class:`~gm.controllers.common.problems.Problem` names its field.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from gm.cluster.interface import Obj
from gm.controllers.common.problems import (
    Lookup,
    Problem,
    containers,
    dataset_reference,
    did_you_mean,
    model_reference,
)
from gm.controllers.federated_learning import transmitter
from sedna.common.class_factory import ClassFactory, ClassType
from sedna.common.config import parse_parameters
from sedna.common.errors import SednaError

AGG = "spec.aggregationWorker"
_POSITIVE_INT = ("exit_round", "MAX_ROUND_ATTEMPTS")
_POSITIVE_NUMBER = ("ROUND_TIMEOUT_SECONDS",)
_NUMBER = ("TARGET_VALUE", "REJOIN_GRACE_SECONDS")


def container_env(template: Any) -> list[tuple[str, str, Any]]:
    """``(field path, name, value)`` of every plain env var of a Pod template's containers."""
    out: list[tuple[str, str, Any]] = []
    containers = (((template or {}).get("spec") or {}) if isinstance(template, dict) else {}).get("containers")
    for c, container in enumerate(containers if isinstance(containers, list) else []):
        for e, item in enumerate((container or {}).get("env") or []):
            if isinstance(item, dict) and item.get("name") and "value" in item:
                out.append((f"{AGG}.template.spec.containers[{c}].env[{e}].value", item["name"], item["value"]))
    return out


def validate(job: Obj, dataset: Lookup, model: Lookup, nodes: Collection[str] = ()) -> list[Problem]:
    """Every problem of ``job``'s spec; ``dataset(name)`` / ``model(name)`` look up in its namespace."""
    spec = job.get("spec") or {}
    ns = job["metadata"].get("namespace", "default")
    agg: dict[str, Any] = spec["aggregationWorker"] if isinstance(spec.get("aggregationWorker"), dict) else {}
    problems = model_reference(f"{AGG}.model.name", (agg.get("model") or {}).get("name"), model, ns)
    if spec.get("pretrainedModel"):
        problems += model_reference("spec.pretrainedModel.name", (spec["pretrainedModel"] or {}).get("name"), model,
                                    ns)
    problems += containers(f"{AGG}.template", agg.get("template"))
    workers = spec.get("trainingWorkers")
    if not isinstance(workers, list) or not workers:
        problems.append(Problem("spec.trainingWorkers", "needs at least one training worker"))
        workers = []
    for i, worker in enumerate(workers):
        base = f"spec.trainingWorkers[{i}]"
        if not isinstance(worker, dict):
            problems.append(Problem(base, "must be an object with dataset and template"))
            continue
        problems += dataset_reference(f"{base}.dataset.name", (worker.get("dataset") or {}).get("name"), dataset,
                                      ns, need_node=True, nodes=nodes)
        problems += containers(f"{base}.template", worker.get("template"))
    names = [((w or {}).get("dataset") or {}).get("name") for w in workers if isinstance(w, dict)]
    for name in sorted({n for n in names if n and names.count(n) > 1}):
        problems.append(Problem("spec.trainingWorkers", f"Dataset {name!r} is used by more than one training worker"))
    problems += strategy_problems(container_env(agg.get("template")), len(workers))
    problems += transmitter.problems(job)
    return problems


def strategy_problems(env: list[tuple[str, str, Any]], participants: int) -> list[Problem]:
    """Problems of the strategy and round settings in the aggregation worker's env."""
    values = {name: (field, value) for field, name, value in env}
    problems: list[Problem] = []
    for name in _POSITIVE_INT + _POSITIVE_NUMBER + _NUMBER:
        if name in values:
            problems += _number(*values[name], name, integer=name in _POSITIVE_INT,
                                positive=name not in _NUMBER)
    if "MIN_COMPLETION_RATE" in values:
        field, raw = values["MIN_COMPLETION_RATE"]
        rate = _as_float(raw)
        if rate is None or not 0 < rate <= 1:
            problems.append(Problem(field, f"MIN_COMPLETION_RATE must be a number in (0, 1], got {raw!r}"))
    field, raw = values.get("aggregation", (f"{AGG}.template.spec.containers[0].env[aggregation]", "FedAvg"))
    name, params, problem = _strategy_spec(field, str(raw or "FedAvg"), values.get("AGGREGATION_PARAMETERS"))
    if problem is not None:
        return [*problems, problem]
    if not ClassFactory.is_exists(ClassType.FL_AGG, name):
        hint = did_you_mean(name, ClassFactory.names(ClassType.FL_AGG))
        return [*problems, Problem(field, f"unknown aggregation strategy {name!r}{hint}")]
    from sedna.algorithms.aggregation import create_strategy

    pfield = values["AGGREGATION_PARAMETERS"][0] if "AGGREGATION_PARAMETERS" in values else field
    params.setdefault("min_available_clients", max(participants, 1))
    try:
        strategy = create_strategy(name, **params)
    except (SednaError, ValueError, TypeError) as exc:
        return [*problems, Problem(pfield, f"bad parameters for {name}: {exc}")]
    need = max(strategy.min_fit_clients, strategy.min_available_clients)
    if participants and need > participants:
        problems.append(Problem(pfield, f"{name} needs {need} clients but the job has {participants} "
                                        "training workers"))
    return problems


def _strategy_spec(field: str, raw: str, params_entry: tuple[str, Any] | None
                   ) -> tuple[str, dict[str, Any], Problem | None]:
    params: dict[str, Any] = {}
    if params_entry is not None:
        try:
            params = parse_parameters(str(params_entry[1] or ""), "AGGREGATION_PARAMETERS")
        except SednaError as exc:
            return "", {}, Problem(params_entry[0], str(exc))
    raw = raw.strip()
    if not raw.startswith("{"):
        return raw, params, None
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError as exc:
        return "", {}, Problem(field, f"aggregation is not valid JSON ({exc.msg}): {raw!r}")
    name = spec.get("name") or spec.get("method") if isinstance(spec, dict) else None
    if not name:
        return "", {}, Problem(field, f"aggregation JSON needs a 'name': {raw!r}")
    extra = spec.get("parameters", spec.get("param", {}))
    try:
        extra = extra if isinstance(extra, dict) else parse_parameters(json.dumps(extra), "aggregation.parameters")
    except SednaError as exc:
        return "", {}, Problem(field, str(exc))
    return str(name), {**extra, **params}, None


def _as_float(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    try:
        return float(str(raw).strip())
    except ValueError:
        return None


def _number(field: str, raw: Any, name: str, integer: bool, positive: bool) -> list[Problem]:
    value = _as_float(raw)
    what = "a positive integer" if integer else "a positive number" if positive else "a number"
    if value is None or (integer and not str(raw).strip().lstrip("+").isdigit()) or (positive and value <= 0):
        return [Problem(field, f"{name} must be {what}, got {raw!r}")]
    return []
