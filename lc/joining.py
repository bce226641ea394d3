"""Reach the GM's edge hub: the gRPC channel (plaintext or TLS) and the join with a bootstrap token.

:func:`open_channel` is the one place the LC builds its channel to the hub, for ``Connect`` and
``Join`` alike. :func:`join` exchanges a bootstrap token for this node's credential; a refusal
raises :class:`JoinFailed` with the GM's reason code (``x-sedna-auth-reason``) and message, which
the hub client logs, naming the node, and retries after its backoff (a refusal can end: the
operator may revoke an old credential, or add a token).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lc.errors import LCError
from lc.settings import HubSettings
from sedna.controlplane import edgehub as eh


class JoinFailed(LCError):
    """The GM refused the join, or could not be reached; ``reason`` is the GM's code ('' when none)."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


def open_channel(settings: HubSettings) -> Any:
    """A gRPC channel to the hub, with TLS when ``settings.tls_ca`` is set (mTLS with a client certificate)."""
    import grpc

    options: list[tuple[str, int | str]] = [*eh.keepalive_options(settings.ping_interval * 2)]
    if not settings.tls_ca:
        return grpc.insecure_channel(settings.gm_address, options=options)
    creds = grpc.ssl_channel_credentials(
        root_certificates=Path(settings.tls_ca).read_bytes(),
        private_key=Path(settings.tls_key).read_bytes() if settings.tls_key else None,
        certificate_chain=Path(settings.tls_cert).read_bytes() if settings.tls_cert else None)
    if settings.tls_server_name:
        options.append(("grpc.ssl_target_name_override", settings.tls_server_name))
    return grpc.secure_channel(settings.gm_address, creds, options=options)


def auth_reason(exc: Any) -> str:
    """The ``x-sedna-auth-reason`` a refused call carried ('' when none)."""
    try:
        trailers = exc.trailing_metadata() or ()
    except Exception:  # not every RpcError has trailers (a channel that never connected)
        return ""
    return next((str(v) for k, v in trailers if k == eh.AUTH_REASON_METADATA), "")


def join(settings: HubSettings, bootstrap_token: str, timeout: float = 15.0) -> eh.Joined:
    """This node's credential, in exchange for ``bootstrap_token``; :class:`JoinFailed` otherwise."""
    import grpc

    from sedna.proto import edgehub_pb2
    from sedna.proto.edgehub_pb2_grpc import EdgeHubStub

    channel = open_channel(settings)
    try:
        reply = EdgeHubStub(channel).Join(  # type: ignore[no-untyped-call,unused-ignore]  # generated, untyped
            edgehub_pb2.JoinRequest(node=settings.node), timeout=timeout,
            metadata=((eh.NODE_METADATA, settings.node), ("authorization", f"Bearer {bootstrap_token}")))
    except grpc.RpcError as exc:
        reason = auth_reason(exc)
        raise JoinFailed(f"GM {settings.gm_address} refused to join node {settings.node!r}: {exc.code().name} "
                         f"{exc.details()}", reason) from None
    finally:
        channel.close()
    if reply.node != settings.node or not reply.token or not reply.worker_key:
        raise JoinFailed(f"GM {settings.gm_address} answered the join of {settings.node!r} without a credential "
                         f"for it (node {reply.node!r})")
    return eh.Joined(eh.NodeName(reply.node), reply.token, int(reply.expires), bytes(reply.worker_key))
