"""The worker-facing HTTP API of the LC (FastAPI).

- ``POST /sedna/workers/{worker}/info``: Sedna's report body (:mod:`sedna.controlplane.reports`),
  replies Sedna-style ``{"Status": 200, "Message": "OK"}``; bad input gets 400 with a message
  naming the field and nothing is stored. Unlike Sedna, an unknown ``ownerKind`` is a 400, not a
  silent drop. Sedna's owner defaults (``ownerName`` ``sedna``, ``ownerKind`` ``default``) are
  resolved to the resource this node runs (:mod:`lc.owners`) or refused with a 400 naming the env.
- A credential travels as ``Authorization: Bearer <token>`` (this SDK, from ``LC_TOKEN``) or as
  HTTP Basic with the token as password: Sedna's SDK has no token setting, but its HTTP client
  sends the credentials of ``LC_SERVER=http://sedna:<token>@host:port`` that way.
- ``GET /sedna/objects``: keys and resourceVersions of the objects held (operator token only).
- ``GET /healthz``: liveness plus hub link, object and outbox counts. ``GET /metrics``: Prometheus.

Who may report what (``docs/identity.md``, DESIGN §7): a worker presents its own credential
(``Authorization: Bearer <LC_TOKEN>``, issued by the GM, :mod:`sedna.controlplane.credentials`),
checked against this node's worker key with no lookup. It may report only for the owner kind,
namespace, name and worker name it is bound to (403 otherwise, naming the field), and only about
an object this LC holds (403: a worker reports about work placed on its node). The operator
token may report for any object held. Without a credential a report is refused (401) unless the
LC allows unauthenticated workers (Sedna's own, which send none; off by default).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from lc import owners
from lc.managers import ReportHandler
from lc.store import Store
from sedna.controlplane import credentials, reports
from sedna.controlplane.credentials import WorkerClaims
from sedna.controlplane.edgehub import ObjectKey
from sedna.controlplane.errors import BadReport

UNAUTHORIZED = ("missing bearer token: set the worker's env LC_TOKEN to the credential the GM gave the worker (this "
                "SDK sends 'Authorization: Bearer <LC_TOKEN>'), or for a Sedna image put it in LC_SERVER as "
                "http://sedna:<token>@<host>:<port> (sent as HTTP Basic); this LC refuses unauthenticated workers "
                "unless started with --allow-unauthenticated-workers")
"""The 401 message: what a worker must set."""


def presented_token(header: str) -> str:
    """The token of an ``Authorization`` header: ``Bearer <token>``, or Basic ``<any user>:<token>`` ('' if neither)."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return value.strip() if scheme.lower() == "bearer" else ""


def _reply(status: int, message: str) -> JSONResponse:
    return JSONResponse({"Status": status, "Message": message}, status_code=status)


@dataclass(frozen=True)
class WorkerAuth:
    """How the worker API authenticates: the operator token, the worker key, and the Sedna escape hatch."""

    admin_token: str
    worker_key: Callable[[], bytes]
    """This node's current worker key (b'' before the GM sent one)."""
    allow_unauthenticated: bool = False


class _Refused(Exception):
    def __init__(self, status: int, result: str, message: str) -> None:
        super().__init__(message)
        self.status, self.result = status, result


ADMIN = "admin"
ANONYMOUS = "anonymous"
Caller = WorkerClaims | str


def _caller(request: Request, auth: WorkerAuth) -> Caller:
    """Who sent ``request``: the operator, a worker (its claims), or an unauthenticated worker."""
    header = request.headers.get("authorization", "")
    if not header:
        if auth.allow_unauthenticated:
            return ANONYMOUS
        raise _Refused(401, "unauthorized", UNAUTHORIZED)
    token = presented_token(header)
    if auth.admin_token and hmac.compare_digest(token.encode(), auth.admin_token.encode()):
        return ADMIN
    if not token.startswith(credentials.PREFIX):
        raise _Refused(401, "unauthorized", "wrong bearer token: a worker sends its own credential (LC_TOKEN)")
    key = auth.worker_key()
    if not key:
        raise _Refused(503, "unauthorized", "this LC has not received its worker key from the GM yet (it has not "
                                            "joined); retry later")
    try:
        return credentials.verify(key, token)
    except credentials.BadCredential as exc:
        raise _Refused(401, "unauthorized", f"LC_TOKEN: {exc}") from None


def create_app(store: Store, handlers: Mapping[str, ReportHandler], auth: WorkerAuth,
               hub_connected: Callable[[], bool], registry: Any = None, node: str = "") -> FastAPI:
    """The LC's FastAPI app; ``registry`` is a prometheus ``CollectorRegistry`` (a private one if None)."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

    registry = registry or CollectorRegistry()
    reports_total = Counter("sedna_lc_worker_reports", "Worker reports by owner kind and result (accepted, "
                            "rejected, unauthorized, forbidden, unknown_owner)", ["owner_kind", "result"],
                            registry=registry)
    Gauge("sedna_lc_outbox_size", "Reports waiting for the GM's ack", registry=registry).set_function(
        store.outbox_size)
    Gauge("sedna_lc_hub_connected", "1 while the hub stream is up and resynced", registry=registry).set_function(
        lambda: float(hub_connected()))
    Gauge("sedna_lc_objects", "Objects held for this node", registry=registry).set_function(
        lambda: float(len(store.refs())))
    app = FastAPI(title="Sedna-py Local Controller", docs_url=None, redoc_url=None, openapi_url=None)
    where = f"this LC (node {node!r})" if node else "this LC"

    def check(caller: Caller, report: reports.WorkerReport) -> None:
        if isinstance(caller, WorkerClaims):
            mismatch = caller.mismatch(report.owner_kind, report.namespace, report.owner_name, report.worker)
            if mismatch:
                raise _Refused(403, "forbidden", f"forbidden: {mismatch}; a worker reports only for its own owner")
        if store.get_object(ObjectKey(report.owner_kind, report.namespace, report.owner_name)) is None:
            raise _Refused(403, "unknown_owner", f"ownerName: {report.owner_kind} {report.namespace}/"
                                                 f"{report.owner_name} is not held by {where}: a worker reports only "
                                                 "about work placed on its node")

    @app.post("/sedna/workers/{worker}/info")
    async def worker_info(worker: str, request: Request) -> JSONResponse:
        owner_kind = ""
        try:
            caller = _caller(request, auth)
            raw = await request.body()
            report = await asyncio.to_thread(owners.resolve, reports.parse(worker, raw), handlers, store)
            owner_kind = report.owner_kind
            handler = handlers.get(report.owner_kind)
            if handler is None:
                known = ", ".join(sorted(handlers))
                raise BadReport("ownerKind", f"{report.owner_kind!r} has no manager on this LC (known: {known})")
            await asyncio.to_thread(check, caller, report)
            await asyncio.to_thread(handler.handle, report)
        except BadReport as exc:
            reports_total.labels(owner_kind, "rejected").inc()
            return _reply(400, str(exc))
        except _Refused as exc:
            reports_total.labels(owner_kind, exc.result).inc()
            return _reply(exc.status, str(exc))
        reports_total.labels(report.owner_kind, "accepted").inc()
        return _reply(200, "OK")

    @app.get("/sedna/objects")
    async def objects(request: Request) -> JSONResponse:
        if not auth.admin_token or not hmac.compare_digest(request.headers.get("authorization", "").encode(),
                                                           f"Bearer {auth.admin_token}".encode()):
            return _reply(401, "missing or wrong bearer token (the LC's operator token)")
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
