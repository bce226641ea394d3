"""Reports from the edge for LifelongLearningJobs: filed by the hub handler, read by the controller.

:func:`handle_upstream` is the edge hub's handler for the kind (Sedna dropped nothing here, but
this project's GM dropped every lifelong report until it existed). It files, under
``status.edgeReports`` (:mod:`gm.controllers.stages.reports`, shared with incremental learning):

- the LC's decisions (``source: lc``) in slot ``lc``, for the stage machine; the LC's word on a
  train trigger that has not fired yet (``status: waiting``, the trigger's own explanation) in
  slot ``trigger``, for the job's ``status.waiting``;
- a worker's report in the slot of its phase (``train``, ``eval``, ``deploy``, ``inference``),
  only when the reporting worker is a Pod of this job: a report naming another job's Pod, or no
  Pod at all, is refused (the LC drops it) and changes nothing.
"""

from __future__ import annotations

from typing import Any

from gm.cluster.interface import LIFELONG_LEARNING_JOB, POD, Cluster, NotFound
from gm.controllers.stages.reports import file_report
from gm.errors import MalformedReport
from gm.runtime.patches import utc_now
from sedna.controlplane import il_protocol as ilp

KIND = LIFELONG_LEARNING_JOB
WAITING = "waiting"


def handle_upstream(cluster: Cluster, node: str, report: Any) -> None:
    """Edge hub handler: file an LC decision, an LC trigger explanation or a worker report.

    ``node`` sent it; the hub has checked that node holds the role the report speaks for.
    """
    payload, key = report.payload, report.key
    if payload.get("source") == ilp.LC_SOURCE:
        if payload.get("status") == WAITING:
            _file_trigger(cluster, report)
        else:
            file_report(cluster, KIND, report)
        return
    check_worker(cluster, key.namespace, key.name, payload.get("worker"))
    file_report(cluster, KIND, report)


def check_worker(cluster: Cluster, namespace: str, job: str, worker: Any) -> None:
    """Raise :class:`MalformedReport` unless ``worker`` names a Pod of job ``namespace/job``."""
    if not isinstance(worker, str) or not worker:
        raise MalformedReport(f"worker: expected the reporting worker's name, got {worker!r}")
    try:
        pod = cluster.get(POD, namespace, worker)
    except NotFound:
        raise MalformedReport(f"worker: {worker!r} is not a worker of {KIND.kind.lower()} {namespace}/{job} "
                              "(no such Pod)") from None
    owner = (pod["metadata"].get("labels") or {}).get(f"{KIND.label_prefix}/name")
    if owner != job:
        raise MalformedReport(f"worker: Pod {worker!r} is not a worker of {KIND.kind.lower()} {namespace}/{job}")


def _file_trigger(cluster: Cluster, report: Any) -> None:
    payload = report.payload
    if not isinstance(payload.get("round"), int):
        raise MalformedReport(f"round: expected an integer, got {payload.get('round')!r}")
    entry = {"phase": str(payload.get("phase") or ""), "round": payload["round"],
             "message": str(payload.get("message") or ""), "time": utc_now()}
    key = report.key
    cluster.patch_status(KIND, key.namespace, key.name, {"edgeReports": {"trigger": entry}})


__all__ = ["check_worker", "handle_upstream"]
