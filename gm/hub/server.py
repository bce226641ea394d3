"""The edge hub's gRPC server (grpc.aio, so a thousand node streams cost coroutines, not threads).

:func:`start_hub` lists the cluster (the routing table is complete before the first hello), starts
an event loop thread serving ``EdgeHub.Connect`` and the watch threads, and returns a
:class:`HubHandle`. Each stream is authenticated from its metadata (``x-sedna-node`` plus
``authorization: Bearer <token>``, compared in constant time against ``tokens``); unknown nodes
and wrong tokens are refused with ``UNAUTHENTICATED`` and a message saying which, logged here too.
TLS (and mutual TLS when ``HubTLS.client_ca_file`` is set) is one argument away.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gm.cluster.interface import Cluster
from sedna.common.loop_thread import LoopThread
from sedna.controlplane import edgehub as eh

from .sessions import HubCore, HubSettings
from .upstream import HandlerRegistry
from .watching import Watcher

LOG = logging.getLogger(__name__)
SERVICE = "sedna.edgehub.v1.EdgeHub"


@dataclass(frozen=True)
class HubTLS:
    """Serve over TLS; with ``client_ca_file`` every LC must also present a certificate it signed."""

    cert_file: str
    key_file: str
    client_ca_file: str = ""


class HubHandle:
    """A running hub: ``port`` it listens on, ``handlers`` to extend, ``registry`` of its metrics."""

    def __init__(self, port: int, core: HubCore, watcher: Watcher, loop: LoopThread, server: Any,
                 handlers: HandlerRegistry, registry: Any) -> None:
        self.port = port
        self.handlers = handlers
        self.registry = registry
        self._core, self._watcher, self._loop, self._server = core, watcher, loop, server

    def connected_nodes(self) -> list[str]:
        return sorted(node for node, s in list(self._core.sessions.items()) if s.ready and not s.closed)

    def node_sessions(self) -> dict[str, dict[str, Any]]:
        """Read-only: per node, ``connected``, ``since``, ``lastSeen``, ``lastReport`` (epoch seconds or None),
        ``reports`` (applied this session), ``pending`` / ``inflight`` downstream objects."""
        return self._core.node_sessions()

    def stop(self, grace: float = 1.0) -> None:
        """Stop serving (streams end; LCs reconnect elsewhere or later) and stop watching."""
        self._watcher.stop()
        if self._loop.running:
            self._loop.call(self._shutdown(grace), grace + 5)
        self._loop.stop(grace + 5)

    async def _shutdown(self, grace: float) -> None:
        if self._core.ticker is not None:
            self._core.ticker.cancel()
        await self._server.stop(grace)


class _Servicer:
    def __init__(self, core: HubCore, tokens: Mapping[str, str], metrics: dict[str, Any]) -> None:
        self._core = core
        self._tokens = dict(tokens)
        self._metrics = metrics

    async def _refuse(self, context: Any, node: str, reason: str, message: str) -> None:
        import grpc

        self._metrics["auth"].labels(reason).inc()
        LOG.warning("refused edge hub stream from %s (node %r): %s", context.peer(), node, message)
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def Connect(self, requests: Any, context: Any) -> None:
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        node = metadata.get(eh.NODE_METADATA, "")
        auth = metadata.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if not node:
            await self._refuse(context, node, "no-node", f"missing {eh.NODE_METADATA!r} metadata naming the node")
        expected = self._tokens.get(node)
        if expected is None:
            await self._refuse(context, node, "unknown-node",
                               f"node {node!r} is not registered with this GM (add it to the GM's node tokens)")
        if not hmac.compare_digest(token.encode(), (expected or "").encode()):
            await self._refuse(context, node, "bad-token", f"wrong token for node {node!r}")
        core = self._core
        session = core.attach(eh.NodeName(node))
        self._metrics["connected"].inc()
        reader = asyncio.ensure_future(core.read(session, requests))
        reader.add_done_callback(lambda task: _reader_done(session, task))
        try:
            await core.write(session, context.write)
        finally:
            reader.cancel()
            core.detach(session)
            self._metrics["connected"].dec()
            LOG.info("node %s: stream ended", node)


def _reader_done(session: Any, task: asyncio.Future[None]) -> None:
    session.close()
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        LOG.error("node %s: reading the stream failed: %s: %s", session.node, type(exc).__name__, exc)


def _metrics() -> tuple[Any, dict[str, Any]]:
    from prometheus_client import CollectorRegistry, Counter, Gauge

    registry = CollectorRegistry()
    return registry, {
        "reports": Counter("sedna_edgehub_reports", "Upstream reports by kind and result (applied, duplicate, "
                           "rejected, unhandled)", ["kind", "result"], registry=registry),
        "auth": Counter("sedna_edgehub_auth_failures", "Refused streams by reason", ["reason"], registry=registry),
        "connected": Gauge("sedna_edgehub_streams", "Open node streams", registry=registry),
    }


async def _serve(core: HubCore, address: str, tokens: Mapping[str, str], tls: HubTLS | None,
                 metrics: dict[str, Any]) -> tuple[Any, int]:
    import grpc

    from sedna.proto import edgehub_pb2

    server = grpc.aio.server(options=eh.keepalive_options(core.settings.keepalive))
    # Registered by hand (not edgehub_pb2_grpc) so responses are bytes written as they are: the
    # hub encodes each message once (see eh.batch_bytes), gRPC must not serialise it again.
    handlers = {"Connect": grpc.stream_stream_rpc_method_handler(
        _Servicer(core, tokens, metrics).Connect, request_deserializer=edgehub_pb2.UpMessage.FromString,
        response_serializer=bytes)}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)
    if tls is None:
        port = server.add_insecure_port(address)
    else:
        creds = grpc.ssl_server_credentials(
            [(Path(tls.key_file).read_bytes(), Path(tls.cert_file).read_bytes())],
            root_certificates=Path(tls.client_ca_file).read_bytes() if tls.client_ca_file else None,
            require_client_auth=bool(tls.client_ca_file))
        port = server.add_secure_port(address, creds)
    if port == 0:
        raise OSError(f"edge hub could not bind {address}")
    await server.start()
    core.loop = asyncio.get_running_loop()
    core.ticker = asyncio.ensure_future(core.tick())
    return server, port


def start_hub(cluster: Cluster, host: str, port: int, tokens: Mapping[str, str], tls: HubTLS | None = None, *,
              handlers: HandlerRegistry | None = None, settings: HubSettings | None = None) -> HubHandle:
    """Start the edge hub on ``host:port`` (0 picks a free port) and return its handle.

    Parameters
    ----------
    cluster:
        Where objects are watched and status is written.
    tokens:
        ``node name -> bearer token``; any other node is refused.
    tls:
        Serve TLS (mTLS with ``client_ca_file``); None serves plain gRPC (keep it on 127.0.0.1).
    handlers:
        Upstream handlers; default :meth:`HandlerRegistry.default`. Extend later via ``handle.handlers``.
    """
    handlers = handlers or HandlerRegistry.default()
    registry, metrics = _metrics()
    core = HubCore(cluster, handlers, settings or HubSettings(),
                   lambda kind, result: metrics["reports"].labels(kind, result).inc())
    watcher = Watcher(cluster, core.apply_event, core.forget)
    watcher.sync()
    loop = LoopThread("edge-hub")
    server, bound = loop.start(lambda: _serve(core, f"{host}:{port}", tokens, tls, metrics), timeout=30)
    watcher.start()
    LOG.info("edge hub listening on %s:%d (%s, %d nodes known)", host, bound, "TLS" if tls else "plaintext",
             len(tokens))
    return HubHandle(bound, core, watcher, loop, server, handlers, registry)
