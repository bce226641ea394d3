"""Pure helpers on Kubernetes-shaped dicts shared by the local backend's modules.

Timestamps, JSON merge patch (RFC 7386), ``generateName`` suffixes, name validation,
label matching and owner-reference lookups. No I/O here: :mod:`.store` persists,
:mod:`.deployments`, :mod:`.services` and :mod:`.runtime` decide.
"""

from __future__ import annotations

import copy
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any

from gm.cluster.interface import Invalid, Obj

# Kubernetes' own alphabet for generated names: no vowels (no words), no 0/1/3 look-alikes.
SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
MAX_NAME = 253


def now() -> str:
    """The current UTC time as RFC 3339 with second precision (``2024-05-01T12:00:00Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def random_suffix(length: int = 5) -> str:
    """A random suffix such as Kubernetes appends to ``generateName``."""
    return "".join(secrets.choice(SUFFIX_ALPHABET) for _ in range(length))


def check_name(name: object, field: str = "metadata.name") -> str:
    """Return ``name`` if it is a DNS-1123 subdomain, else raise :class:`Invalid` naming ``field``."""
    if not isinstance(name, str) or not name:
        raise Invalid(f"{field}: a name is required", [(field, "Required value")])
    if len(name) > MAX_NAME or not _NAME_RE.match(name):
        msg = (f"invalid value {name!r}: must be lowercase letters, digits, '-' or '.', start and end "
               f"with a letter or digit, at most {MAX_NAME} characters")
        raise Invalid(f"{field}: {msg}", [(field, msg)])
    return name


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply a JSON merge patch (RFC 7386) to ``target``; returns a new value, inputs untouched."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def labels_match(obj: Mapping[str, Any], selector: Mapping[str, str] | None) -> bool:
    """True when every ``key: value`` of ``selector`` is among the object's labels."""
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def owner_uids(obj: Mapping[str, Any]) -> list[str]:
    """The uids named by the object's ``metadata.ownerReferences``."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [str(r["uid"]) for r in refs if isinstance(r, Mapping) and r.get("uid")]


def controller_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller"):
            return ref
    return None


def owner_reference(owner: Obj, controller: bool = True) -> Obj:
    """An ownerReference pointing at ``owner`` (as the Kubernetes garbage collector expects)."""
    meta = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"],
            "uid": meta["uid"], "controller": controller, "blockOwnerDeletion": True}
