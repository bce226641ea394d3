"""Round reports of a FederatedLearningJob, as the edge hub hands them over, into status.

The LC forwards worker reports unchanged (``lc.managers.passthrough``): ``{phase, status, worker,
output: {ownerInfo}}`` with ``ownerInfo = {currentRound, sampleCount, startTime, updateTime, metrics}``.

- ``phase: train`` (a training worker, every round and once at the end) ->
  ``status.trainingWorkers[<worker>] = {round, sampleCount, status, metrics, updateTime}``;
- ``phase: aggregation`` (the aggregation worker after each aggregated round) ->
  ``status.aggregation = {round, clients, failures, status, evaluated, updateTime}`` and the global model's
  evaluation metrics as ``status.latestMetrics`` and as the output Model's ``status.metrics``
  (Sedna's ``[{key, value}]``) + ``status.updateTime``; the round is also appended to
  ``status.roundHistory`` ({round, clients, failures, metrics, evaluated, updateTime}, the last
  :data:`ROUND_HISTORY` rounds: ``sedna describe`` and the dashboard draw the curve from it).

``status.currentRound`` is the highest round any worker reported (it never goes back within one
run; the controller resets it when the job restarts). Until the aggregator has reported metrics,
``latestMetrics`` is the sample-weighted mean of the trainers' local metrics of that round. Only
fields, and one list bounded at :data:`ROUND_HISTORY` entries. Reports are applied under one lock, so concurrent
streams from several nodes cannot move ``currentRound`` backwards.
"""

from __future__ import annotations

import math
import threading
from typing import Any, TypedDict

from gm.cluster.interface import FEDERATED_LEARNING_JOB, MODEL, Cluster, NotFound, Obj
from gm.errors import MalformedReport
from gm.runtime.patches import utc_now

KIND = FEDERATED_LEARNING_JOB
PHASES = ("train", "aggregation")


class TrainerRound(TypedDict):
    """``status.trainingWorkers[<worker>]``: a training worker's latest round."""

    round: int
    sampleCount: int
    status: str
    metrics: dict[str, Any]
    updateTime: str


class AggregationRound(TypedDict):
    """``status.aggregation``: the aggregation worker's latest aggregated round."""

    round: int
    clients: int
    failures: int
    status: str
    evaluated: bool
    """The global model was evaluated: ``latestMetrics`` are its metrics, not the trainers' mean."""
    updateTime: str


ROUND_HISTORY = 100
_LOCK = threading.Lock()
Metrics = dict[str, Any]


