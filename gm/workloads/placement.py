"""Where each worker of a Sedna object runs, and therefore which nodes must hold the object.

Controllers place workers with these functions and the edge hub routes objects with them
(:mod:`gm.hub.routing`), so the two cannot disagree: a worker reports to its own node's LC, and an
LC that never received the worker's object cannot vouch for the report. Pure functions of the
object, the node of each Dataset it names and the default node; no I/O.

Rules (a template's node is its ``nodeName``, else its ``kubernetes.io/hostname`` nodeSelector,
see :func:`~gm.cluster.interface.pinned_node`):

- JointInferenceService: the edge worker on its template's node; the cloud worker on its
  template's node, else the default node. A service whose edge template names no node has no
  workers at all (validation fails it), so it is routed nowhere.
- FederatedLearningJob: the aggregator on its template's node, else the default node; training
  worker ``i`` on the node of its Dataset (its data is there), whatever its template says.
- IncrementalLearningJob, LifelongLearningJob: the inference worker on the deploy template's node,
  else the Dataset's node; the train and eval workers on their template's node, else the default.
- The nodes an object is routed to: its workers' nodes and its data's nodes (a Dataset's
  ``spec.nodeName``; a learning job's Datasets, whose LC runs the job's triggers). A Model goes to
  every node of every object that names it (the hub works that out from the users' routes).

The default node is the local backend's ``cloud``; on Kubernetes it is empty, the scheduler
places such workers, and no LC can be told in advance (their objects reach only the known nodes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gm.cluster.interface import (
    DATASET,
    FEDERATED_LEARNING_JOB,
    INCREMENTAL_LEARNING_JOB,
    JOINT_INFERENCE_SERVICE,
    LIFELONG_LEARNING_JOB,
    Obj,
    pinned_node,
)

DatasetNode = Callable[[str], str]
"""The ``spec.nodeName`` of a Dataset named in the object's namespace ('' when unknown)."""

STAGE_SIDES = {"train": "trainSpec", "eval": "evalSpec"}
"""The spec field holding the template of each stage worker of a learning job."""


def get_in(obj: Any, *path: str) -> Any:
    """The value at ``path`` in nested mappings (an object's fields); None where a step is missing."""
    for part in path:
        if type(obj) is not dict and not isinstance(obj, Mapping):  # dict first: the ABC check is slow
            return None
        obj = obj.get(part)
    return obj


def str_or_empty(value: Any) -> str:
    """``value`` if it is a string, else ''."""
    return value if isinstance(value, str) else ""


def template_node(template: Any) -> str:
    """The node a Pod template pins its Pods to ('' when it leaves the choice to the scheduler)."""
    return pinned_node(get_in(template, "spec"))


def dataset_names(obj: Obj) -> list[str]:
    """The Datasets a learning job names, in spec order (FL: one per training worker)."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == FEDERATED_LEARNING_JOB.kind:
        workers = spec.get("trainingWorkers")
        return [str_or_empty(get_in(w, "dataset", "name")) for w in workers] if isinstance(workers, list) else []
    if obj.get("kind") in (INCREMENTAL_LEARNING_JOB.kind, LIFELONG_LEARNING_JOB.kind):
        return [str_or_empty(get_in(spec, "dataset", "name"))]
    return []


@dataclass(frozen=True)
class Placement:
    """The placement rules of the module docstring, with the node of workers whose template names none."""

    default_node: str = ""
    """Node of cloud-side workers whose template names none ('' on Kubernetes: the scheduler decides)."""

    # -- joint inference ----------------------------------------------------------------------------
    def ji_edge(self, spec: Any) -> str:
        """The edge worker's node."""
        return template_node(get_in(spec, "edgeWorker", "template"))

    def ji_cloud(self, spec: Any) -> str:
        """The cloud worker's node."""
        return template_node(get_in(spec, "cloudWorker", "template")) or self.default_node

    # -- federated learning -------------------------------------------------------------------------
    def fl_aggregator(self, spec: Any) -> str:
        """The aggregation worker's node."""
        return template_node(get_in(spec, "aggregationWorker", "template")) or self.default_node

    @staticmethod
    def fl_trainer(spec: Any, index: int, dataset_node: str) -> str:
        """Training worker ``index``'s node: its Dataset's node (else its template's)."""
        if dataset_node:
            return dataset_node
        workers = get_in(spec, "trainingWorkers")
        template = get_in(workers[index], "template") if isinstance(workers, list) and index < len(workers) else None
        return template_node(template)

    # -- incremental and lifelong learning ---------------------------------------------------------
    @staticmethod
    def inference(spec: Any, dataset_node: str) -> str:
        """The inference worker's node: the deploy template's, else the Dataset's."""
        return template_node(get_in(spec, "deploySpec", "template")) or dataset_node

    def stage(self, spec: Any, stage: str) -> str:
        """The ``train`` or ``eval`` worker's node."""
        return template_node(get_in(spec, STAGE_SIDES[stage.lower()], "template")) or self.default_node

    # -- any kind -----------------------------------------------------------------------------------
    def workers(self, obj: Obj, dataset_node: DatasetNode) -> dict[str, str]:
        """Each worker of ``obj`` and its node ('' when the scheduler decides); {} for kinds without workers."""
        kind, spec = obj.get("kind"), obj.get("spec") or {}
        if kind == JOINT_INFERENCE_SERVICE.kind:
            edge = self.ji_edge(spec)
            return {"edge": edge, "cloud": self.ji_cloud(spec)} if edge else {}
        if kind == FEDERATED_LEARNING_JOB.kind:
            out = {"aggregation": self.fl_aggregator(spec)}
            for i, name in enumerate(dataset_names(obj)):
                out[f"train-{i}"] = self.fl_trainer(spec, i, dataset_node(name) if name else "")
            return out
        if kind in (INCREMENTAL_LEARNING_JOB.kind, LIFELONG_LEARNING_JOB.kind):
            names = dataset_names(obj)
            home = dataset_node(names[0]) if names and names[0] else ""
            return {"inference": self.inference(spec, home), "train": self.stage(spec, "train"),
                    "eval": self.stage(spec, "eval")}
        return {}

    def nodes(self, obj: Obj, dataset_node: DatasetNode, workers: Mapping[str, str] | None = None) -> frozenset[str]:
        """Every node that must hold ``obj``: its workers' and its data's (see the module docstring).
        ``workers``: :meth:`workers` of ``obj`` when the caller has them already."""
        nodes = set((self.workers(obj, dataset_node) if workers is None else workers).values())
        if obj.get("kind") == DATASET.kind:
            nodes.add(str_or_empty(get_in(obj, "spec", "nodeName")))
        nodes |= {dataset_node(name) for name in dataset_names(obj) if name}
        nodes.discard("")
        return frozenset(nodes)
