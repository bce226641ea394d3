"""Sedna's ``{"method": name, "param": {...}}`` algorithm choices, parsed at the boundary.

``param`` may be a dict or a JSON string (as a job's env carries it). :func:`build` looks the
method up in the class registry and instantiates it; every failure names the constructor
argument it came from (``task_definition.method: no seen_task_processing plug-in named
'TaskDefinitionByAttr' ... Did you mean 'TaskDefinitionByDataAttr'?``), so a job's condition can
say which field to fix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sedna.common.class_factory import ClassFactory, ClassType
from sedna.common.config import AlgorithmSpec
from sedna.common.errors import ConfigError, RegistryError


@dataclass(frozen=True)
class Choice:
    """A parsed algorithm choice."""

    field: str
    method: str
    param: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "param": dict(self.param)}


def parse(field_name: str, value: Any, default: str) -> Choice:
    """``value`` (None, a method name, a ``{"method", "param"}`` dict or an AlgorithmSpec) as a Choice."""
    if value is None:
        return Choice(field_name, default)
    if isinstance(value, str):
        return Choice(field_name, value)
    if isinstance(value, AlgorithmSpec):
        return Choice(field_name, value.name, dict(value.parameters))
    if not isinstance(value, Mapping):
        raise ConfigError(f"{field_name}: expected {{'method': name, 'param': {{...}}}}, got {type(value).__name__}")
    method = value.get("method") or default
    if not isinstance(method, str):
        raise ConfigError(f"{field_name}.method: must be a plug-in name, got {method!r}")
    raw = value.get("param")
    if raw is None or raw == "":
        param: Any = {}
    elif isinstance(raw, str):
        try:
            param = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{field_name}.param: not valid JSON ({exc.msg} at char {exc.pos}): {raw!r}") from None
    else:
        param = raw
    if not isinstance(param, Mapping):
        raise ConfigError(f"{field_name}.param: must be an object, got {type(param).__name__}")
    return Choice(field_name, method, dict(param))


def build(choice: Choice, class_type: ClassType, **extra: Any) -> Any:
    """Instantiate ``choice`` from the registry; errors name ``choice.field``."""
    try:
        cls = ClassFactory.get_cls(class_type, choice.method)
    except RegistryError as exc:
        raise RegistryError(f"{choice.field}.method: {exc}") from None
    try:
        return cls(**extra, **choice.param)
    except TypeError as exc:
        raise ConfigError(f"{choice.field}.param: {choice.method} rejected {sorted(choice.param)}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{choice.field}.param: {exc}") from None
