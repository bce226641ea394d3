"""The device payloads: request frames in, result JSON out.

A request is one of two forms, told apart by its first byte:

* **binary frame** (for tensors and images): a 4-byte big-endian header length, a UTF-8
  JSON header ``{"id", "dtype", "shape", "content_type"?}``, then the raw tensor bytes
  (little-endian, C order). ``dtype`` is an Open Inference Protocol name (``FP32``,
  ``UINT8``) or a numpy name (``float32``). With ``content_type: image/png`` the body
  is a PNG (``image/jpeg``: a JPEG) file, decoded by :mod:`.images` (Pillow); ``dtype``/``shape`` are then
  optional casts. Other image types are refused as ``unsupported content type``.
* **JSON** (small inputs, first byte ``{``): ``{"id", "data": nested list, "dtype"?}``,
  ``dtype`` defaulting to ``FP32``.

Everything is bounded: the payload size, the JSON nesting depth (a 200 000-deep document is
refused at level 64), the numbers of a JSON tensor (read into a typed buffer, never as Python
objects; a number that does not fit ``dtype`` is refused by name), the tensor elements of a
frame, and the pixels of an image (checked from its header, before decoding).

Text travels as ``dtype: BYTES``: a JSON list of strings, or in a binary frame each element
as a 4-byte little-endian length and its bytes (the Open Inference Protocol's layout).

A result is JSON: ``{"id", "ok": true, "result", "hard_example", "computed_at",
"example_id"?, "latency_ms"}`` or ``{"id"?, "ok": false, "code", "error"}`` where
``error`` names the field at fault and ``code`` is a short key also used in metrics.
Tensors never travel as pickles: only ``numpy.frombuffer`` on declared dtypes.
"""

from __future__ import annotations

import contextlib
import json
import math
import struct
from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np

from sedna.backend import bytes_tensors
from sedna.backend.tensors import from_numpy_dtype, to_numpy_dtype
from sedna.common import bounded_json
from sedna.common.errors import InvalidInputError
from sedna.common.outcome import JointOutcome
from sedna.service.mqtt.images import DEFAULT_MAX_PIXELS, FORMATS, ImageError, decode_image

RequestId = str | int
RAW_TYPES = ("application/octet-stream", "")
IMAGE_TYPES = tuple(FORMATS)
MAX_HEADER_BYTES = 64 * 1024
MAX_DEPTH = 32
"""Deepest JSON nesting of a request (a tensor of rank 30 fits)."""
DEFAULT_MAX_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class Limits:
    """What one request may hold."""

    max_bytes: int = 8 * 1024 * 1024
    """Largest payload."""
    max_elements: int = DEFAULT_MAX_ELEMENTS
    """Most tensor elements (a JSON list's numbers, a frame's shape product, an image's values)."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Most pixels of an image (width x height), checked from its header before decoding."""


