"""Predicates that drop ``MODIFIED`` events a reconciler would not act on.

Each takes ``(old, new)`` and returns True when the change matters. They are pure
optimisations: a resync (:mod:`gm.runtime.caching`) re-delivers every object anyway,
so a wrongly dropped event delays, never loses, a reconcile.
"""

from __future__ import annotations

from typing import Any

from gm.cluster.interface import Obj


def _meta(obj: Obj) -> dict[str, Any]:
    return obj.get("metadata") or {}


def spec_or_metadata_changed(old: Obj, new: Obj) -> bool:
    """The generation, labels, annotations, owners or deletion mark changed (not only status)."""
    a, b = _meta(old), _meta(new)
    return any(a.get(k) != b.get(k) for k in ("generation", "labels", "annotations", "ownerReferences",
                                              "deletionTimestamp")) or old.get("spec") != new.get("spec")


def _pod_summary(pod: Obj) -> tuple[Any, ...]:
    status = pod.get("status") or {}
    ready = next((c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    containers = tuple((((cs.get("state") or {}).get("waiting") or {}).get("reason"), cs.get("restartCount"))
                       for cs in status.get("containerStatuses") or [])
    return status.get("phase"), ready, containers, status.get("podIP")


def pod_state_changed(old: Obj, new: Obj) -> bool:
    """Phase, readiness, a container's waiting reason or restart count, or the pod IP changed."""
    return spec_or_metadata_changed(old, new) or _pod_summary(old) != _pod_summary(new)


def _deployment_summary(dep: Obj) -> tuple[Any, ...]:
    status = dep.get("status") or {}
    failure = next((c.get("status") for c in status.get("conditions") or [] if c.get("type") == "ReplicaFailure"),
                   None)
    return status.get("readyReplicas"), failure


def deployment_state_changed(old: Obj, new: Obj) -> bool:
    """Spec/metadata, ready replicas or the ReplicaFailure condition changed."""
    return spec_or_metadata_changed(old, new) or _deployment_summary(old) != _deployment_summary(new)


def service_changed(old: Obj, new: Obj) -> bool:
    """Spec (including the allocated clusterIP) or metadata changed."""
    return spec_or_metadata_changed(old, new)
