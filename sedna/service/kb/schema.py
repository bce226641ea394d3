"""The knowledge-base index: a versioned JSON document, validated against a JSON Schema.

Sedna pickled its index (``index.pkl``) and unpickled uploads on the server; here the index is
data only. It names every model, prototype and sample file by **content hash** (a blob
reference ``{"sha256", "size", "format"}``, format ``onnx``, ``npy`` or ``npz``); the files
travel separately and are checked against that hash. Shape (Sedna's keys where it had them)::

    {"apiVersion": "sedna.io/kb-index/v1", "version": 3, "createTime": "...",
     "attribute": ["site"], "recognizer": {"method": ..., "param": {...}},
     "allocation": {"method": ..., "param": {...}},
     "seen_task": {"task_groups": [
        {"entry": "site-a", "deploy": true, "classes": ["0", "1"],
         "tasks": [{"entry": "site-a", "meta_attr": ["a"], "samples": {"count": 300, "blob": <ref>|null}}],
         "model": {"blob": <ref>, "metrics": {"accuracy": 0.96}, "trained_samples": 300, "base": null},
         "prototypes": <ref>, "calibration": {"distance_threshold": 31.2}}]},
     "unseen_task": {"task_groups": [...]}}

:func:`validate_index` raises :class:`~.errors.KBValidationError` naming the first bad field
(its JSON path), and also checks what a schema cannot: unique group entries.
"""

from __future__ import annotations

import functools
from typing import Any

from sedna.service.kb.errors import KBValidationError

API_VERSION = "sedna.io/kb-index/v1"
BLOB_FORMATS = ("onnx", "npy", "npz")
MAX_GROUPS = 4096

_BLOB = {
    "type": "object",
    "required": ["sha256", "size", "format"],
    "additionalProperties": False,
    "properties": {
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "size": {"type": "integer", "minimum": 0},
        "format": {"enum": list(BLOB_FORMATS)},
    },
}
_NAME = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^/\\\\\\x00]+$"}
_METRICS = {"type": "object", "maxProperties": 64,
            "additionalProperties": {"anyOf": [{"type": "number"},
                                               {"type": "array", "maxItems": 4096, "items": {"type": "number"}}]}}
_SPEC = {
    "type": "object", "required": ["method"], "additionalProperties": False,
    "properties": {"method": {"type": "string", "minLength": 1, "maxLength": 200},
                   "param": {"type": "object", "maxProperties": 64}},
}
_TASK = {
    "type": "object", "required": ["entry"], "additionalProperties": False,
    "properties": {
        "entry": _NAME,
        "meta_attr": {"type": "array", "maxItems": 32, "items": {"type": "string", "maxLength": 200}},
        "samples": {"type": "object", "required": ["count"], "additionalProperties": False,
                    "properties": {"count": {"type": "integer", "minimum": 0},
                                   "blob": {"anyOf": [{"type": "null"}, _BLOB]}}},
    },
}
_GROUP = {
    "type": "object", "required": ["entry", "tasks", "model", "prototypes"], "additionalProperties": False,
    "properties": {
        "entry": _NAME,
        "deploy": {"type": "boolean"},
        "classes": {"type": "array", "maxItems": 100000, "items": {"type": "string", "maxLength": 200}},
        "tasks": {"type": "array", "minItems": 1, "maxItems": 1024, "items": _TASK},
        "model": {"type": "object", "required": ["blob"], "additionalProperties": False,
                  "properties": {"blob": _BLOB, "metrics": _METRICS,
                                 "trained_samples": {"type": "integer", "minimum": 0},
                                 "base": {"type": ["string", "null"], "maxLength": 200},
                                 "createTime": {"type": "string", "maxLength": 64}}},
        "prototypes": _BLOB,
        "calibration": {"type": "object", "maxProperties": 32, "additionalProperties": {"type": "number"}},
    },
}
_SECTION = {"type": "object", "required": ["task_groups"], "additionalProperties": False,
            "properties": {"task_groups": {"type": "array", "maxItems": MAX_GROUPS, "items": _GROUP}}}
INDEX_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["apiVersion", "seen_task"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": API_VERSION},
        "version": {"type": "integer", "minimum": 0},
        "createTime": {"type": "string", "maxLength": 64},
        "attribute": {"type": "array", "maxItems": 32, "items": {"type": "string", "maxLength": 200}},
        "recognizer": _SPEC,
        "allocation": _SPEC,
        "seen_task": _SECTION,
        "unseen_task": _SECTION,
    },
}


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(INDEX_SCHEMA)


def _path(error: Any) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "index"


def validate_index(doc: Any) -> dict[str, Any]:
    """Return ``doc`` when it is a valid index; else raise KBValidationError naming the field."""
    if not isinstance(doc, dict):
        raise KBValidationError("index", f"must be a JSON object, got {type(doc).__name__}")
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        raise KBValidationError(_path(first), first.message)
    for section in ("seen_task", "unseen_task"):
        seen: set[str] = set()
        for i, group in enumerate((doc.get(section) or {}).get("task_groups", [])):
            if group["entry"] in seen:
                raise KBValidationError(f"{section}.task_groups[{i}].entry",
                                        f"{group['entry']!r} appears twice; task group entries must be unique")
            seen.add(group["entry"])
    return doc


def blob_refs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every blob reference of a (valid) index, models first, without duplicates."""
    refs: dict[str, dict[str, Any]] = {}
    for section in ("seen_task", "unseen_task"):
        for group in (doc.get(section) or {}).get("task_groups", []):
            refs.setdefault(group["model"]["blob"]["sha256"], group["model"]["blob"])
            refs.setdefault(group["prototypes"]["sha256"], group["prototypes"])
            for task in group["tasks"]:
                blob = (task.get("samples") or {}).get("blob")
                if blob:
                    refs.setdefault(blob["sha256"], blob)
    return list(refs.values())
