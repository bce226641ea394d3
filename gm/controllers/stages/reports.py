"""Reports from the edge for a staged learning job: filed by the hub handler, read by the stage machine.

:func:`file_report` is what the edge hub's handler for a staged kind does: an LC decision (payload
``"source": "lc"``) goes to ``status.edgeReports.lc``, a worker report to ``status.edgeReports.<phase>``
(``train``, ``eval``, ``deploy``, ``inference``). Only it writes there; the stage machine reads the
slots with :func:`edge_report` and writes everything else, so the two writers never overwrite
each other.
"""

from __future__ import annotations

from typing import Any, TypedDict

from gm.cluster.interface import Cluster, Kind, Obj
from gm.errors import MalformedReport
from gm.runtime.patches import utc_now
from sedna.controlplane import il_protocol as ilp

PHASES = ("train", "eval", "deploy", "inference")


class LCDecision(TypedDict):
    """``status.edgeReports.lc``: the LC's latest trigger decision."""

    phase: str
    status: str | None
    round: int
    input: dict[str, Any]
    message: str
    time: str


class WorkerReport(TypedDict):
    """``status.edgeReports.<phase>``: a stage worker's latest report."""

    worker: Any
    status: str | None
    models: list[Any]
    info: dict[str, Any]
    time: str


def edge_report(job: Obj, slot: str) -> dict[str, Any]:
    """The latest report filed under ``status.edgeReports.<slot>`` ({} when none)."""
    value = ((job.get("status") or {}).get("edgeReports") or {}).get(slot)
    return value if isinstance(value, dict) else {}


def file_report(cluster: Cluster, kind: Kind, report: Any) -> None:
    """File an LC decision or a worker report (``report.key``, ``report.payload``) under ``status.edgeReports``.

    Raises :class:`~gm.errors.MalformedReport` naming the field of a payload that does not fit.
    """
    payload = report.payload
    phase = payload.get("phase")
    if not isinstance(phase, str) or phase.lower() not in PHASES:
        raise MalformedReport(f"phase: expected train, eval, deploy or inference, got {phase!r}")
    status = payload.get("status")
    if status is not None and not isinstance(status, str):
        raise MalformedReport(f"status: expected a string, got {status!r}")
    entry: LCDecision | WorkerReport
    if payload.get("source") == ilp.LC_SOURCE:
        if not isinstance(payload.get("round"), int):
            raise MalformedReport(f"round: expected an integer, got {payload.get('round')!r}")
        entry = {"phase": phase.lower(), "status": status, "round": payload["round"],
                 "input": payload.get("input") or {}, "message": str(payload.get("message") or ""),
                 "time": utc_now()}
        slot = "lc"
    else:
        output = payload.get("output") or {}
        entry = {"worker": payload.get("worker"), "status": status, "models": output.get("models") or [],
                 "info": output.get("ownerInfo") or {}, "time": utc_now()}
        slot = phase.lower()
    # a merge patch merges nested objects: drop the old entry first so none of its keys survive
    cluster.patch_status(kind, report.key.namespace, report.key.name, {"edgeReports": {slot: None}})
    cluster.patch_status(kind, report.key.namespace, report.key.name, {"edgeReports": {slot: dict(entry)}})
