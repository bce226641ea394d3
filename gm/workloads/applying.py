"""Applying desired worker objects idempotently: create when missing, update or recreate when changed.

Deployments and Services are updated in place (:func:`apply_child`). A Pod's spec cannot change,
so a changed Pod is deleted and created again (:func:`ensure_pod`). On Kubernetes a deleted Pod
keeps its name until its containers have stopped, and creating it again in that time fails with
``AlreadyExists``: :func:`ensure_pod` then answers :attr:`PodAction.WAITING` at once, and the
controller returns ``Outcome.requeue(TERMINATING_RETRY)`` instead of sleeping or waiting inside the
reconcile (the Pod's DELETED event would wake it as well). "Changed" means the spec-hash
annotation (:mod:`.building`) differs, plus any annotation the caller names (a job generation).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

from gm.cluster.interface import POD, SERVICE, AlreadyExists, Cluster, Conflict, Kind, NotFound, Obj, kind_of
from gm.runtime.caching import Cache
from gm.workloads.building import HASH_ANNOTATION

TERMINATING_RETRY = 0.5
"""Seconds before a reconcile that met a Pod still terminating looks again."""
Changes = list[tuple[str, str]]
"""``(reason, message)`` pairs for the owner's Events."""


class PodAction(str, Enum):
    """What :func:`ensure_pod` did."""

    UNCHANGED = "unchanged"
    CREATED = "created"
    WAITING = "waiting"
    """The previous Pod of that name is still terminating: requeue shortly."""


def _annotation(obj: Obj, name: str) -> str | None:
    value = (obj.get("metadata", {}).get("annotations") or {}).get(name)
    return value if isinstance(value, str) else None


def _same(current: Obj, desired: Obj, annotations: Sequence[str]) -> bool:
    return all(_annotation(current, a) == _annotation(desired, a) for a in (HASH_ANNOTATION, *annotations))


def terminating(obj: Obj | None) -> bool:
    """Whether ``obj`` is being deleted (a ``deletionTimestamp`` is set)."""
    return bool(obj is not None and obj.get("metadata", {}).get("deletionTimestamp"))


def get_or_none(cluster: Cluster, kind: Kind, namespace: str, name: str) -> Obj | None:
    """The object, or None when it does not exist."""
    try:
        return cluster.get(kind, namespace, name)
    except NotFound:
        return None


def delete_pod(cluster: Cluster, namespace: str, name: str) -> None:
    """Delete a Pod; one already gone is fine."""
    try:
        cluster.delete(POD, namespace, name)
    except NotFound:
        pass


def ensure_pod(cluster: Cluster, cache: Cache | None, desired: Obj, annotations: Sequence[str] = ()) -> PodAction:
    """Make the Pod ``desired`` (already hashed) exist: create it, or delete a changed one and create it again.

    ``cache`` is the Pod informer's cache (read first; None reads the cluster). ``annotations``
    must match too for an existing Pod to count as current.
    """
    meta = desired["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    current = cache.get(namespace, name) if cache is not None else get_or_none(cluster, POD, namespace, name)
    if current is not None:
        if terminating(current):
            return PodAction.WAITING
        if _same(current, desired, annotations):
            return PodAction.UNCHANGED
        delete_pod(cluster, namespace, name)
    try:
        cluster.create(desired)
    except AlreadyExists:  # our cache lags behind our own create, or the old Pod is still going away
        stored = get_or_none(cluster, POD, namespace, name)
        if stored is not None and not terminating(stored) and _same(stored, desired, annotations):
            return PodAction.UNCHANGED
        return PodAction.WAITING
    return PodAction.CREATED


def apply_child(cluster: Cluster, cache: Cache | None, desired: Obj, owner: Obj,
                events: Changes | None = None) -> tuple[Obj, str]:
    """Create or update ``desired`` (already hashed) in place; return ``(stored object, action)``.

    ``action`` is ``created``, ``updated`` or ``unchanged``. ``events`` receives ``(reason, message)``
    pairs for the owner's event stream. For Deployments and Services (a Pod goes through
    :func:`ensure_pod`).
    """
    kind = kind_of(desired)
    meta = desired["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    current = cache.get(namespace, name) if cache is not None else None
    if current is None:
        try:
            stored = cluster.create(desired)
        except AlreadyExists:  # the cache lags behind our own earlier create
            current = cluster.get(kind, namespace, name)
        else:
            if events is not None:
                events.append(("Created", f"created {kind.kind} {name}"))
            return stored, "created"
    want = meta["annotations"][HASH_ANNOTATION]
    for attempt in range(2):
        if _annotation(current, HASH_ANNOTATION) == want and _controlled_by(current, owner):
            return current, "unchanged"
        updated = copy.deepcopy(current)
        cmeta = current["metadata"]
        updated["metadata"]["labels"] = {**(cmeta.get("labels") or {}), **(meta.get("labels") or {})}
        updated["metadata"]["annotations"] = {**(cmeta.get("annotations") or {}), **meta["annotations"]}
        updated["metadata"]["ownerReferences"] = meta.get("ownerReferences") or []
        updated["spec"] = _merged_spec(kind, current.get("spec") or {}, desired.get("spec") or {})
        try:
            stored = cluster.update(updated)
            break
        except Conflict:  # the cache held an older version: read the current one and retry once
            if attempt:
                raise
            current = cluster.get(kind, namespace, name)
    if events is not None:
        events.append(("Updated", f"updated {kind.kind} {name} to the current spec"))
    return stored, "updated"


def _merged_spec(kind: Kind, current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    spec = dict(desired)
    if kind == SERVICE:  # keep what the API server allocated
        for name in ("clusterIP", "clusterIPs"):
            if current.get(name):
                spec[name] = current[name]
    return spec


def _controlled_by(obj: Obj, owner: Obj) -> bool:
    uid = owner["metadata"]["uid"]
    return any(ref.get("uid") == uid and ref.get("controller") for ref in obj["metadata"].get("ownerReferences") or [])
