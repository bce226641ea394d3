"""Protobuf <-> record conversion and chunked tensor streaming for federated learning.

The only module (with the thin servicer and client) that touches ``federated_pb2``.
A model crosses the wire as a :class:`~sedna.proto.federated_pb2.TensorsHeader`
followed by ``Chunk`` messages: :func:`weights_to_header` describes the tensors,
:func:`iter_chunks` yields their encoded bytes in pieces of ``chunk_size`` (default
1 MiB, packing small tensors together), and :class:`TensorAssembler` writes incoming
chunks straight into preallocated arrays. Nothing is pickled: a tensor is dtype + shape
+ raw little-endian bytes, optionally compressed to float16 or int8 with one scale per
tensor (updates only; the server decodes them back to the model's dtype).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from sedna.algorithms.aggregation.records import Scalar, Weights
from sedna.backend.tensors import from_numpy_dtype, to_numpy_dtype
from sedna.proto import federated_pb2 as pb
from sedna.service.aggregation.wire import pieces

CHUNK_SIZE = 1 << 20
"""Default chunk payload: 1 MiB."""

ENCODINGS = {"none": pb.ENCODING_RAW, "raw": pb.ENCODING_RAW, "fp16": pb.ENCODING_FP16, "int8": pb.ENCODING_INT8}


class WireError(ValueError):
    """A header or chunk stream is malformed; the message names the field."""


# ---- scalars
def scalars_to_proto(values: Mapping[str, Scalar], target: Mapping[str, pb.Scalar]) -> None:
    """Fill a ``map<string, Scalar>`` field from a plain dict."""
    for key, value in values.items():
        slot = target[key]  # type: ignore[index]
        if isinstance(value, bool):
            slot.bool_value = value
        elif isinstance(value, (int, np.integer)):
            slot.int_value = int(value)
        elif isinstance(value, (float, np.floating)):
            slot.double_value = float(value)
        elif isinstance(value, str):
            slot.string_value = value
        else:
            raise WireError(f"config/metric {key!r} must be bool, int, float or str, got {type(value).__name__}")


def scalars_from_proto(values: Mapping[str, pb.Scalar]) -> dict[str, Scalar]:
    """The plain dict of a ``map<string, Scalar>`` field."""
    out: dict[str, Scalar] = {}
    for key, slot in values.items():
        kind = slot.WhichOneof("value")
        out[key] = getattr(slot, kind) if kind else 0
    return out


# ---- tensors
@dataclass(frozen=True)
class _Encoded:
    meta: pb.TensorMeta
    data: memoryview


def _encode(name: str, array: np.ndarray, encoding: int) -> _Encoded:
    arr = np.asarray(array)
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    meta = pb.TensorMeta(name=name, dtype=from_numpy_dtype(arr.dtype), shape=arr.shape, encoding=pb.ENCODING_RAW)
    payload = arr
    if encoding != pb.ENCODING_RAW and arr.dtype.kind == "f":
        if encoding == pb.ENCODING_FP16:
            payload = arr.astype(np.float16)
        else:
            peak = float(np.max(np.abs(arr))) if arr.size else 0.0
            scale = peak / 127.0 if peak > 0 else 1.0
            payload = np.clip(np.rint(arr / scale), -127, 127).astype(np.int8)
            meta.scale = scale
        meta.encoding = encoding
    meta.nbytes = payload.nbytes
    return _Encoded(meta, memoryview(payload.reshape(-1)).cast("B"))


def encode_weights(weights: Mapping[str, np.ndarray],
                   encoding: str = "none") -> tuple[pb.TensorsHeader, list[memoryview]]:
    """The header and the per-tensor byte views (encoded once, sent as chunks)."""
    try:
        code = ENCODINGS[encoding]
    except KeyError:
        raise WireError(f"compression {encoding!r} is not one of {', '.join(ENCODINGS)}") from None
    parts = [_encode(name, arr, code) for name, arr in weights.items()]
    header = pb.TensorsHeader(tensors=[p.meta for p in parts], total_bytes=sum(p.meta.nbytes for p in parts))
    return header, [p.data for p in parts]


def iter_chunks(views: list[memoryview], chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Concatenated tensor bytes in pieces of ``chunk_size`` (the last may be shorter)."""
    for parts in pieces(views, chunk_size):
        yield bytes(parts[0]) if len(parts) == 1 else b"".join(parts)