class PayloadError(InvalidInputError):
    """A request cannot be decoded; ``code`` is a short reason, ``request_id`` the id when readable."""

    def __init__(self, code: str, message: str, request_id: RequestId | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id


@dataclass(frozen=True)
class Request:
    """A decoded device request."""

    id: RequestId
    tensor: np.ndarray
    content_type: str = "application/octet-stream"

    @property
    def datatype(self) -> str:
        if bytes_tensors.is_text_array(self.tensor):
            return bytes_tensors.BYTES
        return from_numpy_dtype(self.tensor.dtype)


def parse_dtype(value: object, request_id: RequestId | None = None) -> np.dtype[Any]:
    """The numpy dtype of an OIP or numpy dtype name; ``PayloadError('bad_dtype')`` otherwise."""
    if isinstance(value, str) and value:
        try:
            return to_numpy_dtype(value)
        except ValueError:
            pass
        try:
            dtype = np.dtype(value.lower())
            from_numpy_dtype(dtype)  # only the dtypes OIP knows: no objects, strings, datetimes
            return dtype.newbyteorder("<")
        except (TypeError, ValueError):
            pass
    raise PayloadError("bad_dtype", f"field 'dtype': unknown dtype {value!r} "
                       "(use FP32, UINT8, ... or float32, uint8, ...)", request_id)


def decode_request(payload: bytes, max_bytes: int | Limits, fallback_id: RequestId | None = None) -> Request:
    """Decode a binary frame or a JSON request within ``max_bytes`` (or :class:`Limits`).

    ``fallback_id`` (the MQTT 5 correlation data) serves when the request has no ``id``.
    """
    limits = max_bytes if isinstance(max_bytes, Limits) else Limits(max_bytes=max_bytes)
    if len(payload) > limits.max_bytes:
        raise PayloadError("oversize", f"payload: {len(payload)} bytes exceeds the limit of {limits.max_bytes} bytes",
                           fallback_id)
    if not payload:
        raise PayloadError("empty", "payload: empty message (send a binary frame or a JSON object)", fallback_id)
    if payload[:1] == b"{":
        return _decode_json(payload, fallback_id, limits)
    return _decode_frame(payload, fallback_id, limits)


def peek_id(payload: bytes, fallback_id: RequestId | None = None,
            max_bytes: int = MAX_HEADER_BYTES) -> RequestId | None:
    """The request id, read cheaply (a frame's header, or a JSON request up to ``max_bytes``); None if unreadable."""
    try:
        if payload[:1] == b"{":
            if len(payload) > max_bytes:
                return fallback_id
            data = _load_object(payload, "JSON request", fallback_id, ("data",))
        else:
            data = _frame_header(payload, fallback_id)[0]
        return _request_id(data, fallback_id)
    except InvalidInputError:
        return fallback_id


def _load_object(text: bytes | memoryview, what: str, fallback_id: RequestId | None,
                 tensor: tuple[str, ...] | None = None, max_elements: int = DEFAULT_MAX_ELEMENTS) -> dict[str, Any]:
    try:
        data = bounded_json.load(bytes(text), what=what, max_depth=MAX_DEPTH,
                                 tensor_paths=[tensor] if tensor else (), max_elements=max_elements)
    except bounded_json.JsonLimitError as exc:
        code = "bad_data" if tensor and exc.path[:1] == tensor[:1] else "bad_header"
        rid = fallback_id
        if isinstance(exc.partial, dict):  # the id, when it came before the fault
            with contextlib.suppress(PayloadError):
                rid = _request_id(exc.partial, fallback_id)
        raise PayloadError(code, _field_message(str(exc)), rid) from None
    if not isinstance(data, dict):
        raise PayloadError("bad_header", f"{what}: must be a JSON object, got {type(data).__name__}", fallback_id)
    return data


def _request_id(data: dict[str, Any], fallback_id: RequestId | None) -> RequestId:
    value = data.get("id", fallback_id)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise PayloadError("bad_id", "field 'id': a request needs a string or integer id "
                           f"(or MQTT 5 correlation data), got {value!r}", fallback_id)
    return value


def _field_message(text: str) -> str:
    """``field 'data': ...`` for a bounded_json message that starts with a field path."""
    where, sep, rest = text.partition(": ")
    if sep and " " not in where:
        return f"field {where!r}: {rest}"
    return text


def _decode_json(payload: bytes, fallback_id: RequestId | None, limits: Limits) -> Request:
    data = _load_object(payload, "JSON request", fallback_id, ("data",), limits.max_elements)
    rid = _request_id(data, fallback_id)
    if "data" not in data:
        raise PayloadError("bad_data", "field 'data': missing (a nested list of numbers)", rid)
    if _is_bytes_dtype(data.get("dtype")):
        return Request(rid, _json_bytes(data["data"], rid), "application/json")
    dtype = parse_dtype(data.get("dtype", "FP32"), rid)
    values = data["data"]
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = bounded_json.NumberArray(array("d" if isinstance(values, float) else "q", [values]), (), 0, "data")
    if not isinstance(values, bounded_json.NumberArray):
        raise PayloadError("bad_data", f"field 'data': must be a number or a list of numbers, "
                           f"got {type(values).__name__}", rid)
    if values.shape is None:
        raise PayloadError("bad_data", "field 'data': not a rectangular list of numbers "
                           "(every row needs the same length)", rid)
    try:
        tensor = values.to_numpy(dtype, from_numpy_dtype(dtype)).reshape(values.shape)
    except InvalidInputError as exc:
        raise PayloadError("bad_data", _field_message(str(exc)), rid) from None
    return Request(rid, tensor, "application/json")


def _frame_header(payload: bytes, fallback_id: RequestId | None) -> tuple[dict[str, Any], int]:
    if len(payload) < 4:
        raise PayloadError("bad_header", "header length: a binary frame starts with a 4-byte big-endian length",
                           fallback_id)
    (size,) = struct.unpack(">I", payload[:4])
    if size > MAX_HEADER_BYTES or 4 + size > len(payload):
        raise PayloadError("bad_header", f"header length: {size} does not fit a {len(payload)}-byte frame "
                           f"(at most {MAX_HEADER_BYTES})", fallback_id)
    return _load_object(memoryview(payload)[4:4 + size], "header", fallback_id), size


def _decode_frame(payload: bytes, fallback_id: RequestId | None, limits: Limits) -> Request:
    header, size = _frame_header(payload, fallback_id)
    rid = _request_id(header, fallback_id)
    body = memoryview(payload)[4 + size:]
    content_type = header.get("content_type") or "application/octet-stream"
    if not isinstance(content_type, str):
        raise PayloadError("unsupported_content_type", f"field 'content_type': {content_type!r} is not a string", rid)
    content_type = content_type.split(";", 1)[0].strip().lower()
    if content_type in IMAGE_TYPES:
        return Request(rid, _decode_image(bytes(body), content_type, header, rid, limits), content_type)
    if content_type not in RAW_TYPES:
        raise PayloadError("unsupported_content_type", f"field 'content_type': unsupported content type "
                           f"{content_type!r} (use application/octet-stream, {' or '.join(IMAGE_TYPES)})", rid)
    if "dtype" not in header:
        raise PayloadError("bad_dtype", "field 'dtype': missing (e.g. \"FP32\")", rid)
    shape = _shape(header.get("shape"), rid)
    if math.prod(shape) > limits.max_elements:
        raise PayloadError("too_large", f"field 'shape': {list(shape)} holds {math.prod(shape)} elements, more than "
                           f"the limit of {limits.max_elements}", rid)
    if _is_bytes_dtype(header["dtype"]):
        return Request(rid, _frame_bytes(body, shape, rid), "application/octet-stream")
    dtype = parse_dtype(header["dtype"], rid)
    needed = math.prod(shape) * dtype.itemsize
    if needed != len(body):
        raise PayloadError("bad_size", f"field 'shape': {list(shape)} x {from_numpy_dtype(dtype)} needs "
                           f"{needed} bytes, the frame carries {len(body)}", rid)
    tensor = np.frombuffer(body, dtype=dtype.newbyteorder("<")).reshape(shape)
    return Request(rid, tensor.astype(dtype.newbyteorder("="), copy=False), "application/octet-stream")


def _shape(value: object, rid: RequestId) -> tuple[int, ...]:
    if (not isinstance(value, list) or len(value) > 16
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value)):
        raise PayloadError("bad_shape", f"field 'shape': {value!r} is not a list of non-negative integers", rid)
    return tuple(value)


