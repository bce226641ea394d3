"""ONNX Runtime models: a :class:`~sedna.backend.tensors.ServedModel` and an estimator.

:class:`OnnxModel` loads one ``.onnx`` file into an ONNX Runtime session (checked
against a sha256 when one is given) and exposes its input/output metadata, so the
inference server can serve it with no user code. :class:`OnnxEstimator` wraps it in
the plain estimator contract (``load``, ``predict``) that ``JointInference`` uses.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sedna.backend.tensors import Prediction, TensorSpec
from sedna.common.errors import InvalidInputError, ModelLoadError

_ORT_TYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(uint8)": "UINT8",
    "tensor(int8)": "INT8",
    "tensor(uint16)": "UINT16",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(uint32)": "UINT32",
    "tensor(int64)": "INT64",
    "tensor(uint64)": "UINT64",
    "tensor(bool)": "BOOL",
}


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _spec(arg: Any) -> TensorSpec:
    datatype = _ORT_TYPES.get(arg.type)
    if datatype is None:
        raise ModelLoadError(f"tensor {arg.name!r} has type {arg.type}, which this server cannot serve")
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or []))
    return TensorSpec(arg.name, datatype, shape)



def import_onnxruntime() -> Any:
    """The ``onnxruntime`` module, imported with its telemetry off unless ``ORT_DISABLE_TELEMETRY`` says
    otherwise (with it on, importing writes a session file ``$TMPDIR/.ses`` that nothing removes)."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime

    return onnxruntime

class OnnxModel:
    """An ONNX Runtime session served under ``name`` (a ServedModel).

    Parameters
    ----------
    path:
        The ``.onnx`` file.
    name:
        The model's name in the inference protocol (defaults to the file stem).
    intra_op_threads:
        ONNX Runtime intra-op threads; 0 lets ONNX Runtime choose.
    sha256:
        Expected hex digest of the file; a mismatch refuses to load.
    max_batch_size:
        The server may batch up to this many samples along dim 0 (0 disables
        batching; by default batching is on when every input's first dim is variable).
    """

    platform = "onnxruntime_onnx"

    def __init__(self, path: str | Path, name: str | None = None, *, version: str = "1", intra_op_threads: int = 0,
                 sha256: str | None = None, max_batch_size: int | None = None) -> None:
        ort = import_onnxruntime()

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelLoadError(f"model file {str(self.path)!r} does not exist (check MODEL_URL)")
        if sha256:
            actual = sha256_of(self.path)
            if actual != sha256.lower():
                raise ModelLoadError(f"model file {str(self.path)!r} has sha256 {actual}, expected {sha256.lower()}")
        options = ort.SessionOptions()
        if intra_op_threads > 0:
            options.intra_op_num_threads = intra_op_threads
            options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt files
            raise ModelLoadError(f"model file {str(self.path)!r} is not a loadable ONNX model: {exc}") from exc
        self.name = name or self.path.stem
        self.version = version
        self.inputs = [_spec(arg) for arg in self._session.get_inputs()]
        self.outputs = [_spec(arg) for arg in self._session.get_outputs()]
        batchable = all(spec.shape and spec.shape[0] == -1 for spec in self.inputs)
        self.max_batch_size = (64 if batchable else 0) if max_batch_size is None else max_batch_size
        self._output_names = [spec.name for spec in self.outputs]

    def run(self, inputs: Mapping[str, np.ndarray], outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Run the session on named inputs; returns the named outputs (default: all) by name."""
        feed: dict[str, np.ndarray] = {}
        for spec in self.inputs:
            if spec.name not in inputs:
                raise InvalidInputError(f"missing input {spec.name!r} for model {self.name!r}")
            feed[spec.name] = inputs[spec.name]
        names = outputs or self._output_names
        results = self._session.run(names, feed)
        return dict(zip(names, results, strict=True))

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        """ServedModel entry point."""
        return Prediction(self.run(inputs))

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r}, name={self.name!r})"


class OnnxEstimator:
    """The estimator contract over an ONNX model with one input.

    ``predict(x)`` returns the output named ``output_name`` (default: the last one,
    which for scikit-learn classifiers converted with skl2onnx is the probability
    matrix). Inputs are cast to the model's input dtype.
    """

    def __init__(self, model_url: str | Path | None = None, *, output_name: str | None = None,
                 intra_op_threads: int = 0, sha256: str | None = None, name: str | None = None) -> None:
        self.output_name = output_name
        self.intra_op_threads = intra_op_threads
        self.sha256 = sha256
        self.name = name
        self.model: OnnxModel | None = None
        if model_url:
            self.load(model_url)

    def load(self, model_url: str | Path) -> None:
        """(Re)load the model file."""
        self.model = OnnxModel(model_url, self.name, intra_op_threads=self.intra_op_threads, sha256=self.sha256)
        if len(self.model.inputs) != 1:
            names = [spec.name for spec in self.model.inputs]
            raise ModelLoadError(f"OnnxEstimator needs a model with one input, {str(model_url)!r} has {names}")
        if self.output_name and self.output_name not in {spec.name for spec in self.model.outputs}:
            raise ModelLoadError(f"model {str(model_url)!r} has no output {self.output_name!r}")
        from sedna.backend.tensors import to_numpy_dtype

        spec = self.model.inputs[0]
        self._input = (spec.name, to_numpy_dtype(spec.datatype), len(spec.shape))
        self._outputs = [self.output_name or self.model.outputs[-1].name]

    def predict(self, data: Any, **_: Any) -> np.ndarray:
        """Run one input array (a batch, or a single sample that gets a batch dim of 1)."""
        if self.model is None:
            raise ModelLoadError("OnnxEstimator.predict called before load(); set MODEL_URL")
        name, dtype, rank = self._input
        array = np.asarray(data, dtype=dtype)
        if array.ndim == rank - 1:
            array = array[np.newaxis, ...]
        return self.model._session.run(self._outputs, {name: array})[0]  # the hot path: one session call