class TensorAssembler:
    """Rebuilds weights from a header and its chunks, writing into preallocated arrays.

    Parameters
    ----------
    header:
        The tensors to expect; validated here (dtype names, non-negative shapes, byte counts).
    max_bytes:
        Refuse a header announcing more than this many bytes (0: no limit).
    """

    def __init__(self, header: pb.TensorsHeader, max_bytes: int = 0) -> None:
        self.metas = list(header.tensors)
        self.total = int(header.total_bytes)
        if max_bytes and self.total > max_bytes:
            raise WireError(f"weights.total_bytes={self.total} exceeds the limit of {max_bytes} bytes")
        self._buffers: list[np.ndarray] = []
        seen: set[str] = set()
        for i, meta in enumerate(self.metas):
            if meta.name in seen:
                raise WireError(f"weights.tensors[{i}].name {meta.name!r} appears twice")
            seen.add(meta.name)
            if any(d < 0 for d in meta.shape):
                raise WireError(f"weights.tensors[{i}].shape {list(meta.shape)} has a negative dimension")
            try:
                logical = to_numpy_dtype(meta.dtype)
            except ValueError as exc:
                raise WireError(f"weights.tensors[{i}].dtype: {exc}") from None
            wire = {pb.ENCODING_FP16: np.dtype(np.float16), pb.ENCODING_INT8: np.dtype(np.int8)}.get(
                meta.encoding, logical)
            count = int(np.prod(meta.shape, dtype=np.int64))
            if count * wire.itemsize != meta.nbytes:
                raise WireError(f"weights.tensors[{i}] ({meta.name!r}): nbytes={meta.nbytes} but shape "
                                f"{list(meta.shape)} of {wire.name} needs {count * wire.itemsize}")
            self._buffers.append(np.empty(count, wire))
        if sum(m.nbytes for m in self.metas) != self.total:
            raise WireError(f"weights.total_bytes={self.total} differs from the sum of tensor nbytes")
        self._views = [memoryview(b).cast("B") for b in self._buffers]
        self._index = 0
        self._offset = 0
        self.received = 0

    @property
    def done(self) -> bool:
        """All announced bytes arrived."""
        return self.received >= self.total

    def feed(self, data: bytes | memoryview) -> None:
        """Copy one chunk into place; more bytes than announced is an error."""
        if self.received + len(data) > self.total:
            raise WireError(f"chunk overruns the announced {self.total} bytes")
        src = memoryview(data)
        pos = 0
        while pos < len(src):
            while len(self._views[self._index]) == self._offset:
                self._index += 1
                self._offset = 0
            dst = self._views[self._index]
            take = min(len(dst) - self._offset, len(src) - pos)
            dst[self._offset : self._offset + take] = src[pos : pos + take]
            self._offset += take
            pos += take
        self.received += len(data)

    def result(self) -> Weights:
        """The decoded weights (float16/int8 updates back in their logical dtype)."""
        if not self.done:
            raise WireError(f"weights incomplete: {self.received} of {self.total} bytes")
        out: Weights = {}
        for meta, buf in zip(self.metas, self._buffers, strict=True):
            logical = to_numpy_dtype(meta.dtype)
            arr = buf
            if meta.encoding == pb.ENCODING_INT8:
                arr = buf.astype(logical) * logical.type(meta.scale)
            elif meta.encoding == pb.ENCODING_FP16:
                arr = buf.astype(logical)
            out[meta.name] = arr.reshape(tuple(meta.shape))
        return out


def header_spec(header: pb.TensorsHeader) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{name: (dtype name, shape)}`` of a header, for validation before the bytes arrive."""
    return {m.name: (m.dtype, tuple(m.shape)) for m in header.tensors}


def weights_spec(weights: Mapping[str, np.ndarray]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{name: (dtype name, shape)}`` of in-memory weights."""
    return {k: (from_numpy_dtype(v.dtype), tuple(v.shape)) for k, v in weights.items()}


def messages_with_weights(head: object, views: list[memoryview], chunk_size: int, wrap: type) -> Iterator[object]:
    """``head`` then one ``wrap(chunk=Chunk(data))`` message per chunk."""
    yield head
    for data in iter_chunks(views, chunk_size):
        yield wrap(chunk=pb.Chunk(data=data))
