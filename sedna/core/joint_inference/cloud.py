"""The cloud side of joint inference: a client view of the big model, and BigModelService.

:class:`CloudModel` turns one input array into an Open Inference Protocol request
to the cloud worker (gRPC by default, REST on request), learning the model's input
name and datatype from its metadata on first use; a model that declares no inputs (a
plain estimator) is sent the array as it is, as tensor ``data``. :func:`connect_cloud`
picks the client the env asks for, Sedna's REST ``/predict`` included
(:mod:`.sedna_rest`). :class:`BigModelService` serves an estimator (an ONNX model, or
a plain class with ``load``/``predict`` as Sedna's big models are) with the inference server.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from sedna.backend import bytes_tensors
from sedna.backend.tensors import Prediction, TensorSpec, to_numpy_dtype
from sedna.common.config import WorkerConfig
from sedna.common.errors import CloudUnavailableError, InferenceError, InvalidInputError
from sedna.common.log import get_logger
from sedna.core.joint_inference.offload_batching import OffloadBatcher, send_one_by_one

LOG = get_logger(__name__)
ANY_INPUT = TensorSpec("data", "", ())
"""What :class:`CloudModel` sends to a model that declares no inputs: the array as it is, named ``data``."""


def connect_cloud(config: WorkerConfig) -> Any:
    """The client of the big model the env names, by ``BIG_MODEL_PROTOCOL`` (see WorkerConfig)."""
    if config.big_model_protocol == "sedna":
        from sedna.core.joint_inference.sedna_rest import SednaRestModel

        return SednaRestModel.from_config(config)
    return CloudModel.from_config(config)


class CloudModel:
    """One model on the cloud inference server, called with a single input array.

    Concurrent calls travel together (:class:`~.offload_batching.OffloadBatcher`, up to
    ``max_batch`` rows per request) when the model's metadata declares a variable first
    dimension (``-1``) of a numeric input; ``max_batch=1`` sends every call on its own.
    """

    def __init__(self, client: Any, model_name: str, output_name: str | None = None, *,
                 max_batch: int = 32, max_in_flight: int = 2) -> None:
        self._client = client
        self.model_name = model_name
        self.output_name = output_name
        self._input: TensorSpec | None = None
        self._lock = threading.Lock()
        self.batcher = OffloadBatcher(self._send, max_batch, max_in_flight)

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
        return cls(client, config.service_name or "model", output_name, max_batch=config.big_model_max_batch)

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
            if meta.get("inputs"):
                first = meta["inputs"][0]
                spec = TensorSpec(first["name"], first["datatype"], tuple(int(d) for d in first["shape"]))
            else:
                spec = ANY_INPUT
            last_output = meta["outputs"][-1]["name"] if meta.get("outputs") else None
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise InferenceError(f"cloud model {self.model_name!r} sent unusable metadata "
                                 f"(expected inputs and outputs with name, datatype, shape): {exc!r}") from None
        with self._lock:
            if self._input is None:
                self._input = spec
                if self.output_name is None:
                    self.output_name = last_output
            return self._input

    def predict(self, data: Any, timeout: float | None = None) -> Any:
        """The cloud's answer for ``data`` (a sample or a batch): an array, or for BYTES a (nested) list of
        strings; raises InferenceError subclasses."""
        answer = self.predict_each([data], timeout)[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def predict_each(self, samples: Sequence[Any], timeout: float | None = None) -> list[Any]:
        """The cloud's answer for each of ``samples``, or the InferenceError (or OSError) its request
        raised, in order; samples that fit together go in one request."""
        try:
            spec = self._input_spec(timeout)
        except (InferenceError, OSError) as exc:
            return [exc] * len(samples)
        answers: list[Any] = [None] * len(samples)
        ready: list[tuple[int, np.ndarray]] = []
        for i, data in enumerate(samples):
            try:
                ready.append((i, self._as_request(spec, data)))
            except InvalidInputError as exc:
                answers[i] = exc
        arrays = [array for _, array in ready]
        if self._batches(spec):
            sent = self.batcher.submit(arrays, timeout)
        else:
            sent = send_one_by_one(lambda array: self._send(array, timeout), arrays)
        for (i, _), answer in zip(ready, sent, strict=True):
            answers[i] = answer if isinstance(answer, BaseException) else self._finish(answer)
        return answers

    def _batches(self, spec: TensorSpec) -> bool:
        """Whether requests for this model may carry several samples (numeric input, variable dim 0)."""
        return (self.batcher.max_batch > 1 and spec is not ANY_INPUT and bool(spec.shape)
                and spec.shape[0] == -1 and not bytes_tensors.is_bytes(spec.datatype))

    @staticmethod
    def _as_request(spec: TensorSpec, data: Any) -> np.ndarray:
        if spec is ANY_INPUT:
            array = np.asarray(data)
        elif bytes_tensors.is_bytes(spec.datatype):
            array = bytes_tensors.as_bytes_array(data, f"input {spec.name!r}")
        else:
            array = np.asarray(data, dtype=to_numpy_dtype(spec.datatype))
        if spec.shape and array.ndim == len(spec.shape) - 1:
            array = array[np.newaxis, ...]
        return array

    def _send(self, array: np.ndarray, timeout: float | None) -> Any:
        """One request: the selected output for ``array``."""
        spec = self._input_spec(timeout)
        result = self._client.infer(self.model_name, {spec.name: array}, timeout=timeout)
        name = self.output_name if self.output_name is not None else next(iter(result.outputs), None)
        try:
            return result.outputs[name]
        except KeyError:
            raise InferenceError(f"cloud model {self.model_name!r} returned no output {name!r}") from None

    @staticmethod
    def _finish(output: Any) -> Any:
        return bytes_tensors.to_text(output) if bytes_tensors.is_text_array(output) else output

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
    :class:`~sedna.backend.onnx.OnnxEstimator`, or a plain class (or instance) with
    ``predict`` and optionally ``load``, as Sedna's big models are. A plain estimator is
    loaded from ``MODEL_URL`` and served with no declared tensors (see
    :mod:`sedna.backend.plain_model`), unless ``inputs``/``outputs`` describe its tensors.

    Addresses come from the env contract: ``BIG_MODEL_BIND_IP``, ``BIG_MODEL_BIND_PORT``
    (REST: the Open Inference Protocol and Sedna's ``POST /{name}/predict``, where
    ``{name}`` is ``SERVICE_NAME`` or ``JOB_NAME``, default ``sedna``, as a Sedna edge
    posts), ``BIG_MODEL_GRPC_PORT`` (gRPC). When ``BIG_MODEL_GRPC_PORT`` is unset and its
    default port is taken, the service serves REST only and says so.
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
        from sedna.backend.adapter import EstimatorAdapter
        from sedna.backend.plain_model import PlainEstimatorModel

        adapter = EstimatorAdapter(self.estimator)
        self._load(adapter)
        self.estimator = adapter.instance  # Sedna instantiates the class once, at start
        inputs, outputs = self._specs
        if inputs is None and outputs is None:
            return PlainEstimatorModel(self.inference, name)
        if inputs is None or outputs is None:
            raise ValueError("BigModelService: give both inputs= and outputs= tensor specs, or neither "
                             "(a plain estimator is then served with no declared tensors)")
        return EstimatorModel(self.estimator, name, inputs, outputs)

    def _load(self, adapter: Any) -> None:
        """Sedna's start: ``load(MODEL_URL)``; a missing file fails here, naming it."""
        url = self.config.model_url
        if not url or not adapter.has("load"):
            return
        mode = self.config.environ.get("MODEL_LOAD_MODE") or "file"
        if mode == "file" and "://" not in url and not os.path.exists(url):
            raise FileNotFoundError(f"MODEL_URL={url!r} does not exist (the big model's file)")
        adapter.load(url)

    def sedna_names(self) -> list[str]:
        """The ``{name}`` segments Sedna's ``/{name}/predict`` answers to: SERVICE_NAME and JOB_NAME (or ``sedna``)."""
        from sedna.core.joint_inference.sedna_rest import DEFAULT_JOB_NAME

        names = [self.config.service_name, self.config.environ.get("JOB_NAME") or DEFAULT_JOB_NAME]
        return list(dict.fromkeys(n for n in names if n))

    def start(self, block: bool = True) -> Any:
        """Start serving; with ``block`` (Sedna's behaviour) serve until SIGTERM/SIGINT."""
        from sedna.service.inference import BatchingConfig, InferenceServer

        cfg = self.config
        model = self.served_model()

        def server(grpc_port: int | None) -> Any:
            return InferenceServer(
                [model], host=cfg.big_model_bind_ip, rest_port=cfg.big_model_bind_port, grpc_port=grpc_port,
                token=cfg.big_model_token or None,
                batching=BatchingConfig(max_batch_size=self.max_batch_size,
                                        max_queue_delay_ms=self.max_queue_delay_ms),
                sedna_service_name=self.sedna_names(), reuse_port=self.reuse_port,
            )

        self.server = server(cfg.big_model_grpc_port)
        try:
            self.server.start()
        except (OSError, RuntimeError) as exc:  # grpc raises RuntimeError when it cannot bind
            if cfg.environ.get("BIG_MODEL_GRPC_PORT") or self.server.grpc_port is not None:
                raise
            LOG.warning("gRPC stays off: its default port %d cannot be bound (%s); serving REST only on %d "
                        "(set BIG_MODEL_GRPC_PORT to serve gRPC)", cfg.big_model_grpc_port, exc,
                        cfg.big_model_bind_port)
            self.server = server(None)
            self.server.start()
        if block:
            self.server.serve_forever()
        return self.server

    def inference(self, data: Any, post_process: Any = None, **kwargs: Any) -> Any:
        """Run the estimator locally (Sedna's API)."""
        from sedna.backend.adapter import EstimatorAdapter
        from sedna.common.class_factory import resolve_callable

        result = EstimatorAdapter(self.estimator).predict(data, **kwargs)
        callback = resolve_callable(post_process)
        return callback(result) if callback is not None else result


__all__ = ["BigModelService", "CloudModel", "CloudUnavailableError", "EstimatorModel"]
