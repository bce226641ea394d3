"""Checks on a JointInferenceService that the CRD schema cannot express.

Each problem is a :class:`~gm.controllers.common.problems.Problem` naming its field path. A missing
Model is ``waiting`` (the service stays Pending and recovers when it appears); a wrong value is not
(the service is Failed until the spec is fixed). The HEM check asks the SDK's plug-in registry, so a
newly registered algorithm is accepted without touching the control plane; its parameters are
checked against the algorithm's ``__init__`` signature.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Collection
from typing import Any

from gm.cluster.interface import Obj
from gm.controllers.common.problems import Lookup, Problem, hem_name, model_reference
from gm.workloads.placement import Placement
from sedna.common.class_factory import ClassFactory, ClassType
from sedna.common.errors import RegistryError

_NUMERIC_HINTS = ("threshold", "ratio", "rate", "probability")
HEM = "spec.edgeWorker.hardExampleMining"
EDGE_NODE = "spec.edgeWorker.template.spec.nodeName"


def validate(ji: Obj, model: Lookup, nodes: Collection[str] = ()) -> list[Problem]:
    """Every problem of ``ji``'s spec; ``model(name)`` looks a Model up in its namespace."""
    spec = ji.get("spec") or {}
    ns = ji["metadata"].get("namespace", "default")
    problems: list[Problem] = []
    for side in ("edgeWorker", "cloudWorker"):
        name = ((spec.get(side) or {}).get("model") or {}).get("name") or ""
        problems += model_reference(f"spec.{side}.model.name", name, model, ns)
    node = Placement().ji_edge(spec)
    if not node:
        problems.append(Problem(EDGE_NODE, "edge node not named (set nodeName or nodeSelector kubernetes.io/hostname)"))
    elif nodes and node not in nodes:
        problems.append(Problem(EDGE_NODE, f"unknown node {node!r} (known: {', '.join(sorted(nodes))})", waiting=True))
    problems.extend(_hem_problems((spec.get("edgeWorker") or {}).get("hardExampleMining")))
    return problems


def _hem_problems(hem: dict[str, Any] | None) -> list[Problem]:
    problems, name = hem_name(f"{HEM}.name", hem, required=True)
    if problems or hem is None:
        return problems
    accepted, open_ended = _accepted_parameters(name)
    for i, item in enumerate(hem.get("parameters") or []):
        field = f"{HEM}.parameters[{i}]"
        key, value = item.get("key"), item.get("value")
        if not key:
            problems.append(Problem(f"{field}.key", "empty parameter name"))
            continue
        if not open_ended and key not in accepted:
            close = difflib.get_close_matches(key, list(accepted), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"accepted: {', '.join(sorted(accepted)) or 'none'}"
            problems.append(Problem(f"{field}.key", f"{name} takes no parameter {key!r} ({hint})"))
            continue
        numeric = accepted.get(key) or any(h in key.lower() for h in _NUMERIC_HINTS)
        if numeric and not _is_number(value):
            problems.append(Problem(f"{field}.value", f"{key} must be a number, got {value!r}"))
    return problems


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    try:
        float(str(value).strip())
    except ValueError:
        return False
    return True


def _accepted_parameters(name: str) -> tuple[dict[str, bool], bool]:
    """``({parameter: is_numeric}, takes_any_other)`` from the class's ``__init__`` signature."""
    try:
        params = inspect.signature(ClassFactory.get_cls(ClassType.HEM, name)).parameters
    except (RegistryError, TypeError, ValueError):
        return {}, True
    out: dict[str, bool] = {}
    open_ended = False
    for pname, param in params.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            open_ended = True
            continue
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        annotation = str(param.annotation).replace("<class '", "").replace("'>", "")
        numeric = isinstance(param.default, (int, float)) and not isinstance(param.default, bool)
        out[pname] = numeric or annotation in ("float", "int")
    return out, open_ended
