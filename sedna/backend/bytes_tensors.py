"""BYTES tensors: text and blobs in the Open Inference Protocol.

OIP's ``BYTES`` datatype holds variable-length byte strings. In memory they are numpy
``object`` arrays of :class:`bytes` (the convention of Triton's and KServe's clients). On
the wire each element travels as a 4-byte little-endian length followed by its bytes, in
row-major order: the REST binary extension and gRPC's ``raw_input_contents`` /
``raw_output_contents`` both carry exactly that (:func:`serialize`, :func:`deserialize`);
JSON carries a list of strings and gRPC's typed form ``bytes_contents``.

Fixed-size datatypes stay with :mod:`sedna.backend.tensors`, whose converters keep refusing
``BYTES``: code that handles text asks :func:`is_bytes` first, so no other path (federated
weights, MQTT frames) ever meets an ``object`` array by accident.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from sedna.common.errors import InvalidInputError

BYTES = "BYTES"
"""The OIP datatype name."""
_LENGTH = struct.Struct("<I")
_DONE = object()


def is_bytes(datatype: str) -> bool:
    """Whether ``datatype`` names OIP ``BYTES`` (any case)."""
    return datatype.upper() == BYTES


def is_text_array(array: np.ndarray) -> bool:
    """Whether ``array`` holds strings or bytes (numpy ``object``, ``str_`` or ``bytes_`` dtypes)."""
    return array.dtype.kind in "OUS"


def _element(value: Any, where: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise InvalidInputError(f"{where}: a BYTES element must be a string or bytes, got {type(value).__name__} "
                            f"{value!r}"[:300])


def as_bytes_array(values: Any, where: str = "tensor") -> np.ndarray:
    """An ``object`` array of :class:`bytes` from strings (UTF-8 encoded) or bytes, any nesting."""
    source = values if isinstance(values, np.ndarray) else np.array(values, dtype=object)
    out = np.empty(source.shape, dtype=object)
    flat_out = out.reshape(-1)
    for i, value in enumerate(source.reshape(-1)):
        flat_out[i] = _element(value, where)
    return out


def from_nested(data: Any, where: str) -> np.ndarray:
    """A BYTES tensor from a string or a rectangular nested list of strings (its shape is the nesting)."""
    try:
        nested = np.array(data, dtype=object)
    except ValueError as exc:  # numpy refuses some ragged lists outright
        raise InvalidInputError(f"{where}: not a rectangular list of strings ({exc})") from None
    if any(isinstance(v, (list, tuple)) for v in nested.reshape(-1)):  # others become arrays of lists
        raise InvalidInputError(f"{where}: not a rectangular list of strings (rows differ in length)")
    return as_bytes_array(nested, where)


def serialize(array: np.ndarray) -> bytes:
    """The elements of ``array`` as length-prefixed bytes (4-byte little-endian lengths), row-major."""
    parts: list[bytes] = []
    for value in np.asarray(array, dtype=object).reshape(-1):
        data = _element(value, "tensor")
        parts.append(_LENGTH.pack(len(data)))
        parts.append(data)
    return b"".join(parts)


def deserialize(buffer: bytes | memoryview, shape: Sequence[int], where: str) -> np.ndarray:
    """The ``object`` array of ``shape`` held by length-prefixed ``buffer``.

    Raises
    ------
    InvalidInputError
        A length runs past the end of the buffer, or the element count does not match ``shape``
        (the message names ``where``).
    """
    view = memoryview(buffer)
    need = math.prod(shape)
    items: list[bytes] = []
    offset, end = 0, len(view)
    while offset < end:
        if offset + 4 > end:
            raise InvalidInputError(f"{where}: BYTES data ends inside a 4-byte length prefix at byte {offset}")
        (size,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        if offset + size > end:
            raise InvalidInputError(f"{where}: BYTES element {len(items)} claims {size} bytes, "
                                    f"{end - offset} are left")
        if len(items) == need:
            raise InvalidInputError(f"{where}: BYTES data holds more than the {need} elements of its shape")
        items.append(bytes(view[offset:offset + size]))
        offset += size
    if len(items) != need:
        raise InvalidInputError(f"{where}: BYTES data holds {len(items)} elements, its shape "
                                f"[{','.join(str(d) for d in shape)}] needs {need}")
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out.reshape(tuple(shape))


def from_json(data: Any, shape: Sequence[int], where: str) -> np.ndarray:
    """A BYTES tensor from JSON ``data``: a (nested or flat) list of strings with ``prod(shape)`` elements."""
    if not isinstance(data, list):
        raise InvalidInputError(f"{where}: BYTES data must be a list of strings, got {type(data).__name__}")
    flat: list[bytes] = []
    stack: list[Any] = [iter(data)]
    while stack:  # depth-first without recursion: nesting cannot exhaust the stack
        item = next(stack[-1], _DONE)
        if item is _DONE:
            stack.pop()
        elif isinstance(item, list):
            stack.append(iter(item))
        elif isinstance(item, str):
            flat.append(item.encode("utf-8"))
        else:
            raise InvalidInputError(f"{where}: BYTES data must hold strings, got {type(item).__name__} {item!r}"[:300])
    need = math.prod(shape)
    if len(flat) != need:
        raise InvalidInputError(f"{where}: data has {len(flat)} strings, shape "
                                f"[{','.join(str(d) for d in shape)}] needs {need}")
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(tuple(shape))


def to_json(array: np.ndarray, where: str) -> list[str]:
    """The flat JSON list of a BYTES tensor; raises ValueError for elements that are not UTF-8 text."""
    out: list[str] = []
    for i, value in enumerate(np.asarray(array, dtype=object).reshape(-1)):
        data = _element(value, where)
        try:
            out.append(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError(f"{where}: element {i} is not UTF-8 text and cannot travel as JSON "
                             "(ask for binary data)") from None
    return out


def to_text(array: np.ndarray) -> Any:
    """A nested list of :class:`str` (UTF-8 decoded; elements that are not UTF-8 stay :class:`bytes`).

    This is what a plain (Sedna-style) estimator is given for a BYTES input: what its
    JSON ``data`` would have been.
    """
    def text(value: Any) -> Any:
        if isinstance(value, bytes):
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                return value
        return value

    source = np.asarray(array, dtype=object)
    if source.ndim == 0:
        return text(source.item())
    out = np.empty(source.shape, dtype=object)
    flat_out = out.reshape(-1)
    for i, value in enumerate(source.reshape(-1)):
        flat_out[i] = text(value)
    return out.tolist()


__all__ = ["BYTES", "as_bytes_array", "deserialize", "from_json", "from_nested", "is_bytes", "is_text_array",
           "serialize", "to_json", "to_text"]
