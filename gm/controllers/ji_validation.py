"""Checks on a JointInferenceService that the CRD schema cannot express.

Each problem is a :class:`Problem` naming the field path, e.g.
``spec.edgeWorker.hardExampleMining.name: unknown algorithm 'IBTT' (did you mean 'IBT'?)``.
A missing referenced object is ``waiting`` (the service stays Pending and recovers when
it appears); a wrong value is not (the service is Failed until the spec is fixed).
The HEM check asks the SDK's plug-in registry, so a newly registered algorithm is
accepted without touching the control plane.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from gm.cluster.interface import Obj
from sedna.common.class_factory import ClassFactory, ClassType
from sedna.common.errors import RegistryError


@dataclass(frozen=True)
class Problem:
    """One invalid field: its path, what is wrong, and whether waiting may fix it."""

    field: str
    message: str
    waiting: bool = False

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


ModelLookup = Callable[[str], Obj | None]

_NUMERIC_HINTS = ("threshold", "ratio", "rate", "probability")


def edge_node(spec: dict[str, Any]) -> str:
    """The node the edge worker runs on: ``template.spec.nodeName`` or the hostname nodeSelector."""
    pod_spec = ((spec.get("edgeWorker") or {}).get("template") or {}).get("spec") or {}
    return pod_spec.get("nodeName") or (pod_spec.get("nodeSelector") or {}).get("kubernetes.io/hostname") or ""


def validate(ji: Obj, model: ModelLookup, nodes: Collection[str] = ()) -> list[Problem]:
    """Every problem of ``ji``'s spec; ``model(name)`` looks a Model up in its namespace."""
    spec = ji.get("spec") or {}
    problems: list[Problem] = []
    for side in ("edgeWorker", "cloudWorker"):
        name = ((spec.get(side) or {}).get("model") or {}).get("name") or ""
        field = f"spec.{side}.model.name"
        if not name:
            problems.append(Problem(field, "no model named"))
        elif model(name) is None:
            ns = ji["metadata"].get("namespace", "default")
            problems.append(Problem(field, f"Model {name!r} not found in namespace {ns!r}", waiting=True))
        elif not ((model(name) or {}).get("spec") or {}).get("url"):
            problems.append(Problem(field, f"Model {name!r} has no spec.url", waiting=True))
    node = edge_node(spec)
    if not node:
        problems.append(Problem("spec.edgeWorker.template.spec.nodeName",
                                "edge node not named (set nodeName or nodeSelector kubernetes.io/hostname)"))
    elif nodes and node not in nodes:
        problems.append(Problem("spec.edgeWorker.template.spec.nodeName",
                                f"unknown node {node!r} (known: {', '.join(sorted(nodes))})", waiting=True))
    problems.extend(_hem_problems((spec.get("edgeWorker") or {}).get("hardExampleMining")))
    return problems


def _hem_problems(hem: dict[str, Any] | None) -> list[Problem]:
    base = "spec.edgeWorker.hardExampleMining"
    if not hem or not hem.get("name"):
        return [Problem(f"{base}.name", "no hard example mining algorithm named")]
    name = hem["name"]
    if not ClassFactory.is_exists(ClassType.HEM, name):
        known = ClassFactory.names(ClassType.HEM)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known) or 'none'})"
        return [Problem(f"{base}.name", f"unknown algorithm {name!r}{hint}")]
    accepted, open_ended = _accepted_parameters(name)
    problems: list[Problem] = []
    for i, item in enumerate(hem.get("parameters") or []):
        field = f"{base}.parameters[{i}]"
        key, value = item.get("key"), item.get("value")
        if not key:
            problems.append(Problem(f"{field}.key", "empty parameter name"))
            continue
        if not open_ended and key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
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
