"""Validate ``sedna.io`` objects against their CRD schemas, as the API server would.

The kube backend gets validation from the API server; the local backend, the CLI and
controllers call :func:`validate` to get the same verdict without one. The CRDs in
:mod:`crds` are the single source: each ``openAPIV3Schema`` is converted for
jsonschema (``x-kubernetes-*`` keys dropped; ``x-kubernetes-preserve-unknown-fields``
keeps an object open; every other object with declared properties is closed with
``additionalProperties: false`` so a typo such as ``hardExampleMinning`` is an error,
where Kubernetes would silently prune it). Validators are compiled on the first call
and cached; nothing is loaded at import time.

Violations come back as ``(field path, message)`` pairs in Kubernetes style
(``spec.trainingWorkers[0].dataset.name``), all of them, sorted by path, the shape
:class:`gm.cluster.interface.Invalid` carries in ``causes``.
"""

from __future__ import annotations

import difflib
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Violation", "validate"]

Violation = tuple[str, str]

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PRESERVE = "x-kubernetes-preserve-unknown-fields"

_lock = threading.Lock()
_validators: dict[tuple[str, str], Any] | None = None


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
    validator = _compiled().get(key)
    if validator is None:
        known = ", ".join(sorted(kind for _, kind in _compiled()))
        return [("kind", f"unsupported apiVersion/kind {key[0]!r}/{key[1]!r} (known sedna.io/v1alpha1 kinds: {known})")]
    for error in validator.iter_errors(dict(obj)):
        violations.extend(_describe(error))
    return sorted(set(violations))


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


def _compiled() -> dict[tuple[str, str], Any]:
    global _validators
    with _lock:
        if _validators is None:
            import jsonschema

            import crds

            table: dict[tuple[str, str], Any] = {}
            for crd in crds.load_crds():
                spec = crd["spec"]
                for version in spec["versions"]:
                    schema = _to_jsonschema(version["schema"]["openAPIV3Schema"])
                    jsonschema.Draft7Validator.check_schema(schema)
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    table[key] = jsonschema.Draft7Validator(schema)
            _validators = table
        return _validators


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