def _decode_image(body: bytes, content_type: str, header: dict[str, Any], rid: RequestId,
                  limits: Limits) -> np.ndarray:
    try:
        image: np.ndarray = decode_image(body, content_type, min(limits.max_pixels, limits.max_elements))
    except ImageError as exc:
        code = "too_large" if "exceeds the limit" in str(exc) else "bad_image"
        raise PayloadError(code, f"body ({content_type}): {exc}", rid) from None
    if image.size > limits.max_elements:
        raise PayloadError("too_large", f"body ({content_type}): {image.size} values exceed the limit of "
                           f"{limits.max_elements}", rid)
    if "dtype" in header:
        image = image.astype(parse_dtype(header["dtype"], rid))
    if header.get("shape") is not None:
        shape = _shape(header["shape"], rid)
        if math.prod(shape) != image.size:
            raise PayloadError("bad_size", f"field 'shape': {list(shape)} does not hold the {image.shape} image", rid)
        image = image.reshape(shape)
    return image


def encode_frame(tensor: np.ndarray, request_id: RequestId, content_type: str | None = None) -> bytes:
    """A binary request frame for ``tensor`` (what devices send); text goes as BYTES."""
    if bytes_tensors.is_text_array(np.asarray(tensor)):
        return _bytes_frame(np.asarray(tensor), request_id)
    array = np.ascontiguousarray(tensor)
    header = {"id": request_id, "dtype": from_numpy_dtype(array.dtype), "shape": list(array.shape)}
    if content_type:
        header["content_type"] = content_type
    head = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack(">I", len(head)) + head + array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()


