"""Reports from the edge for IncrementalLearningJobs: filed by the hub handler, read by the controller.

:func:`handle_upstream` is the edge hub's handler for the kind; it files LC decisions and worker
reports under ``status.edgeReports`` (:mod:`gm.controllers.stages.reports`, shared with other staged
kinds). The inference worker's periodic counter report (:mod:`sedna.core.incremental_stats`) becomes
``status.inference`` (:func:`inference_status`) and, since it names the round being served, also
confirms a hot update whose one-shot ``deploy`` report was lost (an LC restarting at that moment, say).
"""

from __future__ import annotations

from typing import Any, TypedDict

from gm.cluster.interface import INCREMENTAL_LEARNING_JOB, Cluster, Obj
from gm.controllers.stages.reports import edge_report, file_report

KIND = INCREMENTAL_LEARNING_JOB


class InferenceStatus(TypedDict):
    """``status.inference``: the inference worker's latest counters."""

    worker: Any
    count: Any
    hardExamples: Any
    servedRound: Any
    updateTime: Any


def inference_status(job: Obj) -> InferenceStatus | None:
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
    file_report(cluster, KIND, report)


__all__ = ["InferenceStatus", "edge_report", "handle_upstream", "inference_status", "served_round"]
