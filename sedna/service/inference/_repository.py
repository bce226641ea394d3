"""The served models, and the one code path every inference request takes.

:class:`ModelRepository` looks models up by name (and version), runs a request
either through the model's :class:`~._batching.Batcher` or directly in the calling
thread, and counts requests and failures. The REST (``_rest``) and gRPC (``_grpc``)
front ends only translate wire formats and error codes around it, so both protocols
behave the same.

Idle fast path: a model that does not batch runs on a pool thread so the front end's
event loop never waits for it; but when the request is the only one its front end has
in flight (still so after one more turn of the loop, which lets requests that arrived
meanwhile be counted) and each of the model's last :data:`COST_WINDOW` ``predict`` calls
took under :data:`INLINE_MAX_SECONDS`, it runs on the event loop at once. Nobody else is
waiting then, and the two thread hops saved (to the pool and back) were a fifth of a
150 KB image's round trip (``bench.joint_inference``, ``transport_vs_floor_ratio``). Under
concurrency the pool is used as before, so requests still run in parallel; a model whose
``predict`` may wait on the network (it sets ``may_block = True``, as the edge's joint
inference does) never runs on the loop.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import time
from collections.abc import Mapping, Sequence

import numpy as np

from sedna.backend.tensors import Prediction, ServedModel
from sedna.common.errors import InvalidInputError, ModelNotFoundError

from ._batching import Batcher, BatchObserver
from ._config import BatchingConfig
from ._metrics import UNKNOWN_MODEL, ServerMetrics

INLINE_MAX_SECONDS = 0.005
"""``predict`` time under which an idle front end may run a non-batching model on its event loop."""
COST_WINDOW = 8
"""How many recent ``predict`` times of a model must all be under :data:`INLINE_MAX_SECONDS`."""


class FrontEndLoad:
    """Inference requests of one front end in flight; they all run on its one event loop."""

    def __init__(self) -> None:
        self.active = 0

    async def alone(self) -> bool:
        """Whether the caller (counted in :attr:`active`) is the only request, after one loop turn."""
        if self.active != 1:
            return False
        await asyncio.sleep(0)  # requests that arrived meanwhile start and are counted
        return self.active == 1

SERVER_NAME = "sedna-inference"
"""The ``name`` of the server metadata (REST ``GET /v2``, gRPC ServerMetadata)."""
EXTENSIONS = ["binary_tensor_data", "sedna_predict"]
"""OIP extensions this server supports."""


class ModelRepository:
    """Models by name, their batchers and the server's metrics."""

    def __init__(self, models: Sequence[ServedModel], batching: BatchingConfig | None,
                 metrics: ServerMetrics) -> None:
        if not models:
            raise ValueError("InferenceServer needs at least one model to serve")
        self.models: dict[str, ServedModel] = {}
        for model in models:
            if model.name in self.models:
                raise ValueError(f"two served models are named {model.name!r}; model names must be unique")
            self.models[model.name] = model
        self.metrics = metrics
        self.batching = batching
        self._batchers: dict[str, Batcher] = {}
        self._observers: dict[str, BatchObserver] = {}
        self._costs: dict[str, collections.deque[float]] = {}  # model -> last predict seconds (no batcher)

    def open(self) -> None:
        """Start a batcher for every model that batches."""
        if self.batching is None or self.batching.max_batch_size == 0:
            return
        for model in self.models.values():
            if model.max_batch_size > 0 and model.name not in self._batchers:
                self._batchers[model.name] = Batcher(
                    model, self.batching.max_batch_size, self.batching.max_queue_delay_ms, self.batching.workers,
                    observe=self.metrics.observer(model.name), adaptive=self.batching.adaptive,
                )

    def close(self) -> None:
        """Stop the batchers once their queued requests have run."""
        batchers, self._batchers = self._batchers, {}
        for batcher in batchers.values():
            batcher.close()

    @property
    def first(self) -> ServedModel:
        """The first model given to the server."""
        return next(iter(self.models.values()))

    def get(self, name: str, version: str = "") -> ServedModel:
        """The model called ``name`` (at ``version`` when one is given)."""
        model = self.models.get(name)
        if model is None:
            known = ", ".join(repr(n) for n in self.models)
            raise ModelNotFoundError(f"model {name!r} is not served here (models: {known})")
        if version and version != model.version:
            raise ModelNotFoundError(f"model {name!r} has no version {version!r} (versions: {model.version!r})")
        return model

    def metrics_name(self, name: str) -> str:
        """The ``model`` label for a requested name (unknown names share one label)."""
        return name if name in self.models else UNKNOWN_MODEL

    def infer(self, model: ServedModel, inputs: Mapping[str, np.ndarray]) -> Prediction:
        """Run validated ``inputs`` through ``model``, batched when it batches; blocks until done."""
        batcher = self._batchers.get(model.name)
        if batcher is not None:
            return batcher.submit(inputs).result()
        started = time.monotonic()
        try:
            return model.predict(inputs)
        finally:
            seconds = time.monotonic() - started
            size = next(iter(inputs.values())).shape[0] if model.max_batch_size > 0 and inputs else 1
            observe = self._observers.get(model.name)
            if observe is None:
                observe = self._observers[model.name] = self.metrics.observer(model.name)
            observe(int(size), [0.0], seconds)
            costs = self._costs.get(model.name)
            if costs is None:
                costs = self._costs[model.name] = collections.deque(maxlen=COST_WINDOW)
            costs.append(seconds)

    def runs_inline(self, model: ServedModel) -> bool:
        """Whether ``model`` is cheap enough to run on an idle front end's event loop (see the module docstring)."""
        if model.name in self._batchers or getattr(model, "may_block", False):
            return False
        costs = self._costs.get(model.name)
        return costs is not None and len(costs) == COST_WINDOW and max(costs) < INLINE_MAX_SECONDS

    async def infer_async(self, model: ServedModel, inputs: Mapping[str, np.ndarray],
                          executor: concurrent.futures.Executor, alone: bool = False) -> Prediction:
        """:meth:`infer` for an event loop: awaits the batch, or runs the model on ``executor``.

        ``alone`` says the caller's front end has no other request in flight: then a cheap
        model runs right here, on the loop (see the module docstring).
        """
        batcher = self._batchers.get(model.name)
        if batcher is not None:
            return await batcher.submit_async(inputs)
        if alone and self.runs_inline(model):
            return self.infer(model, inputs)
        return await asyncio.get_running_loop().run_in_executor(executor, self.infer, model, inputs)


def failure_reason(exc: BaseException) -> str:
    """The ``reason`` label of a failed request."""
    if isinstance(exc, InvalidInputError):
        return "invalid_input"
    if isinstance(exc, ModelNotFoundError):
        return "not_found"
    return "model_error"
