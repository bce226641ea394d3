"""The edge hub's gRPC server (grpc.aio, so a thousand node streams cost coroutines, not threads).

:func:`start_hub` lists the cluster (the routing table is complete before the first hello), starts
an event loop thread serving ``EdgeHub.Connect`` and ``EdgeHub.Join`` and the watch threads, and
returns a :class:`HubHandle`.

Authentication (``docs/identity.md``) is :class:`~gm.identity.nodes.NodeIdentity`'s: ``Join``
exchanges a bootstrap token for a node token; ``Connect`` takes ``x-sedna-node`` plus
``authorization: Bearer <node token>`` and refuses anything else with ``UNAUTHENTICATED``, a message
saying why and the reason code in the trailing metadata ``x-sedna-auth-reason`` (the LC joins
again on ``unknown-node`` or ``expired``). With mutual TLS the client certificate must also name
the node (CN or a DNS SAN). Once a stream is resynced the hub sends the node its worker key, and a
new token when its token is due for rotation (a third of its lifetime left, or the operator asked
for one); the LC's ``CredentialAck`` retires the old token. A revoked credential (its Secret or its
Node deleted) ends the node's stream at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gm.cluster.interface import Cluster
from gm.identity import IdentitySettings, JoinRefused, NodeIdentity
from sedna.common.loop_thread import LoopThread
from sedna.controlplane import edgehub as eh

from .sessions import HubCore, HubSettings, Session
from .upstream import HandlerRegistry
from .watching import Watcher

LOG = logging.getLogger(__name__)
SERVICE = "sedna.edgehub.v1.EdgeHub"
ROTATION_CHECK_SECONDS = 2.0
"""How often connected nodes are checked for a due rotation."""


@dataclass(frozen=True)
class HubTLS:
    """Serve over TLS; with ``client_ca_file`` every LC must also present a certificate it signed."""

    cert_file: str
    key_file: str
    client_ca_file: str = ""


class HubHandle:
    """A running hub: ``port`` it listens on, ``handlers`` to extend, ``registry`` of its metrics."""

    def __init__(self, port: int, core: HubCore, watcher: Watcher, loop: LoopThread, server: Any,
                 handlers: HandlerRegistry, registry: Any, identity: NodeIdentity, owns_identity: bool) -> None:
        self.port = port
        self.handlers = handlers
        self.registry = registry
        self.identity = identity
        self._core, self._watcher, self._loop, self._server = core, watcher, loop, server
        self._owns_identity = owns_identity

    def connected_nodes(self) -> list[str]:
        return sorted(node for node, s in list(self._core.sessions.items()) if s.ready and not s.closed)

    def node_sessions(self) -> dict[str, dict[str, Any]]:
        """Read-only: per node, ``connected``, ``since``, ``lastSeen``, ``lastReport`` (epoch seconds or None),
        ``reports`` (applied this session), ``pending`` / ``inflight`` downstream objects."""
        return self._core.node_sessions()

    def stop(self, grace: float = 1.0) -> None:
        """Stop serving (streams end; LCs reconnect elsewhere or later) and stop watching."""
        self._watcher.stop()
        if self._owns_identity:
            self.identity.stop()
        if self._loop.running:
            self._loop.call(self._shutdown(grace), grace + 5)
        self._loop.stop(grace + 5)

    async def _shutdown(self, grace: float) -> None:
        for task in (self._core.ticker, *list(self._core.tasks)):
            if task is not None:
                task.cancel()
        await self._server.stop(grace)


def _bearer(metadata: Mapping[str, str]) -> str:
    auth = metadata.get("authorization", "")
    return auth[7:] if auth.startswith("Bearer ") else ""


def _cert_names(context: Any) -> set[str]:
    auth = context.auth_context()
    return {v.decode(errors="replace") for key in ("x509_common_name", "x509_subject_alternative_name")
            for v in auth.get(key, ())}


class _Servicer:
    def __init__(self, core: HubCore, identity: NodeIdentity, metrics: dict[str, Any], mutual_tls: bool) -> None:
        self._core = core
        self._identity = identity
        self._metrics = metrics
        self._mutual_tls = mutual_tls

    async def _refuse(self, context: Any, node: str, exc: JoinRefused, code_name: str = "UNAUTHENTICATED",
                      what: str = "stream") -> None:
        import grpc

        self._metrics["auth"].labels(exc.reason).inc()
        LOG.warning("refused edge hub %s from %s (node %r): %s", what, context.peer(), node, exc)
        context.set_trailing_metadata(((eh.AUTH_REASON_METADATA, exc.reason),))
        await context.abort(getattr(grpc.StatusCode, code_name), str(exc))

    def _check_certificate(self, context: Any, node: str) -> None:
        if self._mutual_tls and node not in _cert_names(context):
            raise JoinRefused("certificate-mismatch", f"the client certificate does not name node {node!r} "
                                                      "(CN or DNS SAN)")

    async def Connect(self, requests: Any, context: Any) -> None:
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        node = metadata.get(eh.NODE_METADATA, "")
        try:
            verdict = self._identity.authenticate(node, _bearer(metadata))
            self._check_certificate(context, node)
        except JoinRefused as exc:
            await self._refuse(context, node, exc)
            return
        core = self._core
        session = core.attach(verdict.node)
        session.via = verdict.via
        self._metrics["connected"].inc()
        reader = asyncio.ensure_future(core.read(session, requests))
        reader.add_done_callback(lambda task: _reader_done(session, task))
        try:
            await core.write(session, context.write)
        finally:
            reader.cancel()
            core.detach(session)
            self._metrics["connected"].dec()
            LOG.info("node %s: stream ended%s", node, " (credential revoked)" if session.revoked else "")
        if session.revoked:
            await self._refuse(context, node, JoinRefused("revoked", f"the credential of node {node!r} was revoked"))

    async def Join(self, request: Any, context: Any) -> Any:
        from sedna.proto import edgehub_pb2

        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        node = metadata.get(eh.NODE_METADATA, "") or request.node
        try:
            if request.node and request.node != node:
                raise JoinRefused("node-mismatch", f"JoinRequest.node {request.node!r} is not the "
                                                   f"{eh.NODE_METADATA!r} metadata {node!r}")
            self._check_certificate(context, node)
            joined = await asyncio.to_thread(self._identity.join, node, _bearer(metadata))
        except JoinRefused as exc:
            self._metrics["joins"].labels("refused").inc()
            code = "ALREADY_EXISTS" if exc.reason == "already-joined" else "UNAUTHENTICATED"
            await self._refuse(context, node, exc, code, "join")
            raise AssertionError("unreachable: abort raises") from None
        self._metrics["joins"].labels("joined").inc()
        return edgehub_pb2.JoinResponse(node=joined.node, token=joined.token, expires=joined.expires,
                                        worker_key=joined.worker_key)

    # ---------------------------------------------------------------- credentials on the stream

    async def on_ready(self, session: Session) -> None:
        """After a resync: the node's worker key, with a new token when one is due (or it used the old one)."""
        identity = self._identity
        due = "it connected with its previous token" if session.via == "previous" else identity.rotation_due(
            session.node)
        credential = await asyncio.to_thread(identity.rotate, session.node) if due else None
        if credential is not None:
            LOG.info("node %s: sending a rotated token (%s)", session.node, due)
            self._metrics["rotations"].inc()
        elif session.via == "current" and identity.previous_pending(session.node):
            await asyncio.to_thread(identity.confirm, session.node)  # it proved it holds the new token
        session.send(credential or eh.Credential(worker_key=identity.worker_key(session.node)))

    async def on_credential_ack(self, session: Session, msg: eh.CredentialAck) -> None:
        if await asyncio.to_thread(self._identity.confirm, session.node, msg.token_sha256):
            LOG.info("node %s confirmed its new token; the previous one is retired", session.node)

    async def rotate_due(self) -> None:
        """Every few seconds: rotate the token of each connected node that is due."""
        while True:
            await asyncio.sleep(ROTATION_CHECK_SECONDS)
            for session in list(self._core.sessions.values()):
                if session.ready and not session.closed and self._identity.rotation_due(session.node):
                    await self.rotate_now(session.node)

    async def rotate_now(self, node: str) -> None:
        session = self._core.sessions.get(eh.NodeName(node))
        if session is None or not session.ready or session.closed:
            return  # rotated when it connects next
        credential = await asyncio.to_thread(self._identity.rotate, node)
        if credential is not None and not session.closed:
            self._metrics["rotations"].inc()
            session.send(credential)


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
                           "rejected, forbidden, unhandled)", ["kind", "result"], registry=registry),
        "auth": Counter("sedna_edgehub_auth_failures", "Refused streams and joins by reason", ["reason"],
                        registry=registry),
        "joins": Counter("sedna_edgehub_joins", "Join requests by result", ["result"], registry=registry),
        "rotations": Counter("sedna_edgehub_rotations", "Node tokens rotated over a live stream", registry=registry),
        "connected": Gauge("sedna_edgehub_streams", "Open node streams", registry=registry),
    }


