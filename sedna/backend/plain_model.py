"""A plain estimator (Sedna's big model: a class with ``load``/``predict``) as a ServedModel.

Sedna's big models declare no tensors: its server hands the estimator the request's JSON
``data`` and answers with whatever ``predict`` returns. :class:`PlainEstimatorModel` keeps
that contract on both paths of the inference server:

- Sedna's ``POST /{name}/predict`` calls :meth:`PlainEstimatorModel.sedna_predict` with the
  JSON ``data`` as it came (a nested list) and the optional ``callback`` (a registered
  post-process name, as Sedna's ``InferenceItem`` carries it); the result goes back as JSON.
- Open Inference Protocol requests (REST or gRPC) may carry any one tensor: the model declares
  no inputs or outputs (dynamic signature), so the server takes the tensor's own datatype
  and shape. ``predict`` receives the numpy array, or for ``BYTES`` the nested list of
  strings its JSON would have been; its result becomes the output ``result`` (numbers as
  their numpy dtype, strings as ``BYTES``).

Requests are not batched: nothing says a plain ``predict`` treats dim 0 as a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from sedna.backend import bytes_tensors
from sedna.backend.tensors import Prediction, TensorSpec
from sedna.common.class_factory import resolve_callable
from sedna.common.errors import InvalidInputError, RegistryError

OUTPUT = "result"
"""The name of the single output (Sedna's response key)."""


class PlainEstimatorModel:
    """Serves ``infer(data, post_process=None)`` (e.g. ``BigModelService.inference``) with no declared tensors."""

    platform = "python"
    max_batch_size = 0
    inputs: Sequence[TensorSpec] = ()
    outputs: Sequence[TensorSpec] = ()

    def __init__(self, infer: Callable[..., Any], name: str, version: str = "1") -> None:
        self._infer = infer
        self.name, self.version = name, version
        self.inputs, self.outputs = (), ()

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        if len(inputs) != 1:
            names = ", ".join(repr(n) for n in inputs)
            raise InvalidInputError(f"inputs: model {self.name!r} takes exactly one tensor, got {len(inputs)} "
                                    f"({names})")
        (array,) = inputs.values()
        data = bytes_tensors.to_text(array) if bytes_tensors.is_text_array(array) else array
        return Prediction({OUTPUT: result_array(self._infer(data), self.name)})

    def sedna_predict(self, data: Any, callback: Any = None) -> Any:
        """Sedna's ``/predict``: the estimator's answer for JSON ``data``, post-processed by ``callback``."""
        if callback is not None and not isinstance(callback, str):
            raise InvalidInputError(f"callback: must be the name of a registered callback, got {callback!r}")
        try:
            post_process = resolve_callable(callback)
        except RegistryError as exc:
            raise InvalidInputError(f"callback: {exc}") from None
        return self._infer(data, post_process=post_process)


def result_array(result: Any, model: str) -> np.ndarray:
    """An estimator's answer as a tensor: numbers keep their dtype, strings become BYTES."""
    if isinstance(result, (str, bytes)):
        result = [result]
    try:
        array = np.asarray(result)
    except ValueError as exc:
        raise RuntimeError(f"model {model!r} returned a ragged result that is no tensor ({exc}); "
                           f"use Sedna's /predict for free-form results") from None
    if array.dtype.kind in "US" or (array.dtype == object and _all_text(array)):
        return bytes_tensors.as_bytes_array(array, f"model {model!r} result")
    if array.dtype == object:
        raise RuntimeError(f"model {model!r} returned {type(result).__name__} elements that are neither numbers "
                           f"nor text; use Sedna's /predict for free-form results")
    return array


def _all_text(array: np.ndarray) -> bool:
    return all(isinstance(v, (str, bytes)) for v in array.reshape(-1))


__all__ = ["OUTPUT", "PlainEstimatorModel", "result_array"]
