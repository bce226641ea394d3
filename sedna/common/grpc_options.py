"""gRPC channel and server options, in one place for every gRPC surface of the project.

Three things are tuned: message size limits (the library's 4 MiB default would refuse a
weights header or a big tensor batch), HTTP/2 keepalive (so a peer that vanished without
closing its socket, e.g. a node that lost power, is noticed within about
``1.5 * keepalive_s`` instead of when TCP gives up minutes later), and port reuse (off, so a
second server cannot silently share a bound port, unless the caller asks for it: replicas
of one inference server share their ports on purpose, ``sedna.service.inference.replicas``).
Long-lived streams (the federated aggregation streams, the GM<->LC edge hub) use keepalive;
unary inference calls do not.

Both ends must agree on keepalive: a server refuses pings more frequent than its
``min_recv_ping_interval_without_data_ms`` with ``GOAWAY too_many_pings``, so the server side
accepts pings at half the interval clients send them.
"""

from __future__ import annotations

Options = list[tuple[str, int]]

MAX_MESSAGE_BYTES = 64 << 20
"""Default per-message limit of long-lived streams (weights travel in 1 MiB chunks below it)."""


def message_size_options(max_bytes: int = MAX_MESSAGE_BYTES) -> Options:
    """Send and receive limits of ``max_bytes`` per message."""
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be > 0, got {max_bytes!r}")
    return [("grpc.max_receive_message_length", int(max_bytes)), ("grpc.max_send_message_length", int(max_bytes))]


def keepalive_options(interval_s: float) -> Options:
    """HTTP/2 keepalive pings every ``interval_s`` seconds (at least 1 s), answered within half that.

    The same list serves channels and servers: the ``min_*`` entries only matter on the side
    that receives pings, and allow pings at half the sending interval.
    """
    ms = max(1000, int(interval_s * 1000))
    half = max(500, ms // 2)
    return [
        ("grpc.keepalive_time_ms", ms),
        ("grpc.keepalive_timeout_ms", max(1000, half)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", half),
        ("grpc.http2.min_time_between_pings_ms", half),
    ]


def channel_options(*, max_message_bytes: int = MAX_MESSAGE_BYTES, keepalive_s: float | None = None) -> Options:
    """Options of a client channel: message limits, plus keepalive when ``keepalive_s`` is given."""
    options = message_size_options(max_message_bytes)
    if keepalive_s is not None:
        options += keepalive_options(keepalive_s)
    return options


def server_options(*, max_message_bytes: int = MAX_MESSAGE_BYTES, keepalive_s: float | None = None,
                   reuse_port: bool = False) -> Options:
    """Options of a server: message limits, port sharing only with ``reuse_port``, keepalive with ``keepalive_s``."""
    return [*channel_options(max_message_bytes=max_message_bytes, keepalive_s=keepalive_s),
            ("grpc.so_reuseport", 1 if reuse_port else 0)]
