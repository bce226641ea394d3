"""Wire format of the hub: batches, shared encodings, compressed objects, ack batches."""

from __future__ import annotations

import zlib

import pytest

from gm.hub.sessions import chunks
from sedna.controlplane import edgehub as eh
from sedna.proto import edgehub_pb2 as pb

REF = eh.ObjectRef(eh.ObjectKey("federatedlearningjob", "default", "fl"), "7")
BIG = {"kind": "FederatedLearningJob", "metadata": {"name": "fl", "namespace": "default"},
       "spec": {"trainingWorkers": [{"dataset": {"name": f"ds-{i}"}} for i in range(1000)]}}


def decode(raw: bytes) -> eh.DownMessage:
    return eh.down_from_proto(pb.DownMessage.FromString(raw))


def test_a_batch_carries_messages_in_order_and_decodes_to_the_same_dataclasses() -> None:
    items = [eh.Upsert(REF, {"kind": "Dataset", "metadata": {"name": "d"}}), eh.Delete(REF), eh.ResyncDone(1, 1)]

    batch = decode(eh.batch_bytes([eh.down_bytes(m) for m in items]))

    assert batch == eh.Batch(items)


def test_a_batch_of_one_is_the_message_itself() -> None:
    wire = eh.down_bytes(eh.ReportAck(3))

    assert eh.batch_bytes([wire]) is wire
    assert decode(wire) == eh.ReportAck(3)


def test_big_objects_travel_compressed_and_arrive_equal() -> None:
    wire = eh.down_bytes(eh.Upsert(REF, BIG))
    message = pb.DownMessage.FromString(wire)

    assert message.upsert.encoding == "zlib"
    assert len(wire) < len(eh.encode_json(BIG)) / 5
    assert decode(wire) == eh.Upsert(REF, BIG)


def test_small_objects_travel_as_plain_json() -> None:
    small = {"kind": "Dataset", "metadata": {"name": "d"}}

    message = pb.DownMessage.FromString(eh.down_bytes(eh.Upsert(REF, small)))

    assert message.upsert.encoding == ""
    assert eh.decode_json(message.upsert.object, "object") == small


@pytest.mark.parametrize(("encoding", "payload", "reason"), [
    ("gzip", b"{}", "upsert.encoding: 'gzip' is not supported"),
    ("zlib", b"not zlib", "upsert.object: not valid zlib data"),
    ("zlib", zlib.compress(b" " * (eh.MAX_OBJECT_BYTES + 1)), "inflates to more than"),
])
def test_a_bad_compressed_object_is_rejected_naming_the_field(encoding: str, payload: bytes, reason: str) -> None:
    message = pb.DownMessage(upsert=pb.Upsert(ref=pb.ObjectRef(kind="dataset", name="d"), object=payload,
                                              encoding=encoding))

    with pytest.raises(eh.MalformedMessage, match=reason):
        eh.down_from_proto(message)


def test_a_batch_inside_a_batch_or_a_broken_element_is_rejected_naming_the_element() -> None:
    inner = eh.batch_bytes([eh.down_bytes(eh.Ping(1)), eh.down_bytes(eh.Ping(2))])
    nested = eh.batch_bytes([eh.down_bytes(eh.Ping(0)), inner])
    broken = eh.batch_bytes([eh.down_bytes(eh.Ping(0)), b"\xff\xff"])

    with pytest.raises(eh.MalformedMessage, match=r"batch\.messages\[1\]\..*must not contain a batch"):
        decode(nested)
    with pytest.raises(eh.MalformedMessage, match=r"batch\.messages\[1\]: not a DownMessage"):
        decode(broken)


def test_object_acks_round_trip() -> None:
    other = eh.ObjectRef(eh.ObjectKey("dataset", "default", "d"), "9")

    assert eh.up_from_proto(eh.up_to_proto(eh.ObjectAcks([REF, other]))) == eh.ObjectAcks([REF, other])


def test_chunks_respect_count_and_size_limits_but_never_split_a_message() -> None:
    wires = [b"a" * 10, b"b" * 10, b"c" * 50, b"d" * 10, b"e" * 10, b"f" * 10]

    assert chunks(wires, max_messages=3, max_bytes=30) == [
        [b"a" * 10, b"b" * 10], [b"c" * 50], [b"d" * 10, b"e" * 10, b"f" * 10]]
    assert chunks([], 3, 30) == []
