"""Building and applying worker objects (Deployments, Services) for any Sedna kind.

The helpers here give every child the labels ``<kind>.sedna.io/{name,uid,worker-type}``
and a controller owner reference (Kubernetes' garbage collector and the local store
cascade deletes through it), merge the worker env into every container without
overriding a user's own value, and apply a desired child idempotently: create it when
missing, update it in place when the hash of what we want changed, leave it alone
otherwise. The hash lives in the ``sedna.io/spec-hash`` annotation, so defaults an API
server adds never cause an update loop.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from gm.cluster.interface import AlreadyExists, Cluster, Conflict, Kind, Obj, kind_of
from gm.runtime.caching import Cache

HASH_ANNOTATION = "sedna.io/spec-hash"
EnvVar = dict[str, Any]


def worker_labels(kind: Kind, owner: Obj, worker_type: str) -> dict[str, str]:
    """The three labels every worker object of ``owner`` carries."""
    meta = owner["metadata"]
    prefix = kind.label_prefix
    return {f"{prefix}/name": meta["name"], f"{prefix}/uid": meta["uid"], f"{prefix}/worker-type": worker_type}


def owner_reference(kind: Kind, owner: Obj) -> dict[str, Any]:
    """A controller owner reference to ``owner``."""
    meta = owner["metadata"]
    return {"apiVersion": kind.api_version, "kind": kind.kind, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def merge_env(containers: Sequence[dict[str, Any]], env: Sequence[EnvVar]) -> list[str]:
    """Append ``env`` to every container in place, keeping any same-named user value.

    Returns the sorted names a user value was kept for (user wins, as in Sedna).
    """
    kept: set[str] = set()
    for container in containers:
        current = container.setdefault("env", [])
        have = {item.get("name") for item in current}
        for item in env:
            if item["name"] in have:
                kept.add(item["name"])
            else:
                current.append(json.loads(json.dumps(item)))
    return sorted(kept)


def spec_hash(value: Any) -> str:
    """A short stable hash of a JSON-able value."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def with_hash(obj: Obj) -> Obj:
    """``obj`` with the hash of its spec, labels and owner in the spec-hash annotation."""
    meta = obj["metadata"]
    digest = spec_hash({"spec": obj.get("spec"), "labels": meta.get("labels"),
                        "owners": meta.get("ownerReferences")})
    meta.setdefault("annotations", {})[HASH_ANNOTATION] = digest
    return obj


def apply_child(cluster: Cluster, cache: Cache | None, desired: Obj, owner: Obj,
                events: list[tuple[str, str]] | None = None) -> tuple[Obj, str]:
    """Create or update ``desired`` (already hashed); return ``(stored object, action)``.

    ``action`` is ``created``, ``updated`` or ``unchanged``. ``events`` receives
    ``(reason, message)`` pairs for the owner's event stream.
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
    if kind.kind == "Service":  # keep what the API server allocated
        for field in ("clusterIP", "clusterIPs"):
            if current.get(field):
                spec[field] = current[field]
    return spec


def _annotation(obj: Obj, name: str) -> str | None:
    return (obj.get("metadata", {}).get("annotations") or {}).get(name)


def _controlled_by(obj: Obj, owner: Obj) -> bool:
    uid = owner["metadata"]["uid"]
    return any(ref.get("uid") == uid and ref.get("controller") for ref in obj["metadata"].get("ownerReferences") or [])


def env_value(name: str, value: str | int) -> EnvVar:
    """``{"name": name, "value": str(value)}``."""
    return {"name": name, "value": str(value)}


def env_field(name: str, field_path: str) -> EnvVar:
    """An env var from the downward API (``valueFrom.fieldRef``)."""
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": field_path}}}