def encode_image_frame(image: bytes, request_id: RequestId, content_type: str = "image/png",
                       **header: Any) -> bytes:
    """A binary request frame carrying an encoded image; extra ``header`` keys (dtype, shape) are added."""
    head = json.dumps({"id": request_id, "content_type": content_type, **header}, separators=(",", ":")).encode()
    return struct.pack(">I", len(head)) + head + image


def to_jsonable(value: Any) -> Any:
    """Numpy arrays and scalars (also nested in lists/dicts) as plain JSON values."""
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist()) if value.dtype.kind in "OS" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, bytes):  # a BYTES result: text as text, anything else readable and lossless
        return value.decode("utf-8", errors="backslashreplace")
    return value


def result_payload(request_id: RequestId, outcome: JointOutcome, latency_ms: float) -> bytes:
    """The JSON answer to a request that was served."""
    body: dict[str, Any] = {"id": request_id, "ok": True, "result": to_jsonable(outcome.result),
                            "hard_example": bool(outcome.is_hard_example), "computed_at": outcome.computed_at}
    if outcome.example_id is not None:
        body["example_id"] = outcome.example_id
    body["latency_ms"] = round(latency_ms, 3)
    return json.dumps(body, separators=(",", ":")).encode()


def error_payload(request_id: RequestId | None, code: str, message: str) -> bytes:
    """The JSON answer to a request that failed; ``id`` is left out when it could not be read."""
    body: dict[str, Any] = {} if request_id is None else {"id": request_id}
    body.update({"ok": False, "code": code, "error": message})
    return json.dumps(body, separators=(",", ":")).encode()


# -- BYTES (text) tensors: JSON lists of strings, or length-prefixed elements in a frame --------------


def _is_bytes_dtype(value: object) -> bool:
    return isinstance(value, str) and bytes_tensors.is_bytes(value)


def _json_bytes(data: object, rid: RequestId) -> np.ndarray:
    try:
        return bytes_tensors.from_nested(data, "field 'data'")
    except InvalidInputError as exc:
        raise PayloadError("bad_data", str(exc), rid) from None


def _frame_bytes(body: memoryview, shape: tuple[int, ...], rid: RequestId) -> np.ndarray:
    try:
        return bytes_tensors.deserialize(body, shape, "body (BYTES)")
    except InvalidInputError as exc:
        raise PayloadError("bad_size", str(exc), rid) from None


def _bytes_frame(array: np.ndarray, request_id: RequestId) -> bytes:
    header = {"id": request_id, "dtype": bytes_tensors.BYTES, "shape": list(array.shape)}
    head = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack(">I", len(head)) + head + bytes_tensors.serialize(array)
