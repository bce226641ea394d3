"""Hypothesis strategies for what a hostile peer sends: JSON of any shape, MQTT frames, OIP bodies, hub messages."""

from __future__ import annotations

import json
import struct
from typing import Any

from hypothesis import strategies as st

from sedna.proto import edgehub_pb2 as pb

DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32",
             "FP64", "BYTES", "fp32", "float32", "", "COMPLEX64"]
numbers = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=False, width=64), st.booleans())
scalars = st.one_of(st.none(), numbers, st.text(max_size=8))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                           max_leaves=24)
shapes = st.one_of(st.lists(st.integers(-2, 6), max_size=4), st.just([2**40, 2**40]), json_values)
tensor_data = st.one_of(st.lists(numbers, max_size=12), st.lists(st.lists(numbers, max_size=4), max_size=4),
                        json_values)


def deep(levels: int, open_: str = "[", close: str = "]") -> str:
    return open_ * levels + close * levels


def some_of(draw: st.DrawFn, mapping: dict[str, Any]) -> dict[str, Any]:
    """A random subset of ``mapping``'s items (a field may be missing)."""
    keys = draw(st.sets(st.sampled_from(sorted(mapping))))
    return {key: mapping[key] for key in sorted(keys)}


def as_bytes(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


@st.composite
def mqtt_payloads(draw: st.DrawFn) -> bytes:
    """A request payload: a JSON request, a binary frame (maybe lying about its sizes), or noise."""
    kind = draw(st.sampled_from(["json", "frame", "image", "noise", "deep"]))
    rid = draw(st.one_of(st.text(min_size=1, max_size=6), st.integers(0, 10**6), st.none(), json_values))
    if kind == "noise":
        return draw(st.binary(max_size=64))
    if kind == "deep":
        return b'{"id": "d", "data": ' + deep(draw(st.integers(30, 5000))).encode() + b"}"
    if kind == "json":
        body = {"id": rid, "data": draw(tensor_data), "dtype": draw(st.sampled_from(DATATYPES))}
        return as_bytes(some_of(draw, body))
    header: dict[str, Any] = {"id": rid, "dtype": draw(st.sampled_from(DATATYPES)), "shape": draw(shapes)}
    if kind == "image":
        header["content_type"] = draw(st.sampled_from(["image/png", "image/jpeg", "image/gif", "text/plain"]))
    head = as_bytes(some_of(draw, header))
    declared = draw(st.one_of(st.just(len(head)), st.integers(0, 2**32 - 1)))
    body = draw(st.one_of(st.binary(max_size=64), st.just(b"\x89PNG\r\n\x1a\n" + draw(st.binary(max_size=64)))))
    return struct.pack(">I", declared) + head + body


@st.composite
def oip_bodies(draw: st.DrawFn) -> bytes:
    """An OIP v2 JSON infer body for a model with input ``x`` FP32 [-1, 4]: close to valid, or not at all."""
    kind = draw(st.sampled_from(["tensor", "tensor", "any", "deep", "noise"]))
    if kind == "noise":
        return draw(st.binary(max_size=64))
    if kind == "deep":
        return b'{"inputs": [{"name": "x", "data": ' + deep(draw(st.integers(60, 5000))).encode() + b"}]}"
    if kind == "any":
        return as_bytes(draw(json_values))
    entry = draw(st.fixed_dictionaries({}, optional={
        "name": st.sampled_from(["x", "y", "", "x"]), "datatype": st.sampled_from(DATATYPES),
        "shape": shapes, "data": tensor_data, "parameters": json_values}))
    body = draw(st.fixed_dictionaries({"inputs": st.one_of(st.just([entry]), json_values)},
                                      optional={"id": json_values, "outputs": json_values,
                                                "parameters": json_values}))
    return as_bytes(body)


@st.composite
def up_messages(draw: st.DrawFn) -> Any:
    """An edge-hub ``UpMessage`` an LC (or an impostor) could send."""
    msg = pb.UpMessage()
    which = draw(st.sampled_from(["hello", "ack", "acks", "report", "ping", "pong", "none"]))
    texts = st.text(max_size=12)

    def ref(target: Any) -> None:
        target.kind, target.namespace = draw(texts), draw(texts)
        target.name, target.resource_version = draw(texts), draw(texts)

    if which == "hello":
        msg.hello.node = draw(texts)
        msg.hello.outbox_epoch = draw(texts)
        for _ in range(draw(st.integers(0, 3))):
            ref(msg.hello.objects.add())
    elif which == "ack":
        ref(msg.ack.ref)
    elif which == "acks":
        for _ in range(draw(st.integers(0, 3))):
            ref(msg.acks.refs.add())
    elif which == "report":
        rep = msg.report
        rep.seq = draw(st.integers(0, 2**64 - 1))
        rep.kind = draw(st.sampled_from(["dataset", "jointinferenceservice", "teapot", ""]))
        rep.namespace, rep.name = draw(texts), draw(texts)
        rep.payload = draw(st.one_of(st.binary(max_size=48), st.builds(as_bytes, json_values),
                                     st.just(deep(2000).encode()), st.just(b'{"a": ' + deep(100_000).encode() + b"}")))
    elif which in ("ping", "pong"):
        getattr(msg, which).nonce = draw(st.integers(0, 2**64 - 1))
    return msg
