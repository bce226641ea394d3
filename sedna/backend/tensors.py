"""Tensor metadata shared by estimators, servers and clients.

Datatype names are the Open Inference Protocol's (``FP32``, ``UINT8``, ...), the
names KServe and Triton use; :func:`to_numpy_dtype` / :func:`from_numpy_dtype`
convert. A shape dimension of ``-1`` is variable (the batch dimension, usually).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

_OIP_TO_NUMPY: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
}
_NUMPY_TO_OIP = {v: k for k, v in _OIP_TO_NUMPY.items()}


def to_numpy_dtype(datatype: str) -> np.dtype[Any]:
    """The numpy dtype of an OIP datatype name; ``ValueError`` names unsupported ones (e.g. BYTES)."""
    try:
        return _OIP_TO_NUMPY[datatype.upper()]
    except KeyError:
        known = ", ".join(_OIP_TO_NUMPY)
        raise ValueError(f"unsupported datatype {datatype!r} (supported: {known})") from None


def from_numpy_dtype(dtype: Any) -> str:
    """The OIP datatype name of a numpy dtype."""
    try:
        return _NUMPY_TO_OIP[np.dtype(dtype)]
    except KeyError:
        raise ValueError(f"numpy dtype {np.dtype(dtype)} has no Open Inference Protocol datatype") from None


@dataclass(frozen=True)
class TensorSpec:
    """A named tensor's datatype and shape (``-1`` for a variable dimension)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def accepts_shape(self, shape: Sequence[int]) -> bool:
        """Whether a concrete ``shape`` fits this spec."""
        if len(shape) != len(self.shape):
            return False
        return all(want < 0 or want == got for want, got in zip(self.shape, shape, strict=True))


@dataclass
class Prediction:
    """A model's answer: output tensors by name, plus response parameters (e.g. ``hard_example``)."""

    outputs: dict[str, np.ndarray]
    parameters: dict[str, Any] = field(default_factory=dict)


class ServedModel(Protocol):
    """What an inference server serves: metadata plus a batched ``predict``.

    ``max_batch_size`` > 0 means the first dimension of every input and output is
    the batch dimension and the server may concatenate requests up to that size;
    0 means requests are run one by one, as given.
    """

    name: str
    version: str
    platform: str
    inputs: Sequence[TensorSpec]
    outputs: Sequence[TensorSpec]
    max_batch_size: int

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        """Run the model on named inputs."""
        ...