async def _serve(core: HubCore, address: str, servicer: _Servicer, tls: HubTLS | None) -> tuple[Any, int]:
    import grpc

    from sedna.proto import edgehub_pb2

    server = grpc.aio.server(options=eh.keepalive_options(core.settings.keepalive))
    # Registered by hand (not edgehub_pb2_grpc) so responses are bytes written as they are: the
    # hub encodes each message once (see eh.batch_bytes), gRPC must not serialise it again.
    handlers = {
        "Connect": grpc.stream_stream_rpc_method_handler(
            servicer.Connect, request_deserializer=edgehub_pb2.UpMessage.FromString, response_serializer=bytes),
        "Join": grpc.unary_unary_rpc_method_handler(
            servicer.Join, request_deserializer=edgehub_pb2.JoinRequest.FromString,
            response_serializer=edgehub_pb2.JoinResponse.SerializeToString),
    }
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
    core.spawn(servicer.rotate_due())
    return server, port


def start_hub(cluster: Cluster, host: str, port: int, tokens: Mapping[str, str] | None = None,
              tls: HubTLS | None = None, *, handlers: HandlerRegistry | None = None,
              settings: HubSettings | None = None, identity: NodeIdentity | None = None) -> HubHandle:
    """Start the edge hub on ``host:port`` (0 picks a free port) and return its handle.

    Parameters
    ----------
    cluster:
        Where objects are watched and status is written.
    tokens:
        Pre-shared ``node name -> token`` pairs, for a hub without ``identity`` (tests, benchmarks).
    tls:
        Serve TLS (mTLS with ``client_ca_file``); None serves plain gRPC (keep it on 127.0.0.1).
    handlers:
        Upstream handlers; default :meth:`HandlerRegistry.default`. Extend later via ``handle.handlers``.
    identity:
        Who the nodes are (started by the caller); default: one with the pre-shared ``tokens`` and no
        bootstrap tokens, started and stopped with the hub.
    """
    owns_identity = identity is None
    if identity is None:
        identity = NodeIdentity(cluster, IdentitySettings(preshared=dict(tokens or {})))
        identity.start()
    elif tokens:
        raise ValueError("give pre-shared tokens to the NodeIdentity (IdentitySettings.preshared), not to start_hub")
    handlers = handlers or HandlerRegistry.default()
    registry, metrics = _metrics()
    core = HubCore(cluster, handlers, settings or HubSettings(),
                   lambda kind, result: metrics["reports"].labels(kind, result).inc())
    servicer = _Servicer(core, identity, metrics, bool(tls and tls.client_ca_file))
    core.on_ready, core.on_credential_ack = servicer.on_ready, servicer.on_credential_ack
    watcher = Watcher(cluster, core.apply_event, core.forget)
    watcher.sync()
    loop = LoopThread("edge-hub")
    server, bound = loop.start(lambda: _serve(core, f"{host}:{port}", servicer, tls), timeout=30)
    identity.on_revoked.append(lambda node: _in_loop(core, core.revoke, node))
    identity.on_rotation_requested.append(lambda node: _in_loop(core, lambda n: core.spawn(servicer.rotate_now(n)),
                                                                node))
    watcher.start()
    LOG.info("edge hub listening on %s:%d (%s; %d issued node credentials, %d pre-shared tokens)", host, bound,
             "mutual TLS" if tls and tls.client_ca_file else "TLS" if tls else "plaintext",
             len(identity.records()), len(identity.settings.preshared))
    return HubHandle(bound, core, watcher, loop, server, handlers, registry, identity, owns_identity)


def _in_loop(core: HubCore, fn: Any, node: str) -> None:
    if core.loop is not None and not core.loop.is_closed():
        core.loop.call_soon_threadsafe(fn, node)


__all__ = ["HubHandle", "HubSettings", "HubTLS", "start_hub"]
