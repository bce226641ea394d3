"""Worker reports: Sedna's ``MessageContent`` body parsed into a typed :class:`WorkerReport`.

The body is ``{name, namespace, ownerName, ownerKind, ownerInfo, kind, status, results}``
(see ``sedna.service.lc_client``). Parsing is strict where Sedna was lax: the path's worker
name must equal ``name``, ``ownerKind`` must name a manager, and every bad field raises
:class:`~lc.errors.BadReport` naming it, before anything is stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lc.errors import BadReport


@dataclass(frozen=True)
class WorkerReport:
    worker: str
    namespace: str
    owner_name: str
    owner_kind: str
    kind: str = ""
    status: str = ""
    owner_info: dict[str, Any] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)


def _string(body: dict[str, Any], name: str, required: bool, default: str = "") -> str:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise BadReport(name, "is required and must be a non-empty string")
        return default
    if not isinstance(value, str):
        raise BadReport(name, f"must be a string, got {type(value).__name__} {value!r}")
    return value


def parse(worker: str, raw: bytes) -> WorkerReport:
    """Decode and check a report body for the worker named in the URL path."""
    try:
        body = json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadReport("body", f"is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise BadReport("body", f"must be a JSON object, got {type(body).__name__}")
    name = _string(body, "name", required=True)
    if name != worker:
        raise BadReport("name", f"{name!r} does not match the worker name {worker!r} in the URL path")
    owner_info = body.get("ownerInfo")
    if owner_info is None:
        owner_info = {}
    if not isinstance(owner_info, dict):
        raise BadReport("ownerInfo", f"must be a JSON object, got {type(owner_info).__name__}")
    results = body.get("results")
    if results is None:
        results = []
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise BadReport("results", "must be a list of JSON objects")
    return WorkerReport(
        worker=name,
        namespace=_string(body, "namespace", required=False, default="default"),
        owner_name=_string(body, "ownerName", required=True),
        owner_kind=_string(body, "ownerKind", required=True).lower(),
        kind=_string(body, "kind", required=False),
        status=_string(body, "status", required=False),
        owner_info=owner_info,
        results=results,
    )
