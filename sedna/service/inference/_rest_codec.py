"""OIP v2 REST bodies: JSON tensors and the binary tensor extension, both ways.

A binary body is a JSON header of ``Inference-Header-Content-Length`` bytes followed
by the raw (little-endian, row-major) bytes of every tensor whose parameters carry
``binary_data_size``, in the order of the header's tensor list. A client asks for
binary outputs with ``parameters.binary_data_output`` (all outputs) or an output's
``parameters.binary_data``. The server side (:func:`parse_request`,
:func:`encode_response`) serves ``_rest``; the client side (:func:`encode_request`,
:func:`decode_response`) serves :mod:`.rest_client`.

JSON is read with :mod:`sedna.common.bounded_json`: nesting deeper than 64 levels is refused
(400) as soon as it is reached, and the numbers of every ``data`` list go straight into a
typed buffer (8 bytes a number, never a Python object each), at most ``max_elements`` per
request; a number that does not fit the tensor's datatype is refused by name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sedna.backend import bytes_tensors
from sedna.backend.tensors import Prediction, ServedModel
from sedna.common import bounded_json
from sedna.common.bounded_json import ITEM, NumberArray
from sedna.common.errors import InvalidInputError

from ._tensors import (
    InferResult,
    TensorHeader,
    bind_inputs,
    datatype_of,
    decode_raw,
    expected_bytes,
    fmt_shape,
    json_contents,
    jsonable,
    parse_shape,
    raw_contents,
    select_outputs,
    where,
    wire_dtype,
)

HEADER_LENGTH = "inference-header-content-length"
"""The binary extension's HTTP header (lower case, as ASGI and httpx present it)."""
DEFAULT_MAX_ELEMENTS = 1 << 24
"""Most tensor elements of one request's JSON ``data`` lists together."""


@dataclass
class RestRequest:
    """A parsed, validated inference request."""

    inputs: dict[str, np.ndarray]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    binary_outputs: set[str] = field(default_factory=set)
    binary_all: bool = False


