"""Protocol-independent checks of inference requests against a model's signature.

The REST (``_rest_codec``) and gRPC (``_grpc_codec``) front ends parse their wire
format into :class:`TensorHeader` s plus a per-input ``decode`` callback; this module
checks names, datatypes and shapes against the model's :class:`TensorSpec` s in a
fixed order (name, datatype, shape, then data size, which the decoder checks) so
both protocols reject bad input with the same message, naming the field, e.g.
``inputs[0] 'x': shape [2,3] does not match model input [-1,64]``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sedna.backend import bytes_tensors
from sedna.backend.tensors import Prediction, ServedModel, TensorSpec, from_numpy_dtype, to_numpy_dtype
from sedna.common.errors import InvalidInputError


@dataclass(frozen=True)
class TensorHeader:
    """What a request says about one input tensor, before its data is decoded."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass
class InferResult:
    """A client's view of an inference response."""

    outputs: dict[str, np.ndarray]
    """Output tensors by name."""
    parameters: dict[str, Any] = field(default_factory=dict)
    """Response parameters (the model's ``Prediction.parameters``)."""


Decoder = Callable[[int, TensorHeader, np.dtype], np.ndarray]
"""``decode(index, header, dtype)`` returns the input's array or raises InvalidInputError."""


def fmt_shape(shape: Sequence[int]) -> str:
    """``[2,3]``: the compact shape notation used in error messages."""
    return "[" + ",".join(str(int(d)) for d in shape) + "]"


def where(index: int, name: str, kind: str = "inputs") -> str:
    """``inputs[0] 'x'``: how error messages name a tensor of a request."""
    return f"{kind}[{index}] {name!r}"


def parse_shape(raw: Any, field_name: str) -> tuple[int, ...]:
    """A shape from the wire: a list of non-negative integers."""
    if not isinstance(raw, (list, tuple)) or not all(isinstance(d, int) and not isinstance(d, bool) for d in raw):
        raise InvalidInputError(f"{field_name}: shape must be a list of integers, got {raw!r}")
    if any(d < 0 for d in raw):
        raise InvalidInputError(f"{field_name}: shape {fmt_shape(raw)} has a negative dimension")
    return tuple(int(d) for d in raw)


def expected_bytes(header: TensorHeader, dtype: np.dtype) -> int:
    """prod(shape) * itemsize: the raw byte size a tensor must have."""
    return math.prod(header.shape) * dtype.itemsize


def bind_inputs(model: ServedModel, headers: Sequence[TensorHeader], decode: Decoder) -> dict[str, np.ndarray]:
    """Check ``headers`` against ``model.inputs`` and decode every tensor.

    Raises
    ------
    InvalidInputError
        Unknown, duplicated or missing input; datatype or shape that the model does
        not accept; a batch of zero rows; data whose size does not match the shape (from ``decode``).
    """
    if not model.inputs:
        return bind_any_inputs(headers, decode)
    specs: dict[str, TensorSpec] = {spec.name: spec for spec in model.inputs}
    arrays: dict[str, np.ndarray] = {}
    for index, header in enumerate(headers):
        spec = specs.get(header.name)
        if spec is None:
            known = ", ".join(repr(name) for name in specs)
            raise InvalidInputError(f"{where(index, header.name)}: model {model.name!r} has no input named "
                                    f"{header.name!r} (inputs: {known})")
        if header.name in arrays:
            raise InvalidInputError(f"{where(index, header.name)}: input {header.name!r} is given twice")
        if header.datatype != spec.datatype and header.datatype.upper() != spec.datatype.upper():
            raise InvalidInputError(f"{where(index, header.name)}: datatype {header.datatype!r} does not match "
                                    f"model input {spec.datatype!r}")
        if not spec.accepts_shape(header.shape):
            raise InvalidInputError(f"{where(index, header.name)}: shape {fmt_shape(header.shape)} does not match "
                                    f"model input {fmt_shape(spec.shape)}")
        if header.shape and header.shape[0] == 0 and spec.shape and spec.shape[0] == -1:
            raise InvalidInputError(f"{where(index, header.name)}: shape {fmt_shape(header.shape)} has no rows "
                                    "(a request needs at least one sample)")
        arrays[header.name] = decode(index, header, wire_dtype(spec.datatype))
    if len(arrays) != len(specs):
        names = ", ".join(repr(name) for name in specs if name not in arrays)
        raise InvalidInputError(f"inputs: missing input(s) {names} of model {model.name!r}")
    if model.max_batch_size > 0:
        _check_batch_dim(arrays)
    return arrays


