"""Chunk messages framed by hand: one copy per chunk instead of three, on both ends.

A weight chunk is the bulk of every round (a 1M-parameter model is 4 chunks per client per
direction). Built as protobuf objects, each chunk is copied into ``bytes``, into the message
and again by ``SerializeToString``, and parsed back into a message before its bytes are
copied into place. Here a chunk is written directly as its protobuf encoding
(``ServerMessage{chunk: Chunk{data}}`` / ``ClientMessage{chunk: ...}``: tag, length, ``0x0A``,
length, data) with a single ``join`` over memoryviews of the tensors, and read back as a
:class:`WireChunk` whose ``data`` is a memoryview into the received buffer. The bytes on the
wire are exactly what protobuf produces, so a peer using the generated stubs interoperates;
any message that is not a canonically encoded chunk is parsed by protobuf as before.

:func:`service_handler` registers the servicer with these (de)serializers and
:func:`join_method` gives the client the matching callable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc

from sedna.proto import federated_pb2 as pb

SERVICE = "sedna.federated.v1.FederatedLearning"
JOIN = f"/{SERVICE}/Join"
SERVER_CHUNK_TAG = (8 << 3) | 2  # ServerMessage.chunk = 8, length-delimited
CLIENT_CHUNK_TAG = (6 << 3) | 2  # ClientMessage.chunk = 6
_DATA_TAG = (1 << 3) | 2  # Chunk.data = 1


class WireChunk:
    """A received chunk: ``data`` is a memoryview into the message buffer (no copy)."""

    __slots__ = ("data",)

    def __init__(self, data: memoryview) -> None:
        self.data = data


class Framed:
    """Chunk messages framed once and sent to every client of a round (no per-client copy)."""

    __slots__ = ("frames",)

    def __init__(self, frames: list[bytes]) -> None:
        self.frames = frames


SHARE_LIMIT = 256 << 20
"""Models up to this size are framed once per round and shared; larger ones are framed per client."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while pos < len(buf) and shift < 64:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    return -1, pos


def pieces(views: list[memoryview], chunk_size: int) -> Iterator[list[memoryview]]:
    """The concatenated tensor bytes cut into ``chunk_size`` pieces, each a list of views (no copy)."""
    pending: list[memoryview] = []
    pending_len = 0
    for view in views:
        offset = 0
        while offset < len(view):
            take = min(chunk_size - pending_len, len(view) - offset)
            pending.append(view[offset : offset + take])
            pending_len += take
            offset += take
            if pending_len == chunk_size:
                yield pending
                pending, pending_len = [], 0
    if pending:
        yield pending


def chunk_frames(views: list[memoryview], chunk_size: int, tag: int) -> Iterator[bytes]:
    """Serialized chunk messages (``tag``: :data:`SERVER_CHUNK_TAG` or :data:`CLIENT_CHUNK_TAG`)."""
    head = bytes([tag])
    for parts in pieces(views, chunk_size):
        size = sum(len(p) for p in parts)
        size_bytes = _varint(size)
        yield b"".join((head, _varint(1 + len(size_bytes) + size), bytes([_DATA_TAG]), size_bytes, *parts))


def framed_once(views: list[memoryview], total_bytes: int, chunk_size: int) -> Framed | list[memoryview]:
    """Server chunks of a broadcast, framed once when the model is at most :data:`SHARE_LIMIT`."""
    if total_bytes > SHARE_LIMIT:
        return views
    return Framed(list(chunk_frames(views, chunk_size, SERVER_CHUNK_TAG)))


def parse_chunk(raw: bytes, tag: int) -> WireChunk | None:
    """The chunk in ``raw`` when it is exactly one canonically encoded chunk message, else None."""
    if len(raw) < 4 or raw[0] != tag:
        return None
    outer, pos = _read_varint(raw, 1)
    if outer < 0 or pos + outer != len(raw) or raw[pos] != _DATA_TAG:
        return None
    size, start = _read_varint(raw, pos + 1)
    if size < 0 or start + size != len(raw):
        return None
    return WireChunk(memoryview(raw)[start:])


def deserializer(tag: int, message: Any) -> Callable[[bytes], Any]:
    """``raw -> WireChunk | message``: chunks without protobuf, everything else with it."""
    from_string = message.FromString

    def parse(raw: bytes) -> Any:
        chunk = parse_chunk(raw, tag)
        return chunk if chunk is not None else from_string(raw)

    return parse


def serialize(message: Any) -> bytes:
    """Pre-framed chunks pass through; messages are serialized."""
    return message if isinstance(message, bytes) else message.SerializeToString()


def service_handler(servicer: Any) -> grpc.GenericRpcHandler:
    """The FederatedLearning service with hand-framed chunks (replaces the generated registration)."""
    return grpc.method_handlers_generic_handler(SERVICE, {
        "Join": grpc.stream_stream_rpc_method_handler(
            servicer.Join, request_deserializer=deserializer(CLIENT_CHUNK_TAG, pb.ClientMessage),
            response_serializer=serialize),
        "Health": grpc.unary_unary_rpc_method_handler(
            servicer.Health, request_deserializer=pb.HealthRequest.FromString,
            response_serializer=pb.HealthResponse.SerializeToString),
    })


def join_method(channel: grpc.Channel) -> Any:
    """The client's ``Join`` call with hand-framed chunks."""
    return channel.stream_stream(JOIN, request_serializer=serialize,
                                 response_deserializer=deserializer(SERVER_CHUNK_TAG, pb.ServerMessage))
