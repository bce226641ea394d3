"""A kmock Kubernetes API emulator with the semantics the kube backend relies on.

kmock 0.8's ``KubernetesEmulator`` stores objects as plain JSON and is deliberately simple;
against the kubernetes client it lacks (verified by probing it over HTTP):

- ``metadata.uid`` / ``resourceVersion`` / ``generation`` / ``creationTimestamp`` / ``namespace``
  are never set; list ``metadata.resourceVersion`` is the literal ``"..."``;
- ``generateName`` fails (HTTP 500, "More than one object matches");
- ``PUT`` (replace) is not routed at all (HTTP 404 "Endpoint Not Found");
- ``labelSelector`` is ignored by list and watch;
- the status subresource is not separate: a main-resource PATCH changes ``status`` and a
  ``/status`` PATCH may change ``spec``;
- no optimistic concurrency (stale resourceVersion accepted), no 422 validation;
- watch ignores ``resourceVersion`` (always replays every object as ADDED), never answers
  410 Gone, and ignores ``timeoutSeconds`` (the stream never ends);
- a Secret's ``stringData`` is stored as given instead of folded into ``data``.

The real API server does all of that, so this subclass of ``kmock.KubernetesScaffold`` (kmock's
HTTP server, request parsing, discovery and Status error rendering) implements it with kmock
reactions: a global resourceVersion counter, an event history that :meth:`compact` can
truncate to force 410, equality label selectors, merge patches, status subresources, and
per-resource validators that answer 422 with ``details.causes``. Tests run it on 127.0.0.1 in a
background thread (:class:`EmulatedApiServer`) and talk to it with the real kubernetes client.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import re
import secrets
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import kmock

Validator = Callable[[dict[str, Any]], list[tuple[str, str]]]
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_NO_STATUS = {"v1/events"}


def _rid(request: kmock.Request) -> str:
    res = request.resource
    assert res is not None
    return f"{res.group}/{res.version}/{res.plural}".lstrip("/")


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


def _matches(obj: dict[str, Any], selector: str | None) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, (selector or "").split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        else:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
    return True


def _fold_string_data(rid: str, obj: dict[str, Any]) -> None:
    """A Secret's ``stringData`` is written into ``data`` (base64) and never stored, as the API server does."""
    if rid == "v1/secrets" and "stringData" in obj:
        import base64

        data = obj.setdefault("data", {}) or {}
        for key, value in (obj.pop("stringData") or {}).items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data


def _error(code: int, reason: str, message: str, causes: list[dict[str, str]] | None = None) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=code, reason=reason, message=message, details={"causes": causes or []})


WATCH_POLL_SECONDS = 0.02
"""How often an open watch looks for new events."""