def bind_any_inputs(headers: Sequence[TensorHeader], decode: Decoder) -> dict[str, np.ndarray]:
    """Decode the tensors of a request to a model that declares no inputs (any names, datatypes, shapes).

    A plain estimator served without tensor specs is such a model (MLServer's convention
    for a model with no metadata): it takes whatever the request carries.
    """
    if not headers:
        raise InvalidInputError("inputs: must be a non-empty list of tensors")
    arrays: dict[str, np.ndarray] = {}
    for index, header in enumerate(headers):
        if header.name in arrays:
            raise InvalidInputError(f"{where(index, header.name)}: input {header.name!r} is given twice")
        try:
            dtype = wire_dtype(header.datatype)
        except ValueError as exc:
            raise InvalidInputError(f"{where(index, header.name)}: {exc}") from None
        arrays[header.name] = decode(index, header, dtype)
    return arrays


@functools.lru_cache(maxsize=64)
def wire_dtype(datatype: str) -> np.dtype:
    """The little-endian numpy dtype that tensors of OIP ``datatype`` travel as (``object`` for BYTES)."""
    if bytes_tensors.is_bytes(datatype):
        return np.dtype(object)
    return to_numpy_dtype(datatype).newbyteorder("<")


def _check_batch_dim(arrays: Mapping[str, np.ndarray]) -> None:
    if len(arrays) == 1:  # the common case: one input, only its rank matters
        (arr,) = arrays.values()
        if arr.ndim:
            return
    sizes = {name: (arr.shape[0] if arr.ndim else None) for name, arr in arrays.items()}
    scalar = [name for name, size in sizes.items() if size is None]
    if scalar:
        raise InvalidInputError(f"inputs: {scalar[0]!r} has no batch dimension (the model batches along dim 0)")
    if len(set(sizes.values())) > 1:
        detail = ", ".join(f"{name!r}={size}" for name, size in sizes.items())
        raise InvalidInputError(f"inputs: batch dimensions differ ({detail})")


def select_outputs(
    model: ServedModel, prediction: Prediction, requested: Sequence[str] = ()
) -> list[tuple[str, np.ndarray]]:
    """The outputs to answer with: the ``requested`` names in order, else every output."""
    names = list(requested) if requested else list(prediction.outputs)
    selected: list[tuple[str, np.ndarray]] = []
    for index, name in enumerate(names):
        if name not in prediction.outputs:
            known = ", ".join(repr(n) for n in prediction.outputs)
            raise InvalidInputError(f"{where(index, name, 'outputs')}: model {model.name!r} has no output named "
                                    f"{name!r} (outputs: {known})")
        selected.append((name, np.asarray(prediction.outputs[name])))
    return selected


def datatype_of(array: np.ndarray, name: str) -> str:
    """The OIP datatype of an output array (text is BYTES); a model bug (e.g. datetimes) is named clearly."""
    if bytes_tensors.is_text_array(array):
        return bytes_tensors.BYTES
    try:
        return from_numpy_dtype(array.dtype)
    except ValueError as exc:
        raise RuntimeError(f"output {name!r}: {exc}") from None


def model_metadata(model: ServedModel) -> dict[str, Any]:
    """The OIP model metadata object of ``model``."""
    def tensors(specs: Sequence[TensorSpec]) -> list[dict[str, Any]]:
        return [{"name": s.name, "datatype": s.datatype, "shape": list(s.shape)} for s in specs]

    return {
        "name": model.name,
        "versions": [model.version] if model.version else [],
        "platform": model.platform,
        "inputs": tensors(model.inputs),
        "outputs": tensors(model.outputs),
    }


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into plain Python (for JSON parameters)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def raw_contents(array: np.ndarray) -> bytes:
    """A tensor's raw wire bytes: little-endian row-major values, or length-prefixed elements for BYTES."""
    if bytes_tensors.is_text_array(array):
        return bytes_tensors.serialize(array)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def json_contents(array: np.ndarray, name: str) -> list[Any]:
    """A tensor's flat JSON ``data`` list: numbers, or strings for BYTES."""
    if bytes_tensors.is_text_array(array):
        try:
            return bytes_tensors.to_json(array, f"output {name!r}")
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from None
    return list(array.ravel().tolist())


def decode_raw(data: bytes | memoryview, head: TensorHeader, dtype: np.dtype, at: str) -> np.ndarray:
    """A tensor from raw wire bytes whose size is already checked (BYTES: parsed and counted here)."""
    if bytes_tensors.is_bytes(head.datatype):
        return bytes_tensors.deserialize(data, head.shape, at)
    return np.frombuffer(data, dtype=dtype).reshape(head.shape)
