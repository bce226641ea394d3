"""Reports from the edge for IncrementalLearningJobs: filed by the hub handler, read by the controller.

:func:`handle_upstream` is the edge hub's handler for the kind: an LC decision (payload
``"source": "lc"``) goes to ``status.edgeReports.lc``, a worker report to
``status.edgeReports.<phase>`` (``train``, ``eval``, ``deploy``, ``inference``). Only it writes
there; the controller (:mod:`.incremental_learning`) reads the slots with :func:`edge_report`
and writes everything else. The inference worker's periodic counter report
(:mod:`sedna.core.incremental_stats`) becomes ``status.inference`` (:func:`inference_status`)
and, since it names the round being served, also confirms a hot update whose one-shot
``deploy`` report was lost (an LC restarting at that moment, say).
"""

from __future__ import annotations

from typing import Any

from gm.cluster.interface import INCREMENTAL_LEARNING_JOB, Cluster, Obj
from sedna.controlplane import il_protocol as ilp

KIND = INCREMENTAL_LEARNING_JOB


def edge_report(job: Obj, slot: str) -> dict[str, Any]:
    """The latest report filed under ``status.edgeReports.<slot>`` ({} when none)."""
    value = ((job.get("status") or {}).get("edgeReports") or {}).get(slot)
    return value if isinstance(value, dict) else {}


def inference_status(job: Obj) -> dict[str, Any] | None:
    """``status.inference`` from the inference worker's latest counter report, or None before one."""
    report = edge_report(job, "inference")
    info = report.get("info") or {}
    if not info:
        return None
    return {"worker": report.get("worker"), "count": info.get("inferenceNumber"),
            "hardExamples": info.get("hardExampleNumber"), "servedRound": info.get("round"),
            "updateTime": info.get("updateTime") or report.get("time")}


def served_round(job: Obj) -> int | None:
    """The round of the model the inference worker last said it serves (None when unknown)."""
    value = (edge_report(job, "inference").get("info") or {}).get("round")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def handle_upstream(cluster: Cluster, report: Any) -> None:
    """Edge hub handler: file an LC decision or a worker report under ``status.edgeReports``."""
    from gm.hub.upstream import MalformedReport, now

    payload = report.payload
    phase = payload.get("phase")
    if not isinstance(phase, str) or phase.lower() not in ("train", "eval", "deploy", "inference"):
        raise MalformedReport(f"phase: expected train, eval, deploy or inference, got {phase!r}")
    status = payload.get("status")
    if status is not None and not isinstance(status, str):
        raise MalformedReport(f"status: expected a string, got {status!r}")
    if payload.get("source") == ilp.LC_SOURCE:
        if not isinstance(payload.get("round"), int):
            raise MalformedReport(f"round: expected an integer, got {payload.get('round')!r}")
        entry = {"phase": phase.lower(), "status": status, "round": payload["round"],
                 "input": payload.get("input") or {}, "message": str(payload.get("message") or ""),
                 "time": now()}
        slot = "lc"
    else:
        output = payload.get("output") or {}
        entry = {"worker": payload.get("worker"), "status": status, "models": output.get("models") or [],
                 "info": output.get("ownerInfo") or {}, "time": now()}
        slot = phase.lower()
    # a merge patch merges nested objects: drop the old entry first so none of its keys survive
    cluster.patch_status(KIND, report.key.namespace, report.key.name, {"edgeReports": {slot: None}})
    cluster.patch_status(KIND, report.key.namespace, report.key.name, {"edgeReports": {slot: entry}})


__all__ = ["edge_report", "handle_upstream", "inference_status", "served_round"]