@attrs.define(kw_only=True)
class KubeApiEmulator(kmock.KubernetesScaffold):
    """Stateful Kubernetes API emulation: see the module docstring for what it adds to kmock."""

    validators: dict[str, Validator] = attrs.field(factory=dict)
    service_prefix: str = ""
    """Allocate each ClusterIP Service a ``clusterIP`` ``<prefix>N`` on create, as the API server does from its
    service CIDR ('' allocates none). The rig uses a loopback prefix, so an address no one translated
    still stays on this machine."""
    logs: dict[tuple[str, str, str], str] = attrs.field(factory=dict, init=False)
    """Container logs served by ``GET .../pods/{name}/log``, by ``(namespace, pod, container)``."""
    objects: dict[tuple[str, str, str], dict[str, Any]] = attrs.field(factory=dict, init=False)
    history: list[tuple[int, str, dict[str, Any]]] = attrs.field(factory=list, init=False)
    watches: list[tuple[str, str | None]] = attrs.field(factory=list, init=False)  # (resource, namespace) per request
    version: int = attrs.field(default=0, init=False)
    oldest: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.fallback[kmock.action.LIST] << self._list
        self.fallback[kmock.action.WATCH] << self._watch
        self.fallback[kmock.action.FETCH] << self._fetch
        self.fallback[kmock.action.CREATE] << self._create
        self.fallback[kmock.action.UPDATE] << self._patch
        self.fallback[kmock.action.DELETE] << self._delete
        self.fallback[kmock.method.PUT] << self._replace

    def compact(self) -> None:
        """Forget the event history: a watch from any older resourceVersion now gets 410 Gone."""
        self.history.clear()
        self.oldest = self.version

    async def _record(self, rid: str, type_: str, obj: dict[str, Any]) -> None:
        self.history.append((self.version, rid, {"type": type_, "object": copy.deepcopy(obj)}))

    def _bump(self, obj: dict[str, Any]) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)

    def _stored(self, request: kmock.Request) -> dict[str, Any]:
        obj = self.objects.get((_rid(request), request.namespace or "", request.name or ""))
        if obj is None:
            raise _error(404, "NotFound", f'{request.resource.plural} "{request.name}" not found')  # type: ignore[union-attr]
        return obj

    def _validate(self, rid: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"].get("name", "")
        causes = [] if _NAME.match(name) else [("metadata.name", f"Invalid value: {name!r}: not a DNS-1123 subdomain")]
        causes += self.validators.get(rid, lambda _: [])(obj)
        if causes:
            detail = [{"field": f, "message": m, "reason": "FieldValueInvalid"} for f, m in causes]
            raise _error(422, "Invalid", f'{obj.get("kind")} "{name}" is invalid', detail)

    async def _list(self, request: kmock.Request) -> dict[str, Any]:
        rid, selector = _rid(request), request.params.get("labelSelector")
        items = [copy.deepcopy(o) for (r, ns, _), o in sorted(self.objects.items())
                 if r == rid and request.namespace in (None, ns) and _matches(o, selector)]
        return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": str(self.version)}, "items": items}

    async def _fetch(self, request: kmock.Request) -> Any:
        obj = copy.deepcopy(self._stored(request))
        if request.subresource == "log":
            text = self.logs.get((request.namespace or "", request.name or "", request.params.get("container", "")), "")
            lines = request.params.get("tailLines")
            return ("".join(text.splitlines(keepends=True)[-int(lines):]) if lines else text).encode()
        return obj

    async def _create(self, request: kmock.Request) -> dict[str, Any]:
        rid, obj = _rid(request), copy.deepcopy(request.data)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        meta["namespace"] = request.namespace or ""
        key = (rid, meta["namespace"], meta.get("name", ""))
        if key in self.objects:
            raise _error(409, "AlreadyExists", f'{request.resource.plural} "{key[2]}" already exists')  # type: ignore[union-attr]
        if rid not in _NO_STATUS:
            obj.pop("status", None)
        _fold_string_data(rid, obj)
        if rid == "v1/services" and self.service_prefix and (obj.get("spec") or {}).get("type", "ClusterIP") == \
                "ClusterIP" and not obj["spec"].get("clusterIP"):
            taken = {o["spec"].get("clusterIP") for (r, _, _), o in self.objects.items() if r == rid}
            obj["spec"]["clusterIP"] = next(f"{self.service_prefix}{n}" for n in range(1, 250)
                                            if f"{self.service_prefix}{n}" not in taken)
        self._validate(rid, obj)
        meta.update(uid=str(uuid.uuid4()), generation=1,
                    creationTimestamp=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        self._bump(obj)
        self.objects[key] = obj
        await self._record(rid, "ADDED", obj)
        return copy.deepcopy(obj)

    async def _write(self, request: kmock.Request, new: dict[str, Any]) -> dict[str, Any]:
        rid, old = _rid(request), self._stored(request)
        if request.subresource == "status":
            new = {**old, "status": new.get("status", {})}
        elif rid not in _NO_STATUS:
            new = {**new, "status": old.get("status")} if "status" in old else {
                k: v for k, v in new.items() if k != "status"}
        meta = new["metadata"] = {**new.get("metadata", {})}
        for fixed in ("uid", "creationTimestamp", "namespace", "name", "generation"):
            meta[fixed] = old["metadata"][fixed]
        if new.get("spec") != old.get("spec"):
            meta["generation"] += 1
        _fold_string_data(rid, new)
        self._validate(rid, new)
        self._bump(new)
        self.objects[(rid, old["metadata"]["namespace"], old["metadata"]["name"])] = new
        await self._record(rid, "MODIFIED", new)
        return copy.deepcopy(new)

    async def _replace(self, request: kmock.Request) -> dict[str, Any]:
        old, body = self._stored(request), request.data or {}
        given = body.get("metadata", {}).get("resourceVersion")
        if not given:
            message = "must be specified for an update"
            raise _error(422, "Invalid", f"metadata.resourceVersion: Invalid value: 0x0: {message}",
                         [{"field": "metadata.resourceVersion", "message": message}])
        if given != old["metadata"]["resourceVersion"]:
            raise _error(409, "Conflict", "the object has been modified; please apply your changes to the latest "
                                          "version and try again")
        return await self._write(request, copy.deepcopy(body))

    async def _patch(self, request: kmock.Request) -> dict[str, Any]:
        content_type = request.headers.get("Content-Type", "")
        if not content_type.startswith("application/merge-patch+json"):
            raise _error(415, "UnsupportedMediaType", f"the emulator only does merge patches, not {content_type}")
        return await self._write(request, _merge(self._stored(request), request.data))

    async def _delete(self, request: kmock.Request) -> dict[str, Any]:
        rid, obj = _rid(request), self._stored(request)
        del self.objects[(rid, obj["metadata"]["namespace"], obj["metadata"]["name"])]
        gone = copy.deepcopy(obj)
        self._bump(gone)
        await self._record(rid, "DELETED", gone)
        return gone

    async def _watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        yield b""  # send the headers now
        rid, selector = _rid(request), request.params.get("labelSelector")
        self.watches.append((rid, request.namespace))
        deadline = asyncio.get_running_loop().time() + float(request.params.get("timeoutSeconds", 3600))
        since = request.params.get("resourceVersion")
        if since not in (None, "", "0") and int(since) < self.oldest:
            yield {"type": "ERROR", "object": {"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": 410,
                                               "reason": "Expired", "message": f"too old resource version: {since}"}}
            return
        position = int(since) if since not in (None, "", "0") else self.version
        if since in (None, "", "0"):
            for (r, ns, _), obj in sorted(self.objects.items()):
                if r == rid and request.namespace in (None, ns) and _matches(obj, selector):
                    yield {"type": "ADDED", "object": copy.deepcopy(obj)}
        while True:
            for version, r, event in [h for h in self.history if h[0] > position]:
                position = version
                obj = event["object"]
                if r == rid and request.namespace in (None, obj["metadata"]["namespace"]) and _matches(obj, selector):
                    yield event
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            # polled, not a Condition: a watch coroutine left pending when the server's loop stops is closed
            # by the garbage collector later, and a Condition's wait would then raise in whatever test runs
            await asyncio.sleep(min(WATCH_POLL_SECONDS, remaining))


class EmulatedApiServer:
    """Run a :class:`KubeApiEmulator` on 127.0.0.1 in a background event loop; a context manager."""

    def __init__(self, validators: dict[str, Validator] | None = None, service_prefix: str = "") -> None:
        self.validators = validators or {}
        self.service_prefix = service_prefix
        self.url = ""
        self.emulator: KubeApiEmulator | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._quit: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="kmock-api", daemon=True)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._quit = asyncio.Event()
        emulator = KubeApiEmulator(validators=self.validators, service_prefix=self.service_prefix)
        async with emulator, kmock.Server(emulator, host="127.0.0.1") as srv:
            self.emulator, self.url = emulator, str(srv.url).rstrip("/")
            self._ready.set()
            await self._quit.wait()

    def change_unseen(self, resource: str, namespace: str, name: str, obj: dict[str, Any] | None) -> None:
        """Replace (``obj``) or delete (``None``) an object without telling watchers, then compact the history.

        Open watch streams stay silent; their next request from an older resourceVersion gets 410 Gone.
        """
        def change() -> None:
            emulator = self.emulator
            assert emulator is not None
            key = (resource, namespace, name)
            emulator.version += 1
            if obj is None:
                del emulator.objects[key]
            else:
                stored = copy.deepcopy(obj)
                stored["metadata"]["resourceVersion"] = str(emulator.version)
                emulator.objects[key] = stored
            emulator.compact()
        self.call(change)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the emulator's event loop (its state is not thread-safe) and return its result."""
        async def run() -> Any:
            return fn()
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def __enter__(self) -> EmulatedApiServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the kmock API emulator did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._quit is not None
        self._loop.call_soon_threadsafe(self._quit.set)
        self._thread.join(10)
