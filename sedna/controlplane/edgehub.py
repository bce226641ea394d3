"""Messages of the GM <-> LC edge hub and their protobuf serde (``sedna/proto/edgehub.proto``).

The wire types stay at the edge (STYLE habit 10): GM (``gm.hub``) and LC (``lc``) speak in the
frozen dataclasses below and convert with the paired ``up_to_proto`` / ``up_from_proto`` and
``down_to_proto`` / ``down_from_proto`` functions. Decoding checks what protobuf cannot (a set
``oneof``, non-empty names, JSON object payloads) and raises
:class:`~sedna.controlplane.errors.MalformedMessage` naming the field, so a receiver can reject
one bad message and keep the stream.

Batching (history: one gRPC message per object made the GM's per-message cost dominate a
thousand-node resync): the GM encodes each downstream message once to bytes (:func:`down_bytes`)
and packs a node's pending ones into one :class:`Batch` on the wire (:func:`batch_bytes`), so an
object version fanned out to every node is serialised once; the LC answers a batch with one
:class:`ObjectAcks`. An object whose JSON is at least :data:`COMPRESS_MIN_BYTES` travels
zlib-compressed (``Upsert.encoding = "zlib"``), compressed once per version at the GM
(``bench.edge_hub`` measures both).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, NewType

from sedna.common import grpc_options
from sedna.controlplane.errors import MalformedMessage

if TYPE_CHECKING:
    from sedna.proto import edgehub_pb2

COMPRESS_MIN_BYTES = 8192
"""Objects whose JSON is at least this big are sent zlib-compressed."""
MAX_OBJECT_BYTES = 64 * 2**20
"""Largest object (decompressed JSON) a receiver accepts."""

NODE_METADATA = "x-sedna-node"
"""gRPC metadata key carrying the node name; the token goes in ``authorization: Bearer <token>``."""


NodeName = NewType("NodeName", str)
"""An edge node's name, as its LC authenticates and as the GM keys its stream, queue and marks."""
Payload = dict[str, Any]
"""A JSON object: an upstream report's payload or a downstream object."""


