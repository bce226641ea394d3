"""The cloud side of joint inference: a client view of the big model, and BigModelService.

:class:`CloudModel` turns one input array into an Open Inference Protocol request
to the cloud worker (gRPC by default, REST on request), learning the model's input
name and datatype from its metadata on first use. :class:`BigModelService` serves
an estimator (an ONNX model by default) with the inference server.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from sedna.backend.tensors import Prediction, TensorSpec, to_numpy_dtype
from sedna.common.config import WorkerConfig
from sedna.common.errors import CloudUnavailableError, InferenceError


class CloudModel:
    """One model on the cloud inference server, called with a single input array."""

    def __init__(self, client: Any, model_name: str, output_name: str | None = None) -> None:
        self._client = client
        self.model_name = model_name
        self.output_name = output_name
        self._input: TensorSpec | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: WorkerConfig, output_name: str | None = None) -> CloudModel:
        """The cloud model named ``SERVICE_NAME`` at ``BIG_MODEL_IP`` over ``BIG_MODEL_PROTOCOL``."""
        from sedna.service.inference import GrpcInferenceClient, RestInferenceClient

        token = config.big_model_token or None
        client: Any
        if config.big_model_protocol == "rest":
            client = RestInferenceClient(f"http://{config.big_model_ip}:{config.big_model_port}", token=token)
        else:
            client = GrpcInferenceClient(config.big_model_ip, config.big_model_grpc_port, token=token)
        return cls(client, config.service_name or "model", output_name)

    def _input_spec(self, timeout: float | None) -> TensorSpec:
        """The model's input, from its metadata on first use (fetched within the caller's ``timeout``).

        No lock is held while the metadata is fetched, so a slow or dead cloud never makes other
        requests wait behind the first one; requests racing on a cold start each fetch it and agree.
        """
        spec = self._input
        if spec is not None:
            return spec
        meta = self._client.model_metadata(self.model_name, timeout=timeout)
        try:
            first = meta["inputs"][0]
            spec = TensorSpec(first["name"], first["datatype"], tuple(int(d) for d in first["shape"]))
            last_output = meta["outputs"][-1]["name"]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise InferenceError(f"cloud model {self.model_name!r} sent unusable metadata "
                                 f"(expected inputs and outputs with name, datatype, shape): {exc!r}") from None
        with self._lock:
            if self._input is None:
                self._input = spec
                if self.output_name is None:
                    self.output_name = last_output
            return self._input

    def predict(self, data: Any, timeout: float | None = None) -> np.ndarray:
        """The cloud's answer for ``data`` (a sample or a batch); raises InferenceError subclasses."""
        spec = self._input_spec(timeout)
        array = np.asarray(data, dtype=to_numpy_dtype(spec.datatype))
        if array.ndim == len(spec.shape) - 1:
            array = array[np.newaxis, ...]
        result = self._client.infer(self.model_name, {spec.name: array}, timeout=timeout)
        try:
            return result.outputs[self.output_name]
        except KeyError:
            raise InferenceError(f"cloud model {self.model_name!r} returned no output {self.output_name!r}") from None

    def close(self) -> None:
        close = getattr(self._client, "close", None)
        if close:
            close()


class EstimatorModel:
    """Serves a plain estimator's ``predict`` as a one-input, one-output ServedModel."""

    platform = "python"

    def __init__(self, estimator: Any, name: str, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec],
                 max_batch_size: int = 0) -> None:
        from sedna.backend.adapter import EstimatorAdapter

        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError("EstimatorModel serves exactly one input and one output tensor")
        self._estimator = EstimatorAdapter(estimator)
        self.name, self.version = name, "1"
        self.inputs, self.outputs = list(inputs), list(outputs)
        self.max_batch_size = max_batch_size

    def predict(self, inputs: Any) -> Prediction:
        out_spec = self.outputs[0]
        result = self._estimator.predict(inputs[self.inputs[0].name])
        return Prediction({out_spec.name: np.asarray(result, dtype=to_numpy_dtype(out_spec.datatype))})


class BigModelService:
    """Runs the cloud inference server for ``estimator``.

    ``estimator`` may be an :class:`~sedna.backend.onnx.OnnxModel`, an
    :class:`~sedna.backend.onnx.OnnxEstimator`, or a plain class with ``predict``
    (then ``inputs``/``outputs`` describe its tensors). Addresses come from the env
    contract: ``BIG_MODEL_BIND_IP``, ``BIG_MODEL_BIND_PORT`` (REST), ``BIG_MODEL_GRPC_PORT``.
    ``reuse_port`` lets several server processes share those ports
    (:mod:`sedna.service.inference.replicas`).
    """

    def __init__(self, estimator: Any, config: WorkerConfig | None = None, *,
                 inputs: Sequence[TensorSpec] | None = None, outputs: Sequence[TensorSpec] | None = None,
                 max_batch_size: int = 32, max_queue_delay_ms: float = 2.0, reuse_port: bool = False) -> None:
        self.config = config or WorkerConfig.from_env()
        self.reuse_port = reuse_port
        self.estimator = estimator
        self._specs = (inputs, outputs)
        self.max_batch_size = max_batch_size
        self.max_queue_delay_ms = max_queue_delay_ms
        self.server: Any = None

    def served_model(self) -> Any:
        """The ServedModel for the estimator, loading it from ``MODEL_URL`` when needed."""
        from sedna.backend.onnx import OnnxEstimator, OnnxModel

        cfg = self.config
        name = cfg.service_name or "model"
        if isinstance(self.estimator, OnnxModel):
            return self.estimator
        if isinstance(self.estimator, OnnxEstimator) or self.estimator is OnnxEstimator:
            return OnnxModel(cfg.model_url, name, intra_op_threads=cfg.intra_op_threads,
                             sha256=cfg.model_sha256 or None)
        inputs, outputs = self._specs
        if inputs is None or outputs is None:
            raise ValueError("BigModelService needs inputs= and outputs= tensor specs for a non-ONNX estimator")
        model = EstimatorModel(self.estimator, name, inputs, outputs)
        if cfg.model_url and model._estimator.has("load"):
            model._estimator.load(cfg.model_url)
        return model

    def start(self, block: bool = True) -> Any:
        """Start serving; with ``block`` (Sedna's behaviour) serve until SIGTERM/SIGINT."""
        from sedna.service.inference import BatchingConfig, InferenceServer

        cfg = self.config
        model = self.served_model()
        self.server = InferenceServer(
            [model], host=cfg.big_model_bind_ip, rest_port=cfg.big_model_bind_port,
            grpc_port=cfg.big_model_grpc_port, token=cfg.big_model_token or None,
            batching=BatchingConfig(max_batch_size=self.max_batch_size, max_queue_delay_ms=self.max_queue_delay_ms),
            sedna_service_name=cfg.service_name or None, reuse_port=self.reuse_port,
        )
        if block:
            self.server.start()
            self.server.serve_forever()
        else:
            self.server.start()
        return self.server

    def inference(self, data: Any, post_process: Any = None, **kwargs: Any) -> Any:
        """Run the estimator locally (Sedna's API)."""
        from sedna.backend.adapter import EstimatorAdapter
        from sedna.common.class_factory import resolve_callable

        result = EstimatorAdapter(self.estimator).predict(data, **kwargs)
        callback = resolve_callable(post_process)
        return callback(result) if callback is not None else result


__all__ = ["BigModelService", "CloudModel", "CloudUnavailableError", "EstimatorModel"]
