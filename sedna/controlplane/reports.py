"""Reports: what a worker tells its LC, and what the LC sends upstream to the GM.

A worker posts Sedna's ``MessageContent`` body to ``POST /sedna/workers/{worker}/info``::

    {name, namespace, ownerName, ownerKind, ownerInfo, kind, status, results}

(the SDK's ``sedna.service.lc_client`` builds it; Sedna's own workers send the same).
:func:`parse` turns it into the one typed :class:`WorkerReport` the LC's managers handle. Parsing
is strict where Sedna was lax: the path's worker name must equal ``name``, and every bad field
raises :class:`~sedna.controlplane.errors.BadReport` naming it, before anything is stored.

Upstream, every report an LC derives from worker reports carries a :class:`WorkerPayload`
(``{phase, status, output: {models, ownerInfo}}`` plus the reporting ``worker`` or the number of
``workers`` aggregated); Dataset reports carry a :class:`DatasetPayload`. The GM's upstream
handlers (``gm.hub.upstream`` and the controllers') read these shapes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, TypedDict

from sedna.controlplane.errors import BadReport

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class WorkerReport:
    """One worker report as the LC received it (Sedna's body, checked)."""

    worker: str
    """The reporting worker (``name``; equal to the name in the URL path)."""
    namespace: str
    owner_name: str
    """Name of the resource the worker belongs to (``ownerName``)."""
    owner_kind: str
    """Lowercase kind of that resource (``ownerKind``): a :mod:`~sedna.controlplane.kinds` key."""
    kind: str = ""
    """What the worker is doing: ``inference``, ``train``, ``eval``, ``deploy``, ``aggregation``."""
    status: str = ""
    owner_info: JsonObject = field(default_factory=dict)
    results: list[JsonObject] = field(default_factory=list)

    def payload(self) -> WorkerPayload:
        """The upstream payload that forwards this report unchanged."""
        return {"phase": self.kind, "status": self.status, "worker": self.worker,
                "output": {"models": self.results, "ownerInfo": self.owner_info}}


class ReportOutput(TypedDict, total=False):
    models: list[JsonObject]
    """The worker's ``results``: ``[{format, url, metrics}]`` of the models it produced."""
    ownerInfo: JsonObject
    """The worker's ``ownerInfo`` (for joint inference: the node's aggregated counters)."""


class WorkerPayload(TypedDict, total=False):
    """Upstream payload of a report derived from worker reports."""

    phase: str
    status: str
    worker: str
    """The reporting worker, when one report is forwarded."""
    workers: int
    """How many workers' reports were aggregated, when the LC aggregates (joint inference)."""
    output: ReportOutput


class DatasetPayload(TypedDict, total=False):
    """Upstream payload of a Dataset report: a sample count, or why the index cannot be counted."""

    numberOfSamples: int
    problem: str


def _string(body: JsonObject, name: str, required: bool, default: str = "") -> str:
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


__all__ = ["DatasetPayload", "ReportOutput", "WorkerPayload", "WorkerReport", "parse"]
