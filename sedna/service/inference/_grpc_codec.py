"""OIP v2 gRPC messages <-> numpy, for the server (``_grpc``) and :mod:`.grpc_client`.

Tensors go as raw little-endian bytes (``raw_input_contents`` / ``raw_output_contents``);
on input the typed ``contents`` lists are accepted too, so any OIP client works.
Parameters map to ``InferParameter``: bool, int, float and str to their own fields,
anything else to ``string_param`` as JSON. The ``pb`` argument is the generated
``grpc_predict_v2_pb2`` module, passed in so this module imports no protobuf.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sedna.backend import bytes_tensors
from sedna.backend.tensors import Prediction, ServedModel
from sedna.common.errors import InvalidInputError

from ._tensors import (
    InferResult,
    TensorHeader,
    bind_inputs,
    datatype_of,
    decode_raw,
    expected_bytes,
    fmt_shape,
    jsonable,
    parse_shape,
    raw_contents,
    select_outputs,
    where,
    wire_dtype,
)

CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}
"""Which ``InferTensorContents`` list carries each datatype (FP16 travels raw only)."""


def params_to_proto(values: Mapping[str, Any], target: Any) -> None:
    """Fill a ``map<string, InferParameter>`` from a plain mapping."""
    for key, value in values.items():
        value = value.item() if isinstance(value, np.generic) else value
        param = target[str(key)]
        if isinstance(value, bool):
            param.bool_param = value
        elif isinstance(value, int) and -(2**63) <= value < 2**63:
            param.int64_param = value
        elif isinstance(value, int) and 0 <= value < 2**64:
            param.uint64_param = value
        elif isinstance(value, float):
            param.double_param = value
        elif isinstance(value, str):
            param.string_param = value
        else:
            param.string_param = json.dumps(jsonable(value))


def params_from_proto(source: Any) -> dict[str, Any]:
    """A plain dict from a ``map<string, InferParameter>``."""
    out: dict[str, Any] = {}
    for key, param in source.items():
        choice = param.WhichOneof("parameter_choice")
        out[key] = getattr(param, choice) if choice else None
    return out


def parse_request(model: ServedModel, request: Any) -> tuple[dict[str, np.ndarray], list[str]]:
    """Validated inputs and requested output names of a ``ModelInferRequest``."""
    # Read each repeated field once: upb builds a fresh Python object (for bytes, a copy
    # of the tensor data) on every element access.
    raw = list(request.raw_input_contents)
    tensors = list(request.inputs)
    if raw and len(raw) != len(tensors):
        raise InvalidInputError(f"raw_input_contents: has {len(raw)} entries for {len(tensors)} inputs "
                                f"(give raw data for every input or for none)")
    if not tensors:
        raise InvalidInputError("inputs: must be a non-empty list of tensors")
    headers = []
    for index, tensor in enumerate(tensors):
        name = tensor.name
        if not name:
            raise InvalidInputError(f"inputs[{index}].name: must be a non-empty string")
        shape = tuple(tensor.shape)  # repeated int64: always Python ints
        if shape and min(shape) < 0:
            parse_shape(list(shape), where(index, name))  # raises, naming the field
        headers.append(TensorHeader(name, tensor.datatype, shape))

    def decode(index: int, head: TensorHeader, dtype: np.dtype) -> np.ndarray:
        if bytes_tensors.is_bytes(head.datatype):
            return bytes_input(raw[index] if raw else None, tensors[index], head, index)
        if raw:
            data = raw[index]
            want = expected_bytes(head, dtype)
            if len(data) != want:
                raise InvalidInputError(f"{where(index, head.name)}: raw_input_contents[{index}] has {len(data)} "
                                        f"bytes, shape {fmt_shape(head.shape)} of {head.datatype} needs {want}")
            return np.frombuffer(data, dtype=dtype).reshape(head.shape)
        at = where(index, head.name)
        field_name = CONTENTS_FIELD.get(head.datatype.upper())
        if field_name is None:
            raise InvalidInputError(f"{at}: datatype {head.datatype} must be sent in raw_input_contents")
        values = getattr(tensors[index].contents, field_name)
        need = math.prod(head.shape)
        if len(values) != need:
            raise InvalidInputError(f"{at}: contents.{field_name} has {len(values)} values, shape "
                                    f"{fmt_shape(head.shape)} needs {need}")
        try:
            return np.array(values, dtype=dtype).reshape(head.shape)
        except (ValueError, OverflowError) as exc:
            raise InvalidInputError(f"{at}: contents.{field_name} do not fit {head.datatype} ({exc})") from None

    inputs = bind_inputs(model, headers, decode)
    return inputs, [out.name for out in request.outputs]


def build_response(pb: Any, model: ServedModel, prediction: Prediction, request: Any,
                   requested: Sequence[str], into: Any = None) -> Any:
    """A ``ModelInferResponse`` with every output in ``raw_output_contents`` (filled in ``into`` when given)."""
    response = pb.ModelInferResponse() if into is None else into
    response.model_name, response.model_version, response.id = model.name, model.version, request.id
    raws = []
    for name, array in select_outputs(model, prediction, requested):
        response.outputs.add(name=name, datatype=datatype_of(array, name), shape=list(array.shape))
        raws.append(raw_contents(array))
    response.raw_output_contents.extend(raws)
    params_to_proto(prediction.parameters, response.parameters)
    return response


def build_request(pb: Any, model: str, inputs: Mapping[str, np.ndarray], parameters: Mapping[str, Any] | None,
                  version: str = "") -> Any:
    """A client's ``ModelInferRequest`` with raw input contents."""
    request = pb.ModelInferRequest(model_name=model, model_version=version)
    raws = []
    for name, value in inputs.items():
        array = np.asarray(value)
        request.inputs.add(name=name, datatype=datatype_of(array, name), shape=list(array.shape))
        raws.append(raw_contents(array))
    request.raw_input_contents.extend(raws)
    if parameters:
        params_to_proto(parameters, request.parameters)
    return request