def _count(info: dict[str, Any], name: str, required: bool) -> int:
    value = info.get(name, None if required else 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedReport(f"output.ownerInfo.{name}: expected a non-negative integer, got {value!r}")
    return value


def _metrics(info: dict[str, Any]) -> Metrics:
    raw = info.get("metrics") or {}
    if not isinstance(raw, dict):
        raise MalformedReport(f"output.ownerInfo.metrics: expected an object of name -> number, got {raw!r}")
    out: Metrics = {}
    for key, value in raw.items():
        if isinstance(value, (bool, str)) or (isinstance(value, (int, float)) and math.isfinite(value)):
            out[str(key)] = value
        else:
            raise MalformedReport(f"output.ownerInfo.metrics.{key}: expected a finite number, string or bool, "
                             f"got {value!r}")
    return out


def _replace(old: Any, new: Metrics) -> Metrics:
    """A merge patch that makes a metrics object equal ``new`` (keys it lacks are removed)."""
    gone = {k: None for k in (old if isinstance(old, dict) else {}) if k not in new}
    return {**gone, **new}


def weighted_metrics(workers: dict[str, Any], round_: int) -> Metrics:
    """The sample-weighted mean of the numeric metrics the trainers reported for ``round_``."""
    sums: dict[str, float] = {}
    weights: dict[str, float] = {}
    for entry in workers.values():
        if not isinstance(entry, dict) or entry.get("round") != round_:
            continue
        weight = float(entry.get("sampleCount") or 0) or 1.0
        for key, value in (entry.get("metrics") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                sums[key] = sums.get(key, 0.0) + weight * float(value)
                weights[key] = weights.get(key, 0.0) + weight
    return {k: round(sums[k] / weights[k], 6) for k in sorted(sums)}


def handle_upstream(cluster: Cluster, report: Any) -> None:
    """Edge hub handler for ``federatedlearningjob`` reports (see the module docstring).

    ``report`` is the hub's report record (``key``: kind, namespace, name; ``payload``).
    """
    payload = report.payload
    phase = str(payload.get("phase") or "").lower()
    if phase not in PHASES:
        raise MalformedReport(f"phase: expected one of {', '.join(PHASES)}, got {payload.get('phase')!r}")
    info = (payload.get("output") or {}).get("ownerInfo")
    if not isinstance(info, dict):
        raise MalformedReport("output.ownerInfo: expected an object with currentRound and metrics")
    round_ = _count(info, "currentRound", required=True)
    metrics = _metrics(info)
    state = payload.get("status")
    if state is not None and not isinstance(state, str):
        raise MalformedReport(f"status: expected a string, got {state!r}")
    given = info.get("updateTime")
    stamp = given if isinstance(given, str) and given else utc_now()
    ns, name = report.key.namespace, report.key.name
    with _LOCK:
        job = cluster.get(KIND, ns, name)
        status = job.get("status") or {}
        current = int(status.get("currentRound") or 0)
        body: dict[str, Any] = {}
        if round_ > current:
            body["currentRound"] = round_
        if phase == "train":
            worker = payload.get("worker")
            if not isinstance(worker, str) or not worker:
                raise MalformedReport(f"worker: expected the reporting worker's name, got {worker!r}")
            old = ((status.get("trainingWorkers") or {}).get(worker) or {})
            if not metrics and old.get("round") == round_:  # the final report repeats the round without metrics
                metrics = {k: v for k, v in (old.get("metrics") or {}).items() if v is not None}
            entry: TrainerRound = {"round": round_, "sampleCount": _count(info, "sampleCount", required=False),
                                   "status": state or "", "metrics": _replace(old.get("metrics"), metrics),
                                   "updateTime": stamp}
            body["trainingWorkers"] = {worker: entry}
            if not (status.get("aggregation") or {}).get("evaluated") and round_ >= current:
                merged = {**(status.get("trainingWorkers") or {}), worker: {**entry, "metrics": metrics}}
                mean = weighted_metrics(merged, round_)
                if mean:
                    body["latestMetrics"] = _replace(status.get("latestMetrics"), mean)
        else:
            aggregation: AggregationRound = {
                "round": round_, "clients": _count(info, "clients", required=False),
                "failures": _count(info, "failures", required=False), "status": state or "",
                "evaluated": bool(metrics), "updateTime": stamp}
            body["aggregation"] = aggregation
            if metrics:
                body["latestMetrics"] = _replace(status.get("latestMetrics"), metrics)
            body["roundHistory"] = _history(status, {**body["aggregation"], "metrics": metrics or {
                k: v for k, v in (status.get("latestMetrics") or {}).items() if v is not None}})
        cluster.patch_status(KIND, ns, name, body)
    if phase == "aggregation" and metrics:
        _model_metrics(cluster, job, metrics)


def _history(status: dict[str, Any], entry: dict[str, Any]) -> list[dict[str, Any]]:
    """``status.roundHistory`` with ``entry`` in place of any earlier report of its round, newest last."""
    kept = [h for h in status.get("roundHistory") or [] if isinstance(h, dict) and h.get("round") != entry["round"]]
    return sorted([*kept, {k: v for k, v in entry.items() if k != "status"}],
                  key=lambda h: int(h.get("round") or 0))[-ROUND_HISTORY:]


def _model_metrics(cluster: Cluster, job: Obj, metrics: Metrics) -> None:
    model = (((job.get("spec") or {}).get("aggregationWorker") or {}).get("model") or {}).get("name")
    if not model:
        return
    entries = [{"key": k, "value": str(v)} for k, v in sorted(metrics.items())]
    try:
        cluster.patch_status(MODEL, job["metadata"]["namespace"], model, {"metrics": entries, "updateTime": utc_now()})
    except NotFound:
        pass  # the Model was deleted; the job's own status still has the metrics