def _object(value: Any, field_name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError(f"{field_name} must be a JSON object, got {type(value).__name__}")
    return value


def split_body(body: bytes, header_length: str | None, tensors: str = "inputs",
               max_elements: int = DEFAULT_MAX_ELEMENTS) -> tuple[dict[str, Any], memoryview]:
    """The JSON header of a body and the binary bytes after it (empty for a pure JSON body).

    The ``data`` lists of the ``tensors`` entries (``inputs`` or ``outputs``) come back as
    :class:`~sedna.common.bounded_json.NumberArray` s.
    """
    if header_length is None:
        length = len(body)
    else:
        try:
            length = int(header_length)
        except ValueError:
            raise InvalidInputError(f"header Inference-Header-Content-Length={header_length!r} is not an integer") \
                from None
        if not 0 <= length <= len(body):
            raise InvalidInputError(f"header Inference-Header-Content-Length={length} is outside the body of "
                                    f"{len(body)} bytes")
    view = memoryview(body)
    header = bounded_json.load(view[:length] if length < len(body) else body, what="request body",
                               tensor_paths=[(tensors, ITEM, "data")], max_elements=max_elements)
    return _object(header, "request body"), view[length:]


def parse_request(model: ServedModel, body: bytes, header_length: str | None,
                  max_elements: int = DEFAULT_MAX_ELEMENTS) -> RestRequest:
    """Parse and validate an infer request body for ``model`` (at most ``max_elements`` JSON tensor elements)."""
    header, binary = split_body(body, header_length, "inputs", max_elements)
    entries = header.get("inputs")
    if not isinstance(entries, list) or not entries:
        raise InvalidInputError("inputs: must be a non-empty list of tensors")
    headers: list[TensorHeader] = []
    sizes: list[int | None] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidInputError(f"inputs[{index}]: must be an object with name, datatype, shape, data")
        name, datatype = entry.get("name"), entry.get("datatype")
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"inputs[{index}].name: must be a non-empty string, got {name!r}")
        if not isinstance(datatype, str):
            raise InvalidInputError(f"{where(index, name)}: datatype must be a string, got {datatype!r}")
        shape = parse_shape(entry.get("shape"), where(index, name))
        params = _object(entry.get("parameters"), f"{where(index, name)}: parameters")
        size = params.get("binary_data_size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise InvalidInputError(f"{where(index, name)}: binary_data_size must be a non-negative integer")
        headers.append(TensorHeader(name, datatype, shape))
        sizes.append(size)
    offsets: list[int] = []
    offset = 0
    for index, size in enumerate(sizes):
        offsets.append(offset)
        if size is not None:
            if offset + size > len(binary):
                raise InvalidInputError(f"{where(index, headers[index].name)}: binary_data_size {size} exceeds the "
                                        f"{len(binary) - offset} binary bytes left in the body")
            offset += size
    if offset != len(binary):
        raise InvalidInputError(f"request body has {len(binary) - offset} binary bytes that no input claims")

    def decode(index: int, head: TensorHeader, dtype: np.dtype) -> np.ndarray:
        at = where(index, head.name)
        size = sizes[index]
        if bytes_tensors.is_bytes(head.datatype):
            return bytes_input(entries[index].get("data"), binary, offsets[index], size, head, at)
        if size is not None:
            want = expected_bytes(head, dtype)
            if size != want:
                raise InvalidInputError(f"{at}: binary_data_size {size} does not match shape {fmt_shape(head.shape)} "
                                        f"of {head.datatype} ({want} bytes)")
            raw = binary[offsets[index]:offsets[index] + size]
            return np.frombuffer(raw, dtype=dtype).reshape(head.shape)
        return json_tensor(entries[index].get("data"), head, dtype, at, f"inputs[{index}].data")

    inputs = bind_inputs(model, headers, decode)
    request = RestRequest(inputs, id=_opt_str(header.get("id"), "id"),
                          parameters=_object(header.get("parameters"), "parameters"))
    request.binary_all = bool(request.parameters.get("binary_data_output", False))
    wanted = header.get("outputs") or []
    if not isinstance(wanted, list):
        raise InvalidInputError("outputs: must be a list of {name, parameters} objects")
    for index, entry in enumerate(wanted):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InvalidInputError(f"outputs[{index}]: must be an object with a string name")
        request.outputs.append(entry["name"])
        if _object(entry.get("parameters"), f"outputs[{index}].parameters").get("binary_data"):
            request.binary_outputs.add(entry["name"])
    return request


def _opt_str(value: Any, field_name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InvalidInputError(f"{field_name}: must be a string, got {value!r}")


def json_tensor(data: Any, head: TensorHeader, dtype: np.dtype, at: str, field: str) -> np.ndarray:
    """A tensor given as a JSON (nested or flat) list, checked against its shape and datatype.

    ``field`` names the data in messages (``inputs[0].data``), as bounded_json's own errors do.
    """
    if data is None:
        raise InvalidInputError(f"{at}: has neither 'data' nor parameters.binary_data_size")
    if isinstance(data, list):  # bounded_json reads a tensor whose first leaf is a string as text
        raise InvalidInputError(f"{field}: holds a string; only numbers (or true/false) belong in a tensor "
                                f"of {head.datatype} (text goes in a BYTES tensor)")
    if not isinstance(data, NumberArray):
        raise InvalidInputError(f"{at}: data must be a list of {head.datatype} values, got {type(data).__name__}")
    if data.shape is None:
        raise InvalidInputError(f"{at}: data is not a rectangular list (every row needs the same length)")
    need = math.prod(head.shape)
    if len(data) != need:
        raise InvalidInputError(f"{at}: data has {len(data)} values, shape {fmt_shape(head.shape)} needs {need}")
    return data.to_numpy(dtype, head.datatype).reshape(head.shape)  # errors name inputs[i].data


def encode_response(model: ServedModel, prediction: Prediction, request: RestRequest) -> tuple[bytes, dict[str, str]]:
    """The response body and headers (binary extension when any output is binary)."""
    outputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, array in select_outputs(model, prediction, request.outputs):
        entry: dict[str, Any] = {"name": name, "datatype": datatype_of(array, name), "shape": list(array.shape)}
        if request.binary_all or name in request.binary_outputs:
            raw = raw_contents(array)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = json_contents(array, name)
        outputs.append(entry)
    body: dict[str, Any] = {"model_name": model.name, "model_version": model.version, "outputs": outputs}
    if request.id is not None:
        body["id"] = request.id
    if prediction.parameters:
        body["parameters"] = jsonable(prediction.parameters)
    head = json.dumps(body, separators=(",", ":")).encode()
    if not chunks:
        return head, {"content-type": "application/json"}
    return b"".join([head, *chunks]), {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(head))}


def encode_request(inputs: Mapping[str, np.ndarray], *, binary: bool, parameters: Mapping[str, Any] | None = None,
                   request_id: str | None = None) -> tuple[bytes, dict[str, str]]:
    """A client's infer request body and headers."""
    params = dict(jsonable(dict(parameters or {})))
    entries: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, value in inputs.items():
        array = np.asarray(value)
        entry: dict[str, Any] = {"name": name, "datatype": datatype_of(array, name), "shape": list(array.shape)}
        if binary:
            raw = raw_contents(array)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = json_contents(array, name)
        entries.append(entry)
    if binary:
        params["binary_data_output"] = True
    body: dict[str, Any] = {"inputs": entries}
    if params:
        body["parameters"] = params
    if request_id is not None:
        body["id"] = request_id
    head = json.dumps(body, separators=(",", ":")).encode()
    if not binary:
        return head, {"content-type": "application/json"}
    return b"".join([head, *chunks]), {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(head))}


