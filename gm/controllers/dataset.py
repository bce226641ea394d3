"""The Dataset controller: validates the spec and reports it in ``Ready`` / ``Failed`` conditions.

Datasets are delivered to their node's LC by the edge hub, which also writes
``status.numberOfSamples`` and ``updateTime``; this controller touches only the
conditions, so the two writers never overwrite each other.
"""

from __future__ import annotations

from collections.abc import Callable

from gm.cluster.interface import DATASET, Cluster, Obj
from gm.controllers.validation import check_url
from gm.runtime import predicates
from gm.runtime.caching import Cache
from gm.runtime.mapping import own_key
from gm.runtime.outcomes import DONE, ObjectKey, Outcome
from gm.runtime.patches import StatusPatch
from gm.runtime.reconciling import Controller, Manager
from gm.settings import ControllerSettings

FORMATS = ("txt", "csv")
Check = Callable[[Obj, tuple[str, ...]], list[str]]


def problems(dataset: Obj, nodes: tuple[str, ...] = ()) -> list[str]:
    """Every problem of a Dataset's spec, each starting with the field path."""
    spec = dataset.get("spec") or {}
    out = [p for p in (check_url(spec.get("url"), "spec.url"),) if p]
    fmt = spec.get("format")
    if fmt not in FORMATS:
        out.append(f"spec.format: unsupported format {fmt!r} (use one of: {', '.join(FORMATS)})")
    node = spec.get("nodeName")
    if not node:
        out.append("spec.nodeName: required (the node whose LC watches this dataset)")
    elif nodes and node not in nodes:
        out.append(f"spec.nodeName: unknown node {node!r} (known: {', '.join(sorted(nodes))})")
    return out


class ConditionReconciler:
    """Writes ``Ready`` (valid) or ``Failed`` (with the problems) for one kind."""

    def __init__(self, cluster: Cluster, cache: Cache, check: Check, nodes: tuple[str, ...] = ()) -> None:
        self.cluster = cluster
        self.cache = cache
        self.check = check
        self.nodes = nodes

    def reconcile(self, key: ObjectKey) -> Outcome:
        obj = self.cache.get(key.namespace, key.name)
        if obj is None:
            return DONE
        meta = obj["metadata"]
        patch = StatusPatch(obj.get("status"), int(meta.get("generation") or 1))
        found = self.check(obj, self.nodes)
        if found:
            message = "; ".join(found)
            previous = patch.condition("Failed")
            patch.set_only("Failed", ("Ready", "Failed"), "InvalidSpec", message)
            if previous is None or previous.get("message") != message or previous.get("status") != "True":
                self.cluster.emit_event(obj, "InvalidSpec", message, "Warning")
        else:
            patch.set_only("Ready", ("Ready", "Failed"), "Valid", "spec is valid")
        body = patch.body()
        if body:
            self.cluster.patch_status(self.cache.kind, meta.get("namespace") or "", meta["name"], body)
        return DONE


def setup(manager: Manager, settings: ControllerSettings) -> Controller:
    """Register the Dataset controller with ``manager``."""
    cache = manager.informer(DATASET).cache
    reconciler = ConditionReconciler(manager.cluster, cache, problems, settings.nodes)
    controller = manager.add_controller("dataset", reconciler, 1)
    manager.watch(DATASET, controller, own_key, predicates.spec_or_metadata_changed)
    return controller
