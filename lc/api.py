"""The worker-facing HTTP API of the LC (FastAPI).

- ``POST /sedna/workers/{worker}/info``: Sedna's report body (:mod:`sedna.controlplane.reports`), worker
  token required (401 says how to send it), replies Sedna-style ``{"Status": 200, "Message": "OK"}``;
  bad input gets 400 with a message naming the field and nothing is stored. Unlike Sedna, an
  unknown ``ownerKind`` is a 400, not a silent drop. Sedna's owner defaults (``ownerName``
  ``sedna``, ``ownerKind`` ``default``) are resolved to the resource this node runs
  (:mod:`lc.owners`) or refused with a 400 that says which env to set.
- The worker token travels as ``Authorization: Bearer <token>`` (this SDK, from ``LC_TOKEN``) or
  as HTTP Basic with the token as password: Sedna's SDK has no token setting, but its HTTP
  client sends the credentials of ``LC_SERVER=http://sedna:<token>@host:port`` that way.
- ``GET /sedna/objects``: keys and resourceVersions of the objects held (token required).
- ``GET /healthz``: liveness plus hub link, object and outbox counts. ``GET /metrics``: Prometheus.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from lc import owners
from lc.managers import ReportHandler
from lc.store import Store
from sedna.controlplane import reports
from sedna.controlplane.errors import BadReport

UNAUTHORIZED = ("missing or wrong bearer token: set the worker's env LC_TOKEN to its node's worker token (this "
                "SDK sends 'Authorization: Bearer <token>'), or for a Sedna image put the token in LC_SERVER as "
                "http://sedna:<token>@<host>:<port> (sent as HTTP Basic)")
"""The 401 message: what a worker must set."""


def token_matches(header: str, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``token``: ``Bearer <token>``, or Basic ``<any user>:<token>``."""
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        given = decoded.partition(":")[2]
    elif scheme.lower() == "bearer":
        given = credentials.strip()
    else:
        return False
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


def _reply(status: int, message: str) -> JSONResponse:
    return JSONResponse({"Status": status, "Message": message}, status_code=status)


def create_app(store: Store, handlers: Mapping[str, ReportHandler], worker_token: str,
               hub_connected: Callable[[], bool], registry: Any = None) -> FastAPI:
    """The LC's FastAPI app; ``registry`` is a prometheus ``CollectorRegistry`` (a private one if None)."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

    registry = registry or CollectorRegistry()
    reports_total = Counter("sedna_lc_worker_reports", "Worker reports by owner kind and result",
                            ["owner_kind", "result"], registry=registry)
    Gauge("sedna_lc_outbox_size", "Reports waiting for the GM's ack", registry=registry).set_function(
        store.outbox_size)
    Gauge("sedna_lc_hub_connected", "1 while the hub stream is up and resynced", registry=registry).set_function(
        lambda: float(hub_connected()))
    Gauge("sedna_lc_objects", "Objects held for this node", registry=registry).set_function(
        lambda: float(len(store.refs())))
    app = FastAPI(title="Sedna-py Local Controller", docs_url=None, redoc_url=None, openapi_url=None)

    def authorized(request: Request) -> bool:
        return token_matches(request.headers.get("authorization", ""), worker_token)

    @app.post("/sedna/workers/{worker}/info")
    async def worker_info(worker: str, request: Request) -> JSONResponse:
        if not authorized(request):
            reports_total.labels("", "unauthorized").inc()
            return _reply(401, UNAUTHORIZED)
        raw = await request.body()

        def accept(report: reports.WorkerReport) -> reports.WorkerReport:
            report = owners.resolve(report, handlers, store)
            handler = handlers.get(report.owner_kind)
            if handler is None:
                known = ", ".join(sorted(handlers))
                raise BadReport("ownerKind", f"{report.owner_kind!r} has no manager on this LC (known: {known})")
            handler.handle(report)
            return report

        try:
            report = await asyncio.to_thread(accept, reports.parse(worker, raw))
        except BadReport as exc:
            reports_total.labels("", "rejected").inc()
            return _reply(400, str(exc))
        reports_total.labels(report.owner_kind, "accepted").inc()
        return _reply(200, "OK")

    @app.get("/sedna/objects")
    async def objects(request: Request) -> JSONResponse:
        if not authorized(request):
            return _reply(401, "missing or wrong bearer token")
        refs = await asyncio.to_thread(store.refs)
        return JSONResponse({"objects": [{"key": str(r.key), "resourceVersion": r.resource_version} for r in refs]})

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        outbox = await asyncio.to_thread(store.outbox_size)
        return JSONResponse({"status": "ok", "hub": "connected" if hub_connected() else "disconnected",
                             "outbox": outbox})

    @app.get("/metrics")
    async def metrics() -> Response:
        body = await asyncio.to_thread(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return app
