"""A small Kubernetes-style REST API over a :class:`~gm.cluster.interface.Cluster`, for the ``sedna`` CLI.

The CLI never imports ``gm``: it speaks HTTP to this API, which the GM process serves in local
mode. Paths follow Kubernetes (``/apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}[/status]]``,
core kinds under ``/api/v1/...``), errors come back as Kubernetes ``Status`` bodies (404 NotFound,
409 AlreadyExists/Conflict, 422 Invalid with one cause per bad field, 401 Unauthorized), and every
path but ``/healthz`` requires ``Authorization: Bearer <token>``. A list with ``?watch=1`` streams changes
as Kubernetes does (:mod:`.watch_stream`). Handlers are plain functions run in
FastAPI's thread pool because the store blocks. :func:`serve_api` runs uvicorn in a background
thread (bound to 127.0.0.1 by default). Pod logs are read from ``<state_dir>/logs`` as written by
:mod:`.runtime`.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.concurrency import run_in_threadpool

from gm.cluster.interface import (
    KINDS,
    POD,
    AlreadyExists,
    Cluster,
    ClusterError,
    Conflict,
    Invalid,
    Kind,
    NotFound,
    Obj,
)
from gm.cluster.local.logs import log_path, tail
from gm.cluster.local.watch_stream import WatchStreams, is_watch
from gm.errors import StatusFailure, status_body

Validator = Callable[[Obj], list[tuple[str, str]]]


def _from_cluster_error(exc: ClusterError) -> StatusFailure:
    if isinstance(exc, NotFound):
        return StatusFailure(404, "NotFound", str(exc))
    if isinstance(exc, AlreadyExists):
        return StatusFailure(409, "AlreadyExists", str(exc))
    if isinstance(exc, Conflict):
        return StatusFailure(409, "Conflict", str(exc))
    if isinstance(exc, Invalid):
        return StatusFailure(422, "Invalid", str(exc), exc.causes or [("", str(exc))])
    return StatusFailure(500, "InternalError", str(exc))


def _kind(group: str, version: str, plural: str) -> Kind:
    for kind in KINDS:
        if (kind.group, kind.version, kind.plural) == (group, version, plural):
            return kind
    where = f"{group}/{version}" if group else version
    raise StatusFailure(404, "NotFound", f"the server could not find the requested resource {plural!r} in {where}")


def _selector(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    out: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise StatusFailure(400, "BadRequest", f"labelSelector: expected key=value[,key=value], got {text!r}")
        out[key.strip()] = value.strip().lstrip("=")
    return out


class _Handlers:
    """The verbs, independent of routing: each takes path parts and returns a JSON-able dict."""

    def __init__(self, store: Cluster, validator: Validator | None, log_dir: Path | None) -> None:
        self.store, self.validator, self.log_dir = store, validator, log_dir

    def _check(self, kind: Kind, namespace: str | None, body: Any, name: str | None = None) -> Obj:
        if not isinstance(body, dict):
            raise StatusFailure(400, "BadRequest", "the request body must be a JSON object")
        body.setdefault("apiVersion", kind.api_version)
        body.setdefault("kind", kind.kind)
        if (body["apiVersion"], body["kind"]) != (kind.api_version, kind.kind):
            raise StatusFailure(400, "BadRequest", f"body is {body['apiVersion']}/{body['kind']} but the URL names "
                                              f"{kind.api_version}/{kind.kind}")
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise StatusFailure(422, "Invalid", "metadata must be an object", [("metadata", "must be an object")])
        if kind.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise StatusFailure(400, "BadRequest", f"metadata.namespace {meta['namespace']!r} does not match the "
                                                  f"namespace {namespace!r} of the request")
            meta["namespace"] = namespace
        if name is not None and meta.get("name") not in (None, name):
            raise StatusFailure(400, "BadRequest", f"metadata.name {meta['name']!r} does not match {name!r} in the URL")
        if name is not None:
            meta["name"] = name
        if self.validator is not None:
            causes = self.validator(body)
            if causes:
                fields = ", ".join(f for f, _ in causes)
                raise StatusFailure(422, "Invalid", f"{kind.kind} {meta.get('name') or meta.get('generateName')!r} "
                                               f"is invalid: {fields}", causes)
        return body

    def list(self, kind: Kind, namespace: str | None, labels: str | None, involved_uid: str | None = None) -> Obj:
        lister = getattr(self.store, "list_with_version", None)
        if lister is not None:
            items, rv = lister(kind, namespace, _selector(labels))
        else:
            items, rv = self.store.list(kind, namespace, _selector(labels)), ""
        if involved_uid:
            items = [i for i in items if (i.get("involvedObject") or {}).get("uid") == involved_uid]
        return {"apiVersion": kind.api_version, "kind": f"{kind.kind}List", "metadata": {"resourceVersion": rv},
                "items": items}

    def create(self, kind: Kind, namespace: str | None, body: Any) -> Obj:
        return self.store.create(self._check(kind, namespace, body))

    def get(self, kind: Kind, namespace: str | None, name: str) -> Obj:
        return self.store.get(kind, namespace or "", name)

    def replace(self, kind: Kind, namespace: str | None, name: str, body: Any) -> Obj:
        return self.store.update(self._check(kind, namespace, body, name))

    def patch_status(self, kind: Kind, namespace: str | None, name: str, body: Any) -> Obj:
        if not isinstance(body, dict) or not isinstance(body.get("status"), dict):
            raise StatusFailure(422, "Invalid", "a status patch must be {\"status\": {...}}",
                           [("status", "Required value: an object")])
        return self.store.patch_status(kind, namespace or "", name, body["status"])

    def delete(self, kind: Kind, namespace: str | None, name: str) -> Obj:
        obj = self.store.get(kind, namespace or "", name)
        self.store.delete(kind, namespace or "", name)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "kind": kind.plural, "uid": obj["metadata"].get("uid")}}

    def pod_log(self, namespace: str, name: str, container: str | None, tail_lines: int | None) -> str:
        pod = self.store.get(POD, namespace, name)
        names = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
        chosen = container or (names[0] if names else "")
        if chosen not in names:
            raise StatusFailure(400, "BadRequest", f"container {chosen!r} is not valid for pod {name!r} "
                                              f"(containers: {', '.join(names) or 'none'})")
        if self.log_dir is None:
            raise StatusFailure(404, "NotFound", "this API server has no pod log directory")
        path = log_path(self.log_dir, namespace, name, chosen)
        if not path.exists():
            raise StatusFailure(404, "NotFound", f"no log yet for container {chosen!r} of pod {name!r} ({path})")
        return tail(path, tail_lines)


def create_api(store: Cluster, token: str, validator: Validator | None = None,
               log_dir: str | Path | None = None) -> FastAPI:
    """Build the FastAPI app serving ``store``; every path but ``/healthz`` needs ``Bearer <token>``.

    ``validator`` returns ``(field path, message)`` violations for a created/updated object
    (answered with 422 and nothing stored); ``log_dir`` is where :mod:`.runtime` writes pod logs.
    """
    if not token:
        raise ValueError("token: a non-empty bearer token is required to serve the API")
    handlers = _Handlers(store, validator, Path(log_dir) if log_dir is not None else None)
    registry = CollectorRegistry()
    requests = Counter("sedna_api_requests", "API requests by method and status code", ["method", "code"],
                       registry=registry)
    latency = Histogram("sedna_api_request_seconds", "API request latency", ["method"], registry=registry)
    app = FastAPI(title="sedna local API", docs_url=None, redoc_url=None, openapi_url=None)
    expected = f"Bearer {token}".encode()

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Callable[[Request], Any]) -> Any:
        started = time.perf_counter()
        path = request.url.path
        if path == "/healthz" or any(path == p or path.startswith(p + "/") for p in app.state.self_authenticated):
            response = await call_next(request)
        elif not hmac.compare_digest(request.headers.get("authorization", "").encode(), expected):
            response = JSONResponse(status_body(401, "Unauthorized", "a valid 'Authorization: Bearer <token>' "
                                                                     "header is required"), status_code=401)
        else:
            response = await call_next(request)
        requests.labels(request.method, str(response.status_code)).inc()
        latency.labels(request.method).observe(time.perf_counter() - started)
        return response

    @app.exception_handler(StatusFailure)
    async def api_error(_request: Request, exc: StatusFailure) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.code)

    @app.exception_handler(ClusterError)
    async def cluster_error(_request: Request, exc: ClusterError) -> JSONResponse:
        err = _from_cluster_error(exc)
        return JSONResponse(err.body, status_code=err.code)

    async def body_of(request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except ValueError as exc:
            raise StatusFailure(400, "BadRequest", f"the request body is not valid JSON: {exc}") from None

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok"

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    @app.get("/api/v1/namespaces/{ns}/pods/{name}/log", response_class=PlainTextResponse)
    def pod_log(ns: str, name: str, container: str | None = None, tailLines: int | None = None) -> str:
        return handlers.pod_log(ns, name, container, tailLines)

    streams = WatchStreams(store, lambda code, reason, message: status_body(code, reason, message))
    app.state.closing = streams.closing  # set by ServerHandle.stop: open watches end
    app.state.self_authenticated = []  # path prefixes of mounted apps that check credentials themselves
    for prefix in ("/api/{version}", "/apis/{group}/{version}"):
        _routes(app, prefix, handlers, body_of, streams)
    return app


def _routes(app: FastAPI, prefix: str, h: _Handlers, body_of: Callable[[Any], Any], streams: WatchStreams) -> None:
    def kind_of(params: dict[str, str]) -> Kind:
        return _kind(params.get("group", ""), params["version"], params["plural"])

    coll, item = prefix + "/namespaces/{ns}/{plural}", prefix + "/namespaces/{ns}/{plural}/{name}"

    @app.get(prefix + "/{plural}")
    async def list_all(request: Request, labelSelector: str | None = None, watch: str | None = None,
                       resourceVersion: str | None = None, timeoutSeconds: int | None = None,
                       allowWatchBookmarks: str | None = None) -> Any:
        kind = kind_of(request.path_params)
        if is_watch(watch):
            return await streams.respond(request, kind, None, _selector(labelSelector), resourceVersion,
                                         timeoutSeconds, is_watch(allowWatchBookmarks))
        return await _run(h.list, kind, None, labelSelector)

    def cluster_scoped(params: dict[str, str]) -> Kind:
        kind = kind_of(params)
        if kind.namespaced:
            raise StatusFailure(404, "NotFound", f"{kind.plural} are namespaced: use {prefix}/namespaces/{{ns}}/"
                                            f"{kind.plural}/{{name}}")
        return kind

    @app.post(prefix + "/{plural}", status_code=201)
    async def create_cluster_scoped(request: Request) -> Obj:
        body = await body_of(request)
        return await _run(h.create, cluster_scoped(request.path_params), None, body)

    @app.get(prefix + "/{plural}/{name}")
    def get_cluster_scoped(request: Request, name: str) -> Obj:
        return h.get(cluster_scoped(request.path_params), None, name)

    @app.delete(prefix + "/{plural}/{name}")
    def delete_cluster_scoped(request: Request, name: str) -> Obj:
        return h.delete(cluster_scoped(request.path_params), None, name)

    @app.get(coll)
    async def list_ns(request: Request, ns: str, labelSelector: str | None = None,
                      involvedUid: str | None = None, fieldSelector: str | None = None, watch: str | None = None,
                      resourceVersion: str | None = None, timeoutSeconds: int | None = None,
                      allowWatchBookmarks: str | None = None) -> Any:
        kind = kind_of(request.path_params)
        if is_watch(watch):
            return await streams.respond(request, kind, ns, _selector(labelSelector), resourceVersion,
                                         timeoutSeconds, is_watch(allowWatchBookmarks))
        uid = involvedUid
        if fieldSelector and fieldSelector.startswith("involvedObject.uid="):
            uid = fieldSelector.split("=", 1)[1]
        return await _run(h.list, kind, ns, labelSelector, uid)

    @app.post(coll, status_code=201)
    async def create(request: Request, ns: str) -> Obj:
        body = await body_of(request)
        return await _run(h.create, kind_of(request.path_params), ns, body)

    @app.get(item)
    def get(request: Request, ns: str, name: str) -> Obj:
        return h.get(kind_of(request.path_params), ns, name)

    @app.put(item)
    async def replace(request: Request, ns: str, name: str) -> Obj:
        body = await body_of(request)
        return await _run(h.replace, kind_of(request.path_params), ns, name, body)

    @app.delete(item)
    def delete(request: Request, ns: str, name: str) -> Obj:
        return h.delete(kind_of(request.path_params), ns, name)

    @app.patch(item + "/status")
    async def patch_status(request: Request, ns: str, name: str) -> Obj:
        body = await body_of(request)
        return await _run(h.patch_status, kind_of(request.path_params), ns, name, body)


def mount_self_authenticated(api: FastAPI, prefix: str, app: Any) -> None:
    """Serve ``app`` under ``prefix`` of the API; it checks credentials itself (the dashboard's login)."""
    api.mount(prefix, app)
    api.state.self_authenticated.append(prefix)


async def _run(fn: Callable[..., Obj], *args: Any) -> Obj:
    return await run_in_threadpool(fn, *args)


class ServerHandle:
    """A uvicorn server running in a background thread; ``port`` is the bound port."""

    def __init__(self, server: Any, thread: threading.Thread, port: int,
                 closing: threading.Event | None = None) -> None:
        self._server, self._thread, self.port, self._closing = server, thread, port, closing

    def stop(self, timeout: float = 10.0) -> None:
        """End open streams (the app's ``state.closing``), ask the server to shut down and wait for its thread."""
        if self._closing is not None:
            self._closing.set()
        self._server.should_exit = True
        self._thread.join(timeout)


def serve_api(app: Any, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0) -> ServerHandle:
    """Run ``app`` with uvicorn on ``host:port`` (0: any free port) in a daemon thread; wait until it listens.

    An app with a ``state.closing`` event (``threading.Event``) has it set on stop, so its open streams end.
    """
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"sedna-api-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the API server did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    closing = getattr(getattr(app, "state", None), "closing", None)
    return ServerHandle(server, thread, int(bound), closing if isinstance(closing, threading.Event) else None)
