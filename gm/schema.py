"""Validate ``sedna.io`` objects against their CRD schemas, as the API server would.

The kube backend gets validation from the API server; the local backend, the CLI and
controllers call :func:`validate` to get the same verdict without one. The CRDs in
:mod:`crds` are the single source: each ``openAPIV3Schema`` is converted for
jsonschema (``x-kubernetes-*`` keys dropped; ``x-kubernetes-preserve-unknown-fields``
keeps an object open; every other object with declared properties is closed with
``additionalProperties: false`` so a typo such as ``hardExampleMinning`` is an error,
where Kubernetes would silently prune it). Validators are compiled on the first call
(or by :func:`warm`, which a server calls at start-up so its first request is not the slow
one) and cached; nothing is loaded at import time.

Each schema is compiled twice: by ``fastjsonschema`` (Python code generated from the schema,
stopping at the first error) and by ``jsonschema``'s ``Draft7Validator`` (every error, with
its path). An object the fast validator accepts is valid; only a rejected one goes through
jsonschema, which finds and describes all its violations, so the verdict and the messages are
jsonschema's. The fast one is compiled as draft 7 and is stricter where the two differ (a
pattern's ``$`` does not match before a trailing newline), which only sends such an object to
jsonschema. One difference goes the other way, for input built in Python only: fastjsonschema
takes a ``tuple`` as an array where jsonschema wants a ``list``; JSON and YAML parse to lists.

Violations come back as ``(field path, message)`` pairs in Kubernetes style
(``spec.trainingWorkers[0].dataset.name``), all of them, sorted by path, the shape
:class:`gm.cluster.interface.Invalid` carries in ``causes``.
"""

from __future__ import annotations

import difflib
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

__all__ = ["Violation", "validate", "warm"]

Violation = tuple[str, str]

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_DRAFT7 = "http://json-schema.org/draft-07/schema#"


class _Validators(NamedTuple):
    """One CRD version's schema compiled twice: ``fast`` raises on the first error, ``full`` lists them all."""

    fast: Callable[[Any], Any]
    full: Any


_lock = threading.Lock()
_validators: dict[tuple[str, str], _Validators] | None = None


def validate(obj: Mapping[str, Any]) -> list[Violation]:
    """Every schema violation of a ``sedna.io`` object, as ``(path, message)`` pairs; ``[]`` when valid.

    Parameters
    ----------
    obj:
        The object in Kubernetes JSON shape (``apiVersion``, ``kind``, ``metadata``, ``spec``).

    Returns
    -------
    list of (str, str)
        Field paths such as ``spec.edgeWorker.hardExampleMining.name`` with a message; sorted by path.
        An unknown ``apiVersion``/``kind`` yields a single ``kind`` violation.
    """
    violations = _check_name(obj.get("metadata"))
    key = (str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    validators = _compiled().get(key)
    if validators is None:
        known = ", ".join(sorted(kind for _, kind in _compiled()))
        return [("kind", f"unsupported apiVersion/kind {key[0]!r}/{key[1]!r} (known sedna.io/v1alpha1 kinds: {known})")]
    instance = dict(obj)
    if not _accepts(validators.fast, instance):
        for error in validators.full.iter_errors(instance):
            violations.extend(_describe(error))
    return sorted(set(violations))


def warm() -> None:
    """Compile every validator now, so the first :func:`validate` call is not the slow one."""
    _compiled()


def _accepts(fast: Callable[[Any], Any], instance: dict[str, Any]) -> bool:
    try:
        fast(instance)
    except Exception:  # a violation, or input the generated code does not handle: jsonschema decides
        return False
    return True


def _check_name(metadata: Any) -> list[Violation]:
    if not isinstance(metadata, Mapping):
        return [("metadata", "Required value: metadata with a name")]
    name = metadata.get("name")
    if not name:
        if metadata.get("generateName"):
            return []
        return [("metadata.name", "Required value: name or generateName is required")]
    if not isinstance(name, str) or len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        return [("metadata.name", f"Invalid value: {name!r}: a lowercase RFC 1123 subdomain must consist of "
                                  "lower case alphanumeric characters, '-' or '.', and must start and end "
                                  "with an alphanumeric character (at most 253 characters)")]
    return []


def _compiled() -> dict[tuple[str, str], _Validators]:
    global _validators
    with _lock:
        if _validators is None:
            import crds

            table: dict[tuple[str, str], _Validators] = {}
            for crd in crds.load_crds():
                spec = crd["spec"]
                for version in spec["versions"]:
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    table[key] = _compile(version["schema"]["openAPIV3Schema"])
            _validators = table
        return _validators


def _compile(openapi_schema: Mapping[str, Any]) -> _Validators:
    import fastjsonschema
    import jsonschema

    schema = _to_jsonschema(openapi_schema)
    jsonschema.Draft7Validator.check_schema(schema)
    # without $schema fastjsonschema would pick its newest draft (2019-09)
    fast = fastjsonschema.compile({"$schema": _DRAFT7, **schema}, use_default=False, use_formats=False,
                                  detailed_exceptions=False)
    return _Validators(fast, jsonschema.Draft7Validator(schema))


def _to_jsonschema(node: Any) -> Any:
    """Convert a structural OpenAPI v3 schema into a closed JSON Schema (draft 7)."""
    if isinstance(node, list):
        return [_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("description", "default", "format"):
            continue
        if key == "properties":
            out[key] = {name: _to_jsonschema(sub) for name, sub in value.items()}
        elif key == "nullable":
            continue
        else:
            out[key] = _to_jsonschema(value)
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if node.get("type") == "object" and "properties" in node and not node.get(_PRESERVE):
        out.setdefault("additionalProperties", False)
    return out


def _path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _join(base: str, name: str) -> str:
    return f"{base}.{name}" if base else name


def _describe(error: Any) -> list[Violation]:
    where = _path(error.absolute_path)
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "required":
        return [(_join(where, name), "Required value") for name in value
                if isinstance(instance, Mapping) and name not in instance]
    if kind == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        out = []
        for name in sorted(set(instance) - set(known)):
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known fields: {', '.join(known)}"
            out.append((_join(where, name), f"unknown field {name!r}{hint}"))
        return out
    if kind == "enum":
        allowed = ", ".join(f'"{item}"' for item in value)
        return [(where, f"Unsupported value: {instance!r}: supported values: {allowed}")]
    if kind == "type":
        return [(where, f"Invalid value: {instance!r}: must be of type {value}")]
    if kind in ("minimum", "maximum"):
        relation = "greater than or equal to" if kind == "minimum" else "less than or equal to"
        return [(where, f"Invalid value: {instance!r}: must be {relation} {value}")]
    if kind == "pattern":
        return [(where, f"Invalid value: {instance!r}: must match {value!r}")]
    if kind in ("minLength", "minItems"):
        return [(where, f"Invalid value: {instance!r}: must have at least {value} "
                        f"{'character' if kind == 'minLength' else 'item'}{'s' if value != 1 else ''}")]
    return [(where, f"Invalid value: {error.message}")]
