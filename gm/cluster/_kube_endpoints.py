"""Which kubernetes-client method serves each verb of each Kind, and what its errors mean.

Private helper of :mod:`gm.cluster.kube`. Custom resources go through ``CustomObjectsApi``
(``group, version, namespace, plural`` arguments); built-in kinds through ``CoreV1Api`` /
``AppsV1Api`` methods found by the client's naming convention (``read_namespaced_pod``,
``list_pod_for_all_namespaces``, ``patch_namespaced_deployment_status``, ``read_node``...).
Each method returns a bound callable plus its positional arguments, so :mod:`.kube` stays one
code path for every kind. This module does not import the kubernetes client: it receives the
API objects.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gm.cluster.interface import AlreadyExists, ClusterError, Conflict, Invalid, Kind, NotFound

Call = tuple[Callable[..., Any], tuple[Any, ...]]


@dataclass(frozen=True)
class Endpoint:
    """The client calls for one kind; ``api`` is a CustomObjectsApi for custom kinds, else the typed API."""

    kind: Kind
    api: Any
    custom: bool

    @property
    def _singular(self) -> str:
        return self.kind.kind.lower()

    def _typed(self, verb: str, suffix: str = "") -> Callable[..., Any]:
        scope = "namespaced_" if self.kind.namespaced else ""
        name = f"{verb}_{scope}{self._singular}{suffix}"
        method = getattr(self.api, name, None)
        if method is None:
            raise Invalid(f"{self.kind.kind} does not support {verb}{suffix.replace('_', ' ')}",
                          [("kind", f"no {name} in the kubernetes client")])
        return method  # type: ignore[no-any-return]

    def _where(self, namespace: str | None) -> tuple[Any, ...]:
        return (namespace,) if self.kind.namespaced else ()

    def _gvp(self) -> tuple[str, str]:
        return self.kind.group, self.kind.version

    def read(self, namespace: str, name: str) -> Call:
        if self.custom:
            return self.api.get_namespaced_custom_object, (*self._gvp(), namespace, self.kind.plural, name)
        return self._typed("read"), (name, *self._where(namespace))

    def list(self, namespace: str | None) -> Call:
        """The list (and watch) call; ``namespace=None`` lists every namespace."""
        if self.custom:
            if namespace is None:
                return self.api.list_cluster_custom_object, (*self._gvp(), self.kind.plural)
            return self.api.list_namespaced_custom_object, (*self._gvp(), namespace, self.kind.plural)
        if not self.kind.namespaced:
            return self._typed("list"), ()
        if namespace is None:
            return getattr(self.api, f"list_{self._singular}_for_all_namespaces"), ()
        return self._typed("list"), (namespace,)

    def create(self, namespace: str, body: dict[str, Any]) -> Call:
        if self.custom:
            return self.api.create_namespaced_custom_object, (*self._gvp(), namespace, self.kind.plural, body)
        return self._typed("create"), (*self._where(namespace), body)

    def replace(self, namespace: str, name: str, body: dict[str, Any]) -> Call:
        if self.custom:
            return self.api.replace_namespaced_custom_object, (*self._gvp(), namespace, self.kind.plural, name, body)
        return self._typed("replace"), (name, *self._where(namespace), body)

    def patch_status(self, namespace: str, name: str, body: dict[str, Any]) -> Call:
        if self.custom:
            return (self.api.patch_namespaced_custom_object_status,
                    (*self._gvp(), namespace, self.kind.plural, name, body))
        return self._typed("patch", "_status"), (name, *self._where(namespace), body)

    def delete(self, namespace: str, name: str) -> Call:
        if self.custom:
            return self.api.delete_namespaced_custom_object, (*self._gvp(), namespace, self.kind.plural, name)
        return self._typed("delete"), (name, *self._where(namespace))


def translate(exc: Any, kind: Kind, verb: str, args: tuple[Any, ...]) -> ClusterError:
    """The interface error for a kubernetes ``ApiException`` raised while doing ``verb`` on ``kind``."""
    try:
        status = json.loads(exc.body or "{}")
    except ValueError:
        status = {}
    if not isinstance(status, dict):
        status = {}
    message = status.get("message") or exc.reason or str(exc)
    what = _what(kind, verb, args)
    if exc.status == 404:
        return NotFound(f"cannot {what}: {message}")
    if exc.status == 409:
        if verb == "create" or status.get("reason") == "AlreadyExists":
            return AlreadyExists(f"cannot {what}: {message}")
        return Conflict(f"cannot {what}: {message}")
    if exc.status in (400, 422):
        causes = [(str(c.get("field", "")), str(c.get("message", c.get("reason", ""))))
                  for c in (status.get("details") or {}).get("causes") or [] if isinstance(c, dict)]
        return Invalid(f"cannot {what}: {message}", causes)
    return ClusterError(f"cannot {what}: HTTP {exc.status}: {message}")


def invalid_body(exc: Any, kind: Kind, verb: str, args: tuple[Any, ...]) -> Invalid:
    """:class:`Invalid` for a body the typed client refused before sending (a pydantic ValidationError)."""
    causes = []
    for error in exc.errors():
        loc = [part for part in error.get("loc", ()) if not (isinstance(part, int) and part == error["loc"][0])]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        causes.append((path, str(error.get("msg", ""))))
    fields = ", ".join(path for path, _ in causes)
    return Invalid(f"cannot {_what(kind, verb, args)}: invalid {kind.kind} body ({fields})", causes)


def _what(kind: Kind, verb: str, args: tuple[Any, ...]) -> str:
    names = [a for a in args if isinstance(a, str) and a not in (kind.group, kind.version, kind.plural)]
    return f"{verb} {kind.kind} {'/'.join(names)}".rstrip()