class ObjectKey(NamedTuple):
    """``kind/namespace/name`` with the lowercase Kind name (``dataset``, ``jointinferenceservice``)."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ObjectRef:
    key: ObjectKey
    resource_version: str


@dataclass(frozen=True)
class Hello:
    node: NodeName
    objects: list[ObjectRef] = field(default_factory=list)
    outbox_epoch: str = ""


@dataclass(frozen=True)
class ObjectAck:
    ref: ObjectRef


@dataclass(frozen=True)
class ObjectAcks:
    """Several :class:`ObjectAck` in one message (the LC's answer to a :class:`Batch`)."""

    refs: list[ObjectRef]


@dataclass(frozen=True)
class Report:
    seq: int
    key: ObjectKey
    payload: Payload


@dataclass(frozen=True)
class Ping:
    nonce: int = 0


@dataclass(frozen=True)
class Pong:
    nonce: int = 0


@dataclass(frozen=True)
class Upsert:
    ref: ObjectRef
    object: Payload


@dataclass(frozen=True)
class Delete:
    ref: ObjectRef


@dataclass(frozen=True)
class ReportAck:
    seq: int
    accepted: bool = True
    duplicate: bool = False
    reason: str = ""


@dataclass(frozen=True)
class ResyncDone:
    upserts: int = 0
    deletes: int = 0


@dataclass(frozen=True)
class Batch:
    """Downstream messages in order, received as one (never nested)."""

    messages: list[Upsert | Delete | ReportAck | ResyncDone | Ping | Pong]


UpMessage = Hello | ObjectAck | ObjectAcks | Report | Ping | Pong
DownMessage = Upsert | Delete | ReportAck | ResyncDone | Ping | Pong | Batch


def key_of(obj: Payload) -> ObjectKey:
    """The key of a Kubernetes-shaped object dict."""
    meta = obj.get("metadata") or {}
    return ObjectKey(str(obj.get("kind", "")).lower(), meta.get("namespace") or "default", meta.get("name") or "")


def encode_json(value: Payload) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def decode_json(raw: bytes, where: str, seq: int | None = None) -> Payload:
    """Parse a JSON object (never anything else: no pickle, no eval)."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedMessage(f"{where}: not valid UTF-8 JSON ({exc})", seq) from None
    if not isinstance(value, dict):
        raise MalformedMessage(f"{where}: expected a JSON object, got {type(value).__name__}", seq)
    return value


def _ref_to(pb: edgehub_pb2.ObjectRef, ref: ObjectRef) -> None:
    pb.kind, pb.namespace, pb.name = ref.key
    pb.resource_version = ref.resource_version


def _key_from(pb: edgehub_pb2.ObjectRef | edgehub_pb2.Report, where: str, seq: int | None = None) -> ObjectKey:
    if not pb.kind:
        raise MalformedMessage(f"{where}.kind: must not be empty", seq)
    if not pb.name:
        raise MalformedMessage(f"{where}.name: must not be empty", seq)
    return ObjectKey(pb.kind, pb.namespace or "default", pb.name)


def _ref_from(pb: edgehub_pb2.ObjectRef, where: str) -> ObjectRef:
    return ObjectRef(_key_from(pb, where), pb.resource_version)


def up_to_proto(msg: UpMessage) -> edgehub_pb2.UpMessage:
    """Encode an LC -> GM message."""
    from sedna.proto import edgehub_pb2  # imported on first use: importing this module stays light

    pb = edgehub_pb2.UpMessage()
    if isinstance(msg, Hello):
        pb.hello.node = msg.node
        pb.hello.outbox_epoch = msg.outbox_epoch
        for ref in msg.objects:
            _ref_to(pb.hello.objects.add(), ref)
    elif isinstance(msg, ObjectAck):
        _ref_to(pb.ack.ref, msg.ref)
    elif isinstance(msg, ObjectAcks):
        for ref in msg.refs:
            _ref_to(pb.acks.refs.add(), ref)
    elif isinstance(msg, Report):
        pb.report.seq = msg.seq
        pb.report.kind, pb.report.namespace, pb.report.name = msg.key
        pb.report.payload = encode_json(msg.payload)
    elif isinstance(msg, Ping):
        pb.ping.nonce = msg.nonce
    elif isinstance(msg, Pong):
        pb.pong.nonce = msg.nonce
    else:
        raise TypeError(f"not an upstream message: {msg!r}")
    return pb


def up_from_proto(pb: edgehub_pb2.UpMessage) -> UpMessage:
    """Decode an LC -> GM message; raise :class:`MalformedMessage` naming the bad field."""
    which = pb.WhichOneof("body")
    if which == "hello":
        if not pb.hello.node:
            raise MalformedMessage("hello.node: must not be empty")
        refs = [_ref_from(r, f"hello.objects[{i}]") for i, r in enumerate(pb.hello.objects)]
        return Hello(NodeName(pb.hello.node), refs, pb.hello.outbox_epoch)
    if which == "ack":
        return ObjectAck(_ref_from(pb.ack.ref, "ack.ref"))
    if which == "acks":
        return ObjectAcks([_ref_from(r, f"acks.refs[{i}]") for i, r in enumerate(pb.acks.refs)])
    if which == "report":
        rep = pb.report
        if rep.seq <= 0:
            raise MalformedMessage(f"report.seq: must be >= 1, got {rep.seq}")
        key = _key_from(rep, "report", rep.seq)
        return Report(rep.seq, key, decode_json(rep.payload, "report.payload", rep.seq))
    if which == "ping":
        return Ping(pb.ping.nonce)
    if which == "pong":
        return Pong(pb.pong.nonce)
    raise MalformedMessage("body: no message set (expected hello, ack, acks, report, ping or pong)")


def down_to_proto(msg: DownMessage) -> edgehub_pb2.DownMessage:
    """Encode a GM -> LC message."""
    from sedna.proto import edgehub_pb2

    pb = edgehub_pb2.DownMessage()
    if isinstance(msg, Upsert):
        _ref_to(pb.upsert.ref, msg.ref)
        raw = encode_json(msg.object)
        if len(raw) >= COMPRESS_MIN_BYTES:
            raw = zlib.compress(raw, 1)
            pb.upsert.encoding = "zlib"
        pb.upsert.object = raw
    elif isinstance(msg, Delete):
        _ref_to(pb.delete.ref, msg.ref)
    elif isinstance(msg, ReportAck):
        pb.report_ack.seq = msg.seq
        pb.report_ack.accepted = msg.accepted
        pb.report_ack.duplicate = msg.duplicate
        pb.report_ack.reason = msg.reason
    elif isinstance(msg, ResyncDone):
        pb.resync_done.upserts = msg.upserts
        pb.resync_done.deletes = msg.deletes
    elif isinstance(msg, Ping):
        pb.ping.nonce = msg.nonce
    elif isinstance(msg, Pong):
        pb.pong.nonce = msg.nonce
    elif isinstance(msg, Batch):
        pb.batch.messages.extend(down_bytes(m) for m in msg.messages)
    else:
        raise TypeError(f"not a downstream message: {msg!r}")
    return pb


def down_bytes(msg: DownMessage) -> bytes:
    """``msg`` serialised for the wire (the GM's servicer writes bytes as they are)."""
    return bytes(down_to_proto(msg).SerializeToString())


def batch_bytes(messages: list[bytes]) -> bytes:
    """One wire message carrying already serialised (non-batch) downstream messages, in order."""
    if len(messages) == 1:
        return messages[0]
    from sedna.proto import edgehub_pb2

    pb = edgehub_pb2.DownMessage()
    pb.batch.messages.extend(messages)
    return bytes(pb.SerializeToString())


def down_from_proto(pb: edgehub_pb2.DownMessage, nested: bool = False) -> DownMessage:
    """Decode a GM -> LC message; raise :class:`MalformedMessage` naming the bad field.

    A :class:`Batch` decodes whole or not at all (one bad element rejects it). ``nested`` is set
    for the elements of a batch, which must not be batches themselves.
    """
    which = pb.WhichOneof("body")
    if which == "upsert":
        return Upsert(_ref_from(pb.upsert.ref, "upsert.ref"), decode_json(_object_bytes(pb.upsert), "upsert.object"))
    if which == "delete":
        return Delete(_ref_from(pb.delete.ref, "delete.ref"))
    if which == "report_ack":
        ack = pb.report_ack
        return ReportAck(ack.seq, ack.accepted, ack.duplicate, ack.reason)
    if which == "resync_done":
        return ResyncDone(pb.resync_done.upserts, pb.resync_done.deletes)
    if which == "ping":
        return Ping(pb.ping.nonce)
    if which == "pong":
        return Pong(pb.pong.nonce)
    if which == "batch" and not nested:
        return Batch([_batch_item(raw, i) for i, raw in enumerate(pb.batch.messages)])
    if which == "batch":
        raise MalformedMessage("batch.messages: a batch must not contain a batch")
    raise MalformedMessage("body: no message set (expected upsert, delete, report_ack, resync_done, ping, pong "
                           "or batch)")


def _object_bytes(upsert: edgehub_pb2.Upsert) -> bytes:
    """The JSON of an upsert's object, inflated when compressed (refusing more than MAX_OBJECT_BYTES)."""
    if not upsert.encoding:
        return bytes(upsert.object)
    if upsert.encoding != "zlib":
        raise MalformedMessage(f"upsert.encoding: {upsert.encoding!r} is not supported (expected '' or 'zlib')")
    inflate = zlib.decompressobj()
    try:
        raw = inflate.decompress(upsert.object, MAX_OBJECT_BYTES)
    except zlib.error as exc:
        raise MalformedMessage(f"upsert.object: not valid zlib data ({exc})") from None
    if inflate.unconsumed_tail:
        raise MalformedMessage(f"upsert.object: inflates to more than {MAX_OBJECT_BYTES} bytes")
    return raw


def _batch_item(raw: bytes, index: int) -> Upsert | Delete | ReportAck | ResyncDone | Ping | Pong:
    from google.protobuf.message import DecodeError

    from sedna.proto import edgehub_pb2

    try:
        pb = edgehub_pb2.DownMessage.FromString(raw)
    except DecodeError as exc:
        raise MalformedMessage(f"batch.messages[{index}]: not a DownMessage ({exc})") from None
    try:
        msg = down_from_proto(pb, nested=True)
    except MalformedMessage as exc:
        raise MalformedMessage(f"batch.messages[{index}].{exc}") from None
    assert not isinstance(msg, Batch)
    return msg


def keepalive_options(interval_s: float) -> list[tuple[str, int]]:
    """gRPC channel/server options for HTTP/2 keepalive pings every ``interval_s`` seconds."""
    return grpc_options.channel_options(keepalive_s=interval_s)


__all__ = ["COMPRESS_MIN_BYTES", "MAX_OBJECT_BYTES", "NODE_METADATA", "Batch", "Delete", "DownMessage", "Hello",
           "MalformedMessage", "NodeName", "ObjectAck", "ObjectAcks", "ObjectKey", "ObjectRef", "Payload", "Ping",
           "Pong", "Report", "ReportAck", "ResyncDone", "UpMessage", "Upsert", "batch_bytes", "decode_json",
           "down_bytes", "down_from_proto", "down_to_proto", "encode_json", "keepalive_options", "key_of",
           "up_from_proto", "up_to_proto"]
