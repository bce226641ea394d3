"""Serve joint inference itself over the Open Inference Protocol.

:class:`JointServedModel` is a ServedModel whose ``predict`` runs every sample of
the request through :meth:`JointInference.infer`; the response parameters say
whether each sample was a hard example and where its answer was computed. Local
apps on the edge thus talk to the edge worker exactly as they would to the cloud.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sedna.backend.tensors import Prediction, TensorSpec, to_numpy_dtype
from sedna.core.joint_inference.edge import JointInference


class JointServedModel:
    """The edge model's input, the final answer as output, joint inference inside.

    Response parameters: ``hard_example`` (bool) and ``computed_at`` (``edge`` or
    ``cloud``) for a single sample; for a batch, ``hard_examples`` (count) and
    ``computed_at`` as a comma-separated list in sample order.
    """

    platform = "sedna_joint_inference"
    max_batch_size = 0
    may_block = True
    """A hard example waits for the cloud: never run on a server's event loop (see ``_repository``)."""

    def __init__(self, joint: JointInference, inputs: list[TensorSpec], output: TensorSpec, name: str,
                 version: str = "1") -> None:
        self.joint = joint
        self.name, self.version = name, version
        self.inputs = list(inputs)
        self.outputs = [output]
        self._dtype = to_numpy_dtype(output.datatype)

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        batch = inputs[self.inputs[0].name]
        rows: list[np.ndarray] = []
        hard: list[bool] = []
        where: list[str] = []
        for outcome in self.joint.infer_many([batch[i: i + 1] for i in range(batch.shape[0])]):
            rows.append(np.asarray(outcome.result, dtype=self._dtype).reshape(1, *self.outputs[0].shape[1:]))
            hard.append(outcome.is_hard_example)
            where.append(outcome.computed_at)
        result = np.concatenate(rows) if rows else np.zeros((0, *self.outputs[0].shape[1:]), self._dtype)
        params: dict[str, Any]
        if len(hard) == 1:
            params = {"hard_example": hard[0], "computed_at": where[0]}
        else:
            params = {"hard_examples": sum(hard), "computed_at": ",".join(where)}
        return Prediction({self.outputs[0].name: result}, params)
