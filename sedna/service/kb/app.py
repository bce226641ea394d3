"""The knowledge-base HTTP API (FastAPI), under Sedna's ``/knowledgebase`` prefix.

=====================================================  ===============================================
``PUT  /knowledgebase/blobs/{sha256}?format=npz``       store a file; its content must hash to ``sha256``
``GET  /knowledgebase/blobs/{sha256}``                  the file (``X-Content-SHA256`` header)
``POST /knowledgebase/update[?publish=true]``           register an index (JSON) as the next version
``POST /knowledgebase/update/status``                   Sedna's ``{"tasks": "a,b", "status": 0|1}``
``POST /knowledgebase/versions/{n}/publish``            publish version n
``GET  /knowledgebase/index[/{n}]``                     latest published (or version n); ETag ``"v<n>"``
``GET  /knowledgebase/versions``, ``GET /knowledgebase/tasks``, ``POST /knowledgebase/query``
``GET  /healthz``, ``GET /metrics``
=====================================================  ===============================================

Every route but ``/healthz`` needs ``Authorization: Bearer <token>`` when the server has one.
Bodies are bounded (``max_index_bytes`` for JSON, ``max_blob_bytes`` for files; 413 beyond);
errors are ``{"error": "<field>: <what is wrong>"}`` with 400/404/409/413/422. Blocking work
(database, hashing, format checks) runs in the thread pool.
"""

from __future__ import annotations

import hmac
import json
import tempfile
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from sedna.service.kb.errors import KBNotFoundError, KBValidationError
from sedna.service.kb.store import KnowledgeStore

PREFIX = "/knowledgebase"
OPEN_PATHS = frozenset({"/healthz"})


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def build_app(store: KnowledgeStore, *, token: str | None, max_index_bytes: int, registry: Any = None) -> FastAPI:
    """The ASGI app serving ``store``."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

    registry = registry or CollectorRegistry()
    requests = Counter("sedna_kb_requests", "KB API requests by route and status", ["route", "status"],
                       registry=registry)
    received = Counter("sedna_kb_blob_bytes", "Bytes of blobs stored", registry=registry)
    Gauge("sedna_kb_latest_published_version", "Latest published index version (0: none)",
          registry=registry).set_function(lambda: float(store.latest_published() or 0))
    app = FastAPI(title="Sedna-py knowledge base", docs_url=None, redoc_url=None, openapi_url=None)
    expected = f"Bearer {token}".encode() if token else None

    @app.middleware("http")
    async def auth_and_count(request: Request, call_next: Callable[..., Any]) -> Any:
        route = request.url.path.split("/")[2] if request.url.path.startswith(PREFIX + "/") else request.url.path
        if expected is not None and request.url.path not in OPEN_PATHS:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                requests.labels(route, "401").inc()
                message = "missing or wrong bearer token (send 'Authorization: Bearer <KB token>')"
                return JSONResponse({"error": message}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        response = await call_next(request)
        requests.labels(route, str(response.status_code)).inc()
        return response

    async def run(func: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(func, *args)

    def failed(exc: Exception) -> JSONResponse:
        if isinstance(exc, KBValidationError):
            return _error(exc.status, str(exc))
        if isinstance(exc, KBNotFoundError):
            return _error(404, str(exc))
        raise exc

    async def read_json(request: Request) -> Any:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_index_bytes:
            raise KBValidationError("body", f"{declared} bytes exceed the limit of {max_index_bytes}", 413)
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > max_index_bytes:
                raise KBValidationError("body", f"more than the limit of {max_index_bytes} bytes", 413)
            chunks.append(chunk)
        try:
            return json.loads(b"".join(chunks) or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise KBValidationError("body", f"is not valid JSON ({exc})", 400) from None

    @app.get("/healthz")
    async def healthz() -> Any:
        latest = await run(store.latest_published)
        return {"status": "ok", "latestPublishedVersion": latest}

    @app.get("/metrics")
    async def metrics() -> Any:
        body = await run(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.put(PREFIX + "/blobs/{sha256}")
    async def put_blob(sha256: str, request: Request, format: str = "npz") -> Any:
        limit = store.blobs.max_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _error(413, f"blob: {declared} bytes exceed the limit of {limit}")
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
            total = 0
            async for chunk in request.stream():
                total += len(chunk)
                if total > limit:
                    return _error(413, f"blob: more than the limit of {limit} bytes")
                spool.write(chunk)
            spool.seek(0)

            def save() -> dict[str, Any]:
                ref = store.blobs.put_stream(iter(lambda: spool.read(1024 * 1024), b""), format, expected=sha256)
                store.record_blob(ref)
                return ref

            try:
                ref = await run(save)
            except (KBValidationError, KBNotFoundError) as exc:
                return failed(exc)
        received.inc(ref["size"])
        return JSONResponse(ref, status_code=201)

    @app.get(PREFIX + "/blobs/{sha256}")
    async def get_blob(sha256: str) -> Any:
        try:
            path = store.blobs.open(sha256)
        except (KBValidationError, KBNotFoundError) as exc:
            return failed(exc)
        return FileResponse(path, media_type="application/octet-stream", headers={"X-Content-SHA256": sha256})

    @app.post(PREFIX + "/update")
    async def update(request: Request, publish: bool = False) -> Any:
        try:
            doc = await read_json(request)
            version = await run(lambda: store.register(doc, publish=publish))
        except (KBValidationError, KBNotFoundError) as exc:
            return failed(exc)
        return JSONResponse({"version": version, "published": publish, "url": f"{PREFIX}/index/{version}"},
                            status_code=201)

    @app.post(PREFIX + "/update/status")
    async def update_status(request: Request) -> Any:
        try:
            body = await read_json(request)
            if not isinstance(body, dict):
                raise KBValidationError("body", "must be a JSON object {\"tasks\": \"a,b\", \"status\": 0|1}", 400)
            tasks = body.get("tasks", "")
            names = [t.strip() for t in tasks.split(",") if t.strip()] if isinstance(tasks, str) else tasks
            if not isinstance(names, list) or not all(isinstance(t, str) for t in names):
                raise KBValidationError("tasks", "must be a comma-separated string or a list of task names", 400)
            status = body.get("status")
            if status not in (0, 1, True, False):
                raise KBValidationError("status", f"must be 0 or 1, got {status!r}", 400)
            version = body.get("version")
            if version is not None and not isinstance(version, int):
                raise KBValidationError("version", f"must be an integer, got {version!r}", 400)
            publish = body.get("publish")
            new = await run(lambda: store.update_status(names, int(status), version, publish))
        except (KBValidationError, KBNotFoundError) as exc:
            return failed(exc)
        return {"version": new, "url": f"{PREFIX}/index/{new}"}

    @app.post(PREFIX + "/versions/{version}/publish")
    async def publish_version(version: int) -> Any:
        try:
            await run(store.publish, version)
        except KBNotFoundError as exc:
            return failed(exc)
        return {"version": version, "published": True}

    @app.get(PREFIX + "/index")
    @app.get(PREFIX + "/index/{version}")
    async def index(request: Request, version: int | None = None) -> Any:
        try:
            doc = await run(store.get, version)
        except KBNotFoundError as exc:
            return failed(exc)
        etag = f'"v{doc["version"]}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        return JSONResponse(doc, headers={"ETag": etag})

    @app.get(PREFIX + "/versions")
    async def versions() -> Any:
        return {"versions": await run(store.versions)}

    @app.get(PREFIX + "/tasks")
    @app.post(PREFIX + "/query")
    async def tasks() -> Any:
        return {"tasks": await run(store.tasks)}

    return app