def parse_response(response: Any) -> InferResult:
    """A client's view of a ``ModelInferResponse`` (raw or typed contents)."""
    outputs: dict[str, np.ndarray] = {}
    raw = list(response.raw_output_contents)  # one copy of each element (see parse_request)
    for index, tensor in enumerate(response.outputs):
        shape = tuple(tensor.shape)
        dtype = wire_dtype(tensor.datatype)
        head = TensorHeader(tensor.name, tensor.datatype, shape)
        if raw:
            outputs[tensor.name] = decode_raw(raw[index], head, dtype, where(index, tensor.name, "outputs"))
        elif bytes_tensors.is_bytes(tensor.datatype):
            outputs[tensor.name] = _bytes_contents(tensor.contents.bytes_contents, head,
                                                   where(index, tensor.name, "outputs"))
        else:
            values = getattr(tensor.contents, CONTENTS_FIELD[tensor.datatype.upper()])
            outputs[tensor.name] = np.array(values, dtype=dtype).reshape(shape)
    return InferResult(outputs, params_from_proto(response.parameters))


def bytes_input(raw: bytes | None, tensor: Any, head: TensorHeader, index: int) -> np.ndarray:
    """A BYTES input: length-prefixed elements in ``raw_input_contents``, or ``contents.bytes_contents``."""
    at = where(index, head.name)
    if raw is not None:
        return bytes_tensors.deserialize(raw, head.shape, f"{at}: raw_input_contents[{index}]")
    return _bytes_contents(tensor.contents.bytes_contents, head, f"{at}: contents.bytes_contents")


def _bytes_contents(values: Any, head: TensorHeader, at: str) -> np.ndarray:
    items = list(values)
    need = math.prod(head.shape)
    if len(items) != need:
        raise InvalidInputError(f"{at}: has {len(items)} values, shape {fmt_shape(head.shape)} needs {need}")
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out.reshape(head.shape)
