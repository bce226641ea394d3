"""Event → key mapping: which reconcile keys an object change concerns.

A controller's own objects map to their own key; a child (Pod, Deployment, Service)
maps to its controlling owner's key through ``ownerReferences`` or, for Pods that a
ReplicaSet owns on Kubernetes, through the ``<kind>.sedna.io/name`` label the
controller put on the template (controller-runtime's ``EnqueueRequestForOwner``).
"""

from __future__ import annotations

from collections.abc import Callable

from gm.cluster.interface import Kind, Obj
from gm.runtime.outcomes import NamespacedName

Mapper = Callable[[Obj], list[NamespacedName]]


def own_key(obj: Obj) -> list[NamespacedName]:
    """The object's own key."""
    meta = obj.get("metadata", {})
    return [NamespacedName(meta.get("namespace") or "", meta.get("name") or "")]


def owner_keys(owner: Kind) -> Mapper:
    """Keys of the ``owner``-kind objects that control the object (ownerReferences, then labels)."""

    def mapper(obj: Obj) -> list[NamespacedName]:
        meta = obj.get("metadata", {})
        namespace = meta.get("namespace") or ""
        keys = [NamespacedName(namespace, ref["name"]) for ref in meta.get("ownerReferences") or []
                if ref.get("kind") == owner.kind and ref.get("apiVersion") == owner.api_version and ref.get("name")]
        if not keys:
            label = (meta.get("labels") or {}).get(f"{owner.label_prefix}/name")
            if label:
                keys.append(NamespacedName(namespace, label))
        return keys

    return mapper