def decode_response(body: bytes, header_length: str | None) -> InferResult:
    """A client's view of an infer response body."""
    header, binary = split_body(body, header_length, "outputs")
    outputs: dict[str, np.ndarray] = {}
    offset = 0
    for index, entry in enumerate(header.get("outputs") or []):
        name = entry.get("name", f"output{index}")
        head = TensorHeader(name, entry["datatype"], parse_shape(entry.get("shape"), where(index, name, "outputs")))
        dtype = wire_dtype(head.datatype)
        size = _object(entry.get("parameters"), "parameters").get("binary_data_size")
        at = where(index, name, "outputs")
        if size is not None:
            outputs[name] = decode_raw(binary[offset:offset + size], head, dtype, at)
            offset += size
        elif bytes_tensors.is_bytes(head.datatype):
            outputs[name] = bytes_tensors.from_json(_text(entry.get("data"), at), head.shape, at)
        else:
            outputs[name] = json_tensor(entry.get("data"), head, dtype, where(index, name, "outputs"),
                                        f"outputs[{index}].data")
    return InferResult(outputs, dict(header.get("parameters") or {}))


def bytes_input(data: Any, binary: memoryview, offset: int, size: int | None, head: TensorHeader,
                at: str) -> np.ndarray:
    """A BYTES input: length-prefixed elements in the binary part, or a JSON list of strings."""
    if size is not None:
        return bytes_tensors.deserialize(binary[offset:offset + size], head.shape, at)
    if data is None:
        raise InvalidInputError(f"{at}: has neither 'data' nor parameters.binary_data_size")
    return bytes_tensors.from_json(_text(data, at), head.shape, at)


def _text(data: Any, at: str) -> Any:
    """BYTES data as bounded_json read it: a list whose first leaf is a number came as a NumberArray."""
    if not isinstance(data, NumberArray):
        return data
    if len(data):
        first = data.first()
        raise InvalidInputError(f"{at}: BYTES data must hold strings, got {type(first).__name__} {first!r}")
    return []  # an empty list: no leaf told numbers from strings
