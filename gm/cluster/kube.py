"""The ``kube`` backend: :class:`~gm.cluster.interface.Cluster` over a real Kubernetes API server.

This is the only module of the project that imports the ``kubernetes`` client. Objects stay
plain dicts in Kubernetes JSON (camelCase, unknown fields kept): every call passes
``_preload_content=False`` and decodes the body itself instead of building client models.
Custom resources use ``CustomObjectsApi``; Pods, Services, Events and Nodes ``CoreV1Api``;
Deployments ``AppsV1Api`` (see :mod:`._kube_endpoints`). ``ApiException`` becomes the
interface's errors: 404 :class:`NotFound`, 409 :class:`AlreadyExists` (create) or
:class:`Conflict`, 400/422 :class:`Invalid` with the server's ``details.causes``.

``watch`` wraps ``kubernetes.watch.Watch`` in a loop: it resumes from the last
resourceVersion when the server ends a stream, re-lists and emits the difference when the
version is too old (410 Gone), and shuts the open response down as soon as ``stop`` is set.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from typing import Any, cast

import kubernetes.client
import kubernetes.config
from kubernetes.client.exceptions import ApiException

from gm.cluster import _kube_endpoints, _kube_watching
from gm.cluster.events import EventRecorder
from gm.cluster.interface import (
    POD,
    Conflict,
    EventType,
    Expired,
    Kind,
    Obj,
    WatchEvent,
    kind_of,
)
from sedna.common.log import get_logger

_LOG = get_logger(__name__)
_MERGE_PATCH = "application/merge-patch+json"
_Key = tuple[str, str]
_Objs = list[Obj]


class KubeCluster:
    """:class:`~gm.cluster.interface.Cluster` backed by the kubernetes client.

    Parameters
    ----------
    api_client:
        A configured ``kubernetes.client.ApiClient`` (see :meth:`from_kubeconfig`, :meth:`in_cluster`).
    watch_timeout:
        Server-side ``timeoutSeconds`` of each watch request; the watch then resumes transparently.
    component:
        ``source.component`` / ``reportingComponent`` of the Events this backend emits.
    """

    def __init__(self, api_client: kubernetes.client.ApiClient, watch_timeout: int = 300,
                 component: str = "sedna-gm") -> None:
        self.api_client = api_client
        self.watch_timeout = watch_timeout
        self.component = component
        self._custom = kubernetes.client.CustomObjectsApi(api_client)
        self._core = kubernetes.client.CoreV1Api(api_client)
        self._typed: dict[str, Any] = {"": self._core, "apps": kubernetes.client.AppsV1Api(api_client)}
        self.events = EventRecorder(self, component)
        """Writes :meth:`emit_event`'s Events; its ``window`` and clock may be replaced (tests)."""

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None, **kwargs: Any) -> KubeCluster:
        """Connect with a kubeconfig file (default ``$KUBECONFIG`` or ``~/.kube/config``)."""
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, context=context, client_configuration=configuration)
        return cls(kubernetes.client.ApiClient(configuration), **kwargs)

    @classmethod
    def in_cluster(cls, **kwargs: Any) -> KubeCluster:
        """Connect from inside a Pod with its ServiceAccount token."""
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return cls(kubernetes.client.ApiClient(configuration), **kwargs)

    @classmethod
    def auto(cls, path: str | None = None, context: str | None = None, **kwargs: Any) -> KubeCluster:
        """In-cluster config when running in a Pod (and no ``path`` is given), else a kubeconfig."""
        if path is None and context is None:
            try:
                return cls.in_cluster(**kwargs)
            except kubernetes.config.ConfigException:
                pass
        return cls.from_kubeconfig(path, context, **kwargs)

    def close(self) -> None:
        """Release the connection pool."""
        self.api_client.close()  # type: ignore[no-untyped-call]

    # -- Cluster ---------------------------------------------------------------------------------

    def get(self, kind: Kind, namespace: str, name: str) -> Obj:
        """Return the object or raise :class:`NotFound`."""
        fn, args = self._endpoint(kind).read(namespace, name)
        return self._fill(kind, self._call(kind, "get", fn, *args))

    def list(self, kind: Kind, namespace: str | None = None,
             labels: Mapping[str, str] | None = None) -> _Objs:
        """Objects of ``kind`` (every namespace when ``namespace`` is None) whose labels include ``labels``."""
        return self._list(kind, namespace, labels)[0]

    def create(self, obj: Obj) -> Obj:
        """Create ``obj``; the server sets uid, resourceVersion, generation and honours generateName."""
        kind = kind_of(obj)
        fn, args = self._endpoint(kind).create(_namespace(kind, obj), dict(obj))
        return self._fill(kind, self._call(kind, "create", fn, *args))

    def update(self, obj: Obj) -> Obj:
        """Replace metadata and spec (never status); a stale ``resourceVersion`` raises :class:`Conflict`.

        Without a ``resourceVersion`` the update is unconditional: the current one is read first
        (custom resources refuse a PUT without it), retrying if the object changes in between.
        """
        kind = kind_of(obj)
        namespace, name = _namespace(kind, obj), obj.get("metadata", {}).get("name", "")
        conditional = bool(obj.get("metadata", {}).get("resourceVersion"))
        for attempt in range(5):
            body: Obj = json.loads(json.dumps(obj))
            if not conditional:
                current = self.get(kind, namespace, name)
                body.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
            fn, args = self._endpoint(kind).replace(namespace, name, body)
            try:
                return self._fill(kind, self._call(kind, "update", fn, *args))
            except Conflict:
                if conditional or attempt == 4:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def patch_status(self, kind: Kind, namespace: str, name: str, status: Mapping[str, Any]) -> Obj:
        """JSON-merge-patch ``status`` through the status subresource."""
        fn, args = self._endpoint(kind).patch_status(namespace, name, {"status": dict(status)})
        return self._fill(kind, self._call(kind, "patch status of", fn, *args, _content_type=_MERGE_PATCH))

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        """Delete the object (dependents go with it through Kubernetes' garbage collector)."""
        fn, args = self._endpoint(kind).delete(namespace, name)
        self._call(kind, "delete", fn, *args, propagation_policy="Background")

    def watch(self, kind: Kind, namespace: str | None = None, resource_version: str | None = None,
              stop: threading.Event | None = None) -> Iterator[WatchEvent]:
        """Yield changes after ``resource_version`` (else ADDED for every object first) until ``stop`` is set.

        After a 410 Gone the watch lists again and yields the difference with what it has seen
        (ADDED / MODIFIED / DELETED), then continues from the list's resourceVersion. Objects
        deleted while expired that this watch never saw cannot be reported.
        """
        stop = stop or threading.Event()
        seen: dict[_Key, str] = {}
        if resource_version in (None, "", "0"):
            items, resource_version = self._list(kind, namespace, None)
            for obj in items:
                seen[_key(obj)] = obj["metadata"].get("resourceVersion", "")
                yield WatchEvent("ADDED", obj)
        version = resource_version
        while not stop.is_set():
            try:
                for type_, obj in _kube_watching.stream(self, kind, namespace, version, stop):
                    version = obj.get("metadata", {}).get("resourceVersion") or version
                    if type_ == "BOOKMARK":
                        continue
                    obj = self._fill(kind, obj)
                    if type_ == "DELETED":
                        seen.pop(_key(obj), None)
                    else:
                        seen[_key(obj)] = version
                    yield WatchEvent(cast(EventType, type_), obj)
            except Expired:
                items, version = self._list(kind, namespace, None)
                for event in _resync(seen, items):
                    self._fill(kind, event.object)
                    yield event
            except _kube_watching.Interrupted as exc:
                if not stop.is_set():
                    _LOG.warning("watch of %s interrupted (%s); resuming from %s", kind.plural, exc, version)
                    stop.wait(1.0)

    def pod_log(self, namespace: str, name: str, container: str, tail_lines: int | None = None) -> str:
        """The last ``tail_lines`` lines (all when None) of a Pod container's log (the ``log`` subresource)."""
        try:
            response: Any = self._core.read_namespaced_pod_log(
                name, namespace, container=container, tail_lines=tail_lines, _preload_content=False)
        except ApiException as exc:
            raise _kube_endpoints.translate(exc, POD, "read the log of", (namespace, name)) from exc
        return bytes(response.data or b"").decode("utf-8", errors="replace")

    def emit_event(self, involved: Obj, reason: str, message: str, type_: str = "Normal") -> None:
        """Record a v1 Event about ``involved``, counting repeats (:mod:`gm.cluster.events`); never raises."""
        try:
            self.events.record(involved, reason, message, type_)
        except Exception as exc:  # best effort by contract: an Event must never fail a reconcile
            meta = involved.get("metadata") or {}
            _LOG.warning("could not record event %s on %s/%s: %s", reason, meta.get("namespace"), meta.get("name"),
                         exc)

    # -- helpers ---------------------------------------------------------------------------------

    def _endpoint(self, kind: Kind) -> _kube_endpoints.Endpoint:
        if kind.group in self._typed:
            return _kube_endpoints.Endpoint(kind, self._typed[kind.group], custom=False)
        return _kube_endpoints.Endpoint(kind, self._custom, custom=True)

    def _list(self, kind: Kind, namespace: str | None, labels: Mapping[str, str] | None) -> tuple[_Objs, str]:
        fn, args = self._endpoint(kind).list(namespace)
        selector = ",".join(f"{key}={value}" for key, value in (labels or {}).items()) or None
        body = self._call(kind, "list", fn, *args, label_selector=selector)
        items = [self._fill(kind, item) for item in body.get("items") or []]
        return items, str(body.get("metadata", {}).get("resourceVersion", ""))

    def _call(self, kind: Kind, verb: str, fn: Any, *args: Any, **kwargs: Any) -> Obj:
        try:
            response = fn(*args, _preload_content=False, **kwargs)
        except ApiException as exc:
            raise _kube_endpoints.translate(exc, kind, verb, args) from exc
        except ValueError as exc:  # the typed APIs validate bodies client-side (pydantic)
            if not callable(getattr(exc, "errors", None)):
                raise
            raise _kube_endpoints.invalid_body(exc, kind, verb, args) from exc
        data = response.data
        decoded: Obj = json.loads(data) if data else {}
        return decoded

    @staticmethod
    def _fill(kind: Kind, obj: Obj) -> Obj:
        # Lists of built-in kinds omit apiVersion/kind on their items.
        obj.setdefault("apiVersion", kind.api_version)
        obj.setdefault("kind", kind.kind)
        return obj


def _namespace(kind: Kind, obj: Mapping[str, Any]) -> str:
    return (obj.get("metadata", {}).get("namespace") or "default") if kind.namespaced else ""


def _key(obj: Mapping[str, Any]) -> _Key:
    meta = obj.get("metadata", {})
    return meta.get("namespace", ""), meta.get("name", "")


def _resync(seen: dict[_Key, str], items: _Objs) -> Iterator[WatchEvent]:
    """Events that bring a watcher who saw ``seen`` up to date with ``items``; updates ``seen``."""
    current = {_key(obj): obj for obj in items}
    for key in sorted(set(seen) - set(current)):
        namespace, name = key
        del seen[key]
        yield WatchEvent("DELETED", {"metadata": {"namespace": namespace, "name": name}})
    for key, obj in sorted(current.items()):
        version = obj["metadata"].get("resourceVersion", "")
        if key not in seen:
            yield WatchEvent("ADDED", obj)
        elif seen[key] != version:
            yield WatchEvent("MODIFIED", obj)
        seen[key] = version
