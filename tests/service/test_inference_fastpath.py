"""The idle fast path: a cheap model runs on the front end's event loop only when nothing else waits.

A model that records the thread running each ``predict`` tells where it ran: the gRPC loop
thread is ``oip-grpc-loop``, the REST one ``oip-rest``; pool threads have other names.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Mapping

import numpy as np

from sedna.backend.tensors import Prediction, TensorSpec
from sedna.service.inference import GrpcInferenceClient, RestInferenceClient
from sedna.service.inference._repository import COST_WINDOW
from tests.service.test_inference_support import serving


class ThreadRecorder:
    """y = 2x (FP32 [-1, 2]); remembers the name of the thread of every call; sleeps ``delay`` s."""

    name = "recorder"
    version = "1"
    platform = "numpy"
    inputs = (TensorSpec("x", "FP32", (-1, 2)),)
    outputs = (TensorSpec("y", "FP32", (-1, 2)),)
    max_batch_size = 0

    def __init__(self, delay: float = 0.0, may_block: bool = False) -> None:
        self.delay = delay
        self.may_block = may_block
        self.threads: list[str] = []
        self._lock = threading.Lock()

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        with self._lock:
            self.threads.append(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)
        return Prediction({"y": inputs["x"] * 2})


X = np.array([[1.0, 2.0]], np.float32)


def test_grpc_runs_a_cheap_model_on_the_idle_loop_once_its_cost_is_known() -> None:
    model = ThreadRecorder()
    with serving([model], rest_port=None) as server, GrpcInferenceClient("127.0.0.1", server.grpc_port) as client:
        for _ in range(COST_WINDOW + 3):
            assert client.infer("recorder", {"x": X}).outputs["y"].tolist() == [[2.0, 4.0]]
    assert "oip-grpc-loop" not in model.threads[:COST_WINDOW]  # its cost is unknown until then
    assert model.threads[COST_WINDOW:] == ["oip-grpc-loop"] * 3


def test_rest_binary_runs_a_cheap_model_on_the_idle_loop_and_json_stays_in_the_pool() -> None:
    model = ThreadRecorder()
    with serving([model], grpc_port=None) as server, \
            RestInferenceClient(f"http://127.0.0.1:{server.rest_port}") as binary, \
            RestInferenceClient(f"http://127.0.0.1:{server.rest_port}", binary=False) as as_json:
        for _ in range(COST_WINDOW + 2):
            assert binary.infer("recorder", {"x": X}).outputs["y"].tolist() == [[2.0, 4.0]]
        assert as_json.infer("recorder", {"x": X}).outputs["y"].tolist() == [[2.0, 4.0]]
    assert model.threads[COST_WINDOW:] == ["oip-rest", "oip-rest", model.threads[-1]]
    assert model.threads[-1] != "oip-rest"  # a JSON body may be big: parsed in the pool


def test_a_slow_model_or_one_that_may_block_never_runs_on_the_loop() -> None:
    slow = ThreadRecorder(delay=0.01)  # above INLINE_MAX_SECONDS
    remote = ThreadRecorder(may_block=True)
    remote.name = "remote"
    with serving([slow, remote], rest_port=None) as server, \
            GrpcInferenceClient("127.0.0.1", server.grpc_port) as client:
        for _ in range(COST_WINDOW + 2):
            client.infer("recorder", {"x": X})
            client.infer("remote", {"x": X})
    assert "oip-grpc-loop" not in slow.threads + remote.threads


def test_one_slow_call_sends_the_model_back_to_the_pool() -> None:
    model = ThreadRecorder()
    with serving([model], rest_port=None) as server, GrpcInferenceClient("127.0.0.1", server.grpc_port) as client:
        for _ in range(COST_WINDOW + 1):
            client.infer("recorder", {"x": X})
        model.delay = 0.02
        client.infer("recorder", {"x": X})  # still known cheap: runs on the loop, and is timed
        model.delay, model.threads = 0.0, []
        for _ in range(3):
            client.infer("recorder", {"x": X})
    assert "oip-grpc-loop" not in model.threads


def test_concurrent_requests_run_in_the_pool_in_parallel() -> None:
    """Eight requests in flight at once: at most the first blocks the loop, the rest sleep together."""
    model = ThreadRecorder()
    with serving([model], rest_port=None) as server, GrpcInferenceClient("127.0.0.1", server.grpc_port) as client:
        for _ in range(COST_WINDOW + 1):
            client.infer("recorder", {"x": X})
        model.delay, model.threads = 0.3, []  # the model still looks cheap; concurrency must keep it off the loop
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            began = time.monotonic()
            list(pool.map(lambda _: client.infer("recorder", {"x": X}, timeout=10), range(8)))
            took = time.monotonic() - began
    assert len(model.threads) == 8
    assert model.threads.count("oip-grpc-loop") <= 1
    assert took < 1.2, f"eight concurrent 0.3 s requests took {took:.2f}s: they ran one after the other"
