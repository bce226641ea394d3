"""Which reports a node may make: only about objects routed to it, and only in its own role.

A node's credential says who it is (:mod:`gm.identity`); this module says what it may report,
as Kubernetes' NodeRestriction does for kubelets. Two checks, both against the hub's routing
table (the placement module decides routes for the hub and the controllers alike, so a node
is asked about exactly what it was sent):

1. the report's object is routed to the sending node;
2. the node reports in a role it holds for that object:

   - JointInferenceService: the counters come from the edge worker's node;
   - FederatedLearningJob: ``phase: train`` from the node of the training worker it names
     (``<job>-train-<i>``), ``phase: aggregation`` from the aggregator's node;
   - IncrementalLearningJob, LifelongLearningJob: an LC decision (``source: lc``) from the node of
     the job's Dataset (only its LC sees the samples); a worker report from the node of the worker
     of its phase (``train``, ``eval``; ``inference`` and ``deploy`` from the inference worker's);
   - Dataset (routed to its own node only) and Model (each node files its own report): the route.

:func:`refusal` returns the reason a report is refused, '' when it may be applied. Pure; the
caller holds the router's lock.
"""

from __future__ import annotations

from typing import Any

from sedna.controlplane import il_protocol as ilp
from sedna.controlplane import kinds
from sedna.controlplane.edgehub import Report

from .routing import Router

STAGED = {kinds.INCREMENTAL_LEARNING_JOB.key, kinds.LIFELONG_LEARNING_JOB.key}
STAGE_WORKER = {"train": "train", "eval": "eval", "inference": "inference", "deploy": "inference"}


def refusal(router: Router, node: str, report: Report) -> str:
    """Why ``node`` may not make ``report`` ('' when it may)."""
    key = report.key
    if node not in router.routes.get(key, frozenset()):
        return f"{key} is not routed to node {node!r}: a node reports only about objects the GM sent it"
    obj = router.objects.get(key)
    if obj is None:  # pragma: no cover - routed keys always have their object
        return ""
    workers = router.workers(key)
    payload = report.payload
    if key.kind == kinds.JOINT_INFERENCE_SERVICE.key:
        return _role(node, workers.get("edge", ""), "joint inference counters", "the edge worker's")
    if key.kind == kinds.FEDERATED_LEARNING_JOB.key:
        return _federated(node, key.name, payload, workers)
    if key.kind in STAGED:
        if payload.get("source") == ilp.LC_SOURCE:
            dataset = _dataset(obj)
            return _role(node, router.dataset_node(key.namespace, dataset), "an LC decision",
                         f"Dataset {dataset!r}'s")
        phase = str(payload.get("phase") or "").lower()
        if phase in STAGE_WORKER:
            return _role(node, workers.get(STAGE_WORKER[phase], ""), f"a {phase} report",
                         f"the {STAGE_WORKER[phase]} worker's")
    return ""


def _role(node: str, owner: str, what: str, whose: str) -> str:
    if node == owner:
        return ""
    if not owner:
        return f"{what} comes from {whose} node, which the GM does not know (the template names no node)"
    return f"{what} comes from {whose} node {owner!r}, not from {node!r}"


def _federated(node: str, job: str, payload: dict[str, Any], workers: dict[str, str]) -> str:
    phase = str(payload.get("phase") or "").lower()
    if phase == "aggregation":
        return _role(node, workers.get("aggregation", ""), "an aggregation report", "the aggregator's")
    if phase != "train":
        return ""
    worker = str(payload.get("worker") or "")
    index = worker.removeprefix(f"{job}-train-") if worker.startswith(f"{job}-train-") else ""
    if not index.isdigit() or str(int(index)) != index or f"train-{index}" not in workers:
        return f"worker {worker!r} is not a training worker of job {job!r}"
    return _role(node, workers[f"train-{index}"], f"a report of {worker}", "that worker's")


def _dataset(obj: dict[str, Any]) -> str:
    dataset = (obj.get("spec") or {}).get("dataset")
    name = dataset.get("name") if isinstance(dataset, dict) else None
    return name if isinstance(name, str) else ""
