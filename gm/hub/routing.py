"""Which objects go to which edge node: a pure, in-memory routing table (no I/O, no threads).

Rules (Sedna §2.5 downstream, fixed where Sedna was wrong): an object goes to the nodes of its
workers and of its data, as :mod:`gm.workloads.placement` places them for the controllers, so a
worker's LC always holds the worker's object:

- Dataset -> ``spec.nodeName``.
- JointInferenceService -> the edge worker's node (template ``nodeName``, else its
  ``kubernetes.io/hostname`` nodeSelector; Sedna refused nodeSelector-only specs) and the cloud
  worker's node when known.
- FederatedLearningJob -> the node of every training worker's dataset (and the aggregator's node).
- IncrementalLearningJob / LifelongLearningJob -> the node of ``spec.dataset`` and of its workers.
- Model -> every node of any JI / FL / IL / LL job in its namespace that references it.

:class:`Router` keeps the latest version of every object and, per key, the nodes it is routed to.
:meth:`Router.apply` takes one watch event and returns the :class:`Change` s per node: the object
itself goes to all its nodes; objects whose *routing* depends on it (jobs on a dataset, models on a
job) are sent to nodes they gained and deleted from nodes they lost. :meth:`Router.resync` computes
the exact difference between what an LC holds and what it should hold. Callers serialise access.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gm.workloads.placement import Placement, get_in, str_or_empty
from sedna.controlplane import kinds
from sedna.controlplane.edgehub import ObjectKey, ObjectRef, key_of

Obj = dict[str, Any]
DATASET, MODEL = kinds.DATASET.key, kinds.MODEL.key
JOINT_INFERENCE, FEDERATED, INCREMENTAL, LIFELONG = (k.key for k in kinds.JOBS)
JOB_KINDS = frozenset(k.key for k in kinds.JOBS)


@dataclass(frozen=True)
class Change:
    """Send ``object`` (or a delete when None) for ``ref`` to ``node``."""

    node: str
    ref: ObjectRef
    object: Obj | None


def rv_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _content(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What an LC needs to see change: everything but status and the resourceVersion."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in ("resourceVersion", "managedFields")}
    return {**{k: v for k, v in obj.items() if k not in ("status", "metadata")}, "metadata": meta}


def _name_at(obj: Any, *path: str) -> str:
    return str_or_empty(get_in(obj, *path))


def references(obj: Obj) -> tuple[set[str], set[str]]:
    """``(dataset names, model names)`` a job references, in its own namespace."""
    kind, spec = key_of(obj).kind, obj.get("spec") or {}
    datasets: set[str] = set()
    models: set[str] = set()
    if kind == JOINT_INFERENCE:
        models |= {_name_at(spec, "edgeWorker", "model", "name"), _name_at(spec, "cloudWorker", "model", "name")}
    elif kind == FEDERATED:
        workers = spec.get("trainingWorkers")
        for worker in workers if isinstance(workers, list) else []:
            datasets.add(_name_at(worker, "dataset", "name"))
        models |= {_name_at(spec, "aggregationWorker", "model", "name"),
                   _name_at(spec, "pretrainedModel", "name")}
    elif kind in (INCREMENTAL, LIFELONG):
        datasets.add(_name_at(spec, "dataset", "name"))
        if kind == INCREMENTAL:
            models |= {_name_at(spec, "initialModel", "name"), _name_at(spec, "deploySpec", "model", "name"),
                       _name_at(spec, "evalSpec", "initialEvalModel", "name")}
    datasets.discard("")
    models.discard("")
    return datasets, models


class Router:
    """The routing table; see the module docstring.

    ``default_node`` is where cloud-side workers without a node of their own run (the controllers'
    ``ControllerSettings.default_cloud_node``; '' on Kubernetes, where the scheduler decides).
    """

    def __init__(self, default_node: str = "") -> None:
        self.placement = Placement(default_node)
        self.objects: dict[ObjectKey, Obj] = {}
        self.routes: dict[ObjectKey, frozenset[str]] = {}
        self.by_node: dict[str, set[ObjectKey]] = defaultdict(set)
        self._referrers: dict[ObjectKey, set[ObjectKey]] = defaultdict(set)  # dataset/model key -> job keys
        self._refs: dict[ObjectKey, set[ObjectKey]] = {}  # job key -> dataset/model keys
        self._versions: dict[ObjectKey, str] = {}  # resourceVersion of the last change an LC must see
        self._dataset_nodes: dict[tuple[str, str], str] = {}  # (namespace, name) -> spec.nodeName
        self._dataset_epoch = 0  # bumped whenever a Dataset's node changes: cached placements are stale
        self._placed: dict[ObjectKey, tuple[Obj, int, dict[str, str]]] = {}  # key -> (object, epoch, workers)

    def version(self, key: ObjectKey) -> str:
        """The resourceVersion LCs hold for ``key``: status-only writes (edge reports) do not bump it."""
        return self._versions.get(key, "")

    # ------------------------------------------------------------- targets

    def dataset_node(self, namespace: str, name: str) -> str:
        """The ``spec.nodeName`` of Dataset ``namespace/name`` ('' when unknown)."""
        return self._dataset_nodes.get((namespace, name), "")

    def workers(self, key: ObjectKey) -> dict[str, str]:
        """Each worker of object ``key`` and its node (:meth:`Placement.workers`); {} when unknown.

        Computed once per version of the object and of the Datasets' nodes: a job with a worker
        on each of thousands of nodes is placed once, not once per report or per route.
        """
        obj = self.objects.get(key)
        if obj is None:
            return {}
        cached = self._placed.get(key)
        if cached is not None and cached[0] is obj and cached[1] == self._dataset_epoch:
            return cached[2]
        workers = self.placement.workers(obj, lambda name: self.dataset_node(key.namespace, name))
        self._placed[key] = (obj, self._dataset_epoch, workers)
        return workers

    def targets(self, key: ObjectKey) -> frozenset[str]:
        """The nodes ``key`` belongs on now."""
        obj = self.objects.get(key)
        if obj is None:
            return frozenset()
        if key.kind == MODEL:
            nodes: set[str] = set()
            for job in self._referrers.get(key, ()):
                nodes |= self.targets(job)
            return frozenset(nodes)
        return self.placement.nodes(obj, lambda name: self.dataset_node(key.namespace, name), self.workers(key))

    # --------------------------------------------------------------- events

    def apply(self, event_type: str, obj: Obj) -> list[Change]:
        """Record one watch event; return what each node must receive."""
        key = key_of(obj)
        if key.kind == DATASET:
            self._index_dataset(key, None if event_type == "DELETED" else obj)
        if event_type == "DELETED":
            if self.objects.pop(key, None) is None:
                return []
            self._versions.pop(key, None)
            self._placed.pop(key, None)
        else:
            old = self.objects.get(key)
            if old is not None and rv_of(old) == rv_of(obj):
                return []
            self.objects[key] = obj
            if old is not None and _content(old) == _content(obj):
                return []  # a status write: not worth a message to every node
            self._versions[key] = rv_of(obj)
        affected = [key]
        if key.kind == DATASET:
            affected += sorted(self._referrers.get(key, ()))
        if key.kind in JOB_KINDS or key.kind == DATASET:
            models: set[ObjectKey] = set()
            for job in affected:
                models |= {ref for ref in self._refs.get(job, ()) if ref.kind == MODEL}
            if key.kind in JOB_KINDS:
                self._index(key)
                models |= {ref for ref in self._refs.get(key, ()) if ref.kind == MODEL}
            affected += sorted(models)
        changes: list[Change] = []
        for item in affected:
            changes += self._reroute(item, changed=item == key, deleted_rv=rv_of(obj))
        return changes

    def _index_dataset(self, key: ObjectKey, obj: Obj | None) -> None:
        node = _name_at(obj, "spec", "nodeName")  # "" for a deleted Dataset (obj None)
        slot = (key.namespace, key.name)
        if self._dataset_nodes.get(slot, "") != node:
            self._dataset_epoch += 1
        if obj is None:
            self._dataset_nodes.pop(slot, None)
        else:
            self._dataset_nodes[slot] = node

    def _index(self, job: ObjectKey) -> None:
        for ref in self._refs.pop(job, set()):
            self._referrers[ref].discard(job)
        obj = self.objects.get(job)
        if obj is None:
            return
        datasets, models = references(obj)
        refs = {ObjectKey(DATASET, job.namespace, n) for n in datasets}
        refs |= {ObjectKey(MODEL, job.namespace, n) for n in models}
        self._refs[job] = refs
        for ref in refs:
            self._referrers[ref].add(job)

    def _reroute(self, key: ObjectKey, changed: bool, deleted_rv: str) -> list[Change]:
        old, new = self.routes.get(key, frozenset()), self.targets(key)
        obj = self.objects.get(key)
        changes: list[Change] = []
        if obj is not None:
            ref = ObjectRef(key, self.version(key))
            changes += [Change(n, ref, obj) for n in sorted(new) if changed or n not in old]
        gone_rv = deleted_rv if obj is None else self.version(key)
        changes += [Change(n, ObjectRef(key, gone_rv), None) for n in sorted(old - new)]
        for n in old - new:
            self.by_node[n].discard(key)
        for n in new - old:
            self.by_node[n].add(key)
        if new:
            self.routes[key] = new
        else:
            self.routes.pop(key, None)
        return changes

    # --------------------------------------------------------------- resync

    def desired(self, node: str) -> dict[ObjectKey, Obj]:
        return {key: self.objects[key] for key in self.by_node.get(node, ())}

    def resync(self, node: str, held: Iterable[ObjectRef]) -> list[Change]:
        """Exactly the upserts and deletes that turn ``held`` into what ``node`` should hold."""
        want = self.desired(node)
        have = {ref.key: ref.resource_version for ref in held}
        changes = [Change(node, ObjectRef(key, self.version(key)), obj) for key, obj in sorted(want.items())
                   if have.get(key) != self.version(key)]
        changes += [Change(node, ObjectRef(key, rv), None) for key, rv in sorted(have.items()) if key not in want]
        return changes

    def keys_of_kind(self, kind: str) -> list[ObjectKey]:
        return [key for key in self.objects if key.kind == kind]
