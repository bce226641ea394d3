"""Hand-framed chunk messages are byte-identical to protobuf's and parse back without protobuf."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sedna.proto import federated_pb2 as pb
from sedna.service.aggregation import wire
from sedna.service.aggregation.serde import encode_weights, iter_chunks


@given(st.lists(st.binary(min_size=1, max_size=3000), min_size=1, max_size=5), st.integers(1, 4096))
def test_frames_equal_protobuf_encoding_and_round_trip(parts: list[bytes], chunk_size: int) -> None:
    views = [memoryview(p) for p in parts]
    expected = list(iter_chunks(views, chunk_size))
    server = list(wire.chunk_frames(views, chunk_size, wire.SERVER_CHUNK_TAG))
    client = list(wire.chunk_frames(views, chunk_size, wire.CLIENT_CHUNK_TAG))

    assert server == [pb.ServerMessage(chunk=pb.Chunk(data=d)).SerializeToString() for d in expected]
    assert client == [pb.ClientMessage(chunk=pb.Chunk(data=d)).SerializeToString() for d in expected]
    parse = wire.deserializer(wire.SERVER_CHUNK_TAG, pb.ServerMessage)
    assert [bytes(parse(f).data) for f in server] == expected


def test_other_messages_and_odd_encodings_go_through_protobuf() -> None:
    parse = wire.deserializer(wire.CLIENT_CHUNK_TAG, pb.ClientMessage)
    hello = pb.ClientMessage(hello=pb.Hello(client_id="c1")).SerializeToString()
    assert parse(hello).hello.client_id == "c1"
    empty = pb.ClientMessage(chunk=pb.Chunk()).SerializeToString()  # no data field at all
    assert parse(empty).WhichOneof("msg") == "chunk"
    # a chunk followed by another field is not the canonical single chunk: protobuf parses it
    odd = pb.ClientMessage(chunk=pb.Chunk(data=b"abcd")).SerializeToString() + b"\x32\x00"
    assert not isinstance(parse(odd), wire.WireChunk)
    assert wire.parse_chunk(b"\x32\xff\xff", wire.CLIENT_CHUNK_TAG) is None  # truncated varint


def test_a_broadcast_is_framed_once_unless_huge(monkeypatch: pytest.MonkeyPatch) -> None:
    header, views = encode_weights({"w": np.arange(1000, dtype=np.float32)})
    shared = wire.framed_once(views, header.total_bytes, 1024)
    assert isinstance(shared, wire.Framed) and len(shared.frames) == 4
    monkeypatch.setattr(wire, "SHARE_LIMIT", 100)
    assert wire.framed_once(views, header.total_bytes, 1024) is views
