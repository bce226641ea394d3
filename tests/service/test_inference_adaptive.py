"""The adaptive batcher: an idle model takes a lone request at once, requests that arrive
while a batch runs go together as the next one, the batch limit holds, and callers that
gave up (cancelled, deadline passed) are dropped before their batch forms.

Every test holds the model inside ``predict`` with a gate and releases it explicitly, so what
is queued when is decided by the test, not by the machine's speed. Queue delays are set far
beyond any wait the test allows, so paying one shows up as a timeout, never as a slow pass.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from concurrent.futures import Future

import numpy as np
import pytest

from sedna.backend.tensors import Prediction
from sedna.common.errors import CloudUnavailableError
from sedna.service.inference import BatchingConfig, GrpcInferenceClient
from sedna.service.inference._batching import Batcher
from tests.service.test_inference_batching import expected, rows
from tests.service.test_inference_support import LinearModel, serving
from tests.support.waiting import eventually

NEVER_MS = 600_000.0
"""A queue delay no test waits for: paying it fails the test by timeout."""
WAIT = 10.0


class GatedModel(LinearModel):
    """LinearModel whose ``predict`` holds until :meth:`release` lets one batch (or all) through."""

    def __init__(self, max_batch_size: int = 16) -> None:
        super().__init__(max_batch_size)
        self._gates: list[threading.Event] = []
        self._open = threading.Event()

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        gate = threading.Event()
        with self._lock:
            self._gates.append(gate)
        super_predict = super().predict
        while not (gate.is_set() or self._open.is_set()):
            gate.wait(0.01)
        return super_predict(inputs)

    def entered(self) -> int:
        """How many ``predict`` calls have started."""
        with self._lock:
            return len(self._gates)

    def release(self, index: int) -> None:
        """Let the ``index``-th ``predict`` call finish."""
        with self._lock:
            self._gates[index].set()

    def open(self) -> None:
        """Let every call through from now on."""
        self._open.set()


def results(futures: list[Future[Prediction]]) -> list[list[list[float]]]:
    return [f.result(timeout=WAIT).outputs["y"].tolist() for f in futures]


class TestAdaptiveBatcher:
    def test_a_lone_request_to_an_idle_model_does_not_wait_for_the_queue_delay(self) -> None:
        model = LinearModel(max_batch_size=8)
        batcher = Batcher(model, max_batch_size=8, max_queue_delay_ms=NEVER_MS)
        try:
            first = batcher.submit({"x": rows(3)}).result(timeout=WAIT)
            second = batcher.submit({"x": rows(4, 2)}).result(timeout=WAIT)
        finally:
            batcher.close()
        assert first.outputs["y"].tolist() == expected(3)
        assert second.outputs["y"].tolist() == expected(4, 2)
        assert model.batch_sizes == [1, 2]

    def test_requests_arriving_while_a_batch_runs_go_together_as_the_next_batch(self) -> None:
        model = GatedModel(max_batch_size=16)
        batcher = Batcher(model, max_batch_size=16, max_queue_delay_ms=NEVER_MS)
        try:
            running = batcher.submit({"x": rows(1)})
            eventually(lambda: model.entered() == 1, WAIT, message="the first batch to start")
            queued = [batcher.submit({"x": rows(i, n)}) for i, n in ((2, 1), (3, 2), (4, 1))]
            model.release(0)
            eventually(lambda: model.entered() == 2, WAIT, message="the second batch to start")
            model.release(1)
            answers = results([running, *queued])
        finally:
            model.open()
            batcher.close()
        assert model.batch_sizes == [1, 4]
        assert answers == [expected(1), expected(2), expected(3, 2), expected(4)]

    def test_the_next_batch_keeps_to_the_limit_and_the_rest_follows_at_once(self) -> None:
        model = GatedModel(max_batch_size=8)
        batcher = Batcher(model, max_batch_size=3, max_queue_delay_ms=NEVER_MS)
        try:
            running = batcher.submit({"x": rows(0)})
            eventually(lambda: model.entered() == 1, WAIT, message="the first batch to start")
            queued = [batcher.submit({"x": rows(i, n)}) for i, n in ((1, 1), (2, 2), (3, 1), (4, 3), (5, 1))]
            model.open()
            model.release(0)
            answers = results([running, *queued])
        finally:
            model.open()
            batcher.close()
        assert model.batch_sizes == [1, 3, 1, 3, 1]  # 1+2 | 1 (+3 > 3) | 3 | 1
        assert answers == [expected(0), expected(1), expected(2, 2), expected(3), expected(4, 3), expected(5)]

    def test_a_cancelled_request_is_dropped_before_its_batch_forms(self) -> None:
        model = GatedModel(max_batch_size=8)
        batcher = Batcher(model, max_batch_size=8, max_queue_delay_ms=NEVER_MS)
        try:
            running = batcher.submit({"x": rows(1)})
            eventually(lambda: model.entered() == 1, WAIT, message="the first batch to start")
            gone, kept = batcher.submit({"x": rows(2)}), batcher.submit({"x": rows(3)})
            assert gone.cancel()
            model.open()
            answers = results([running, kept])
        finally:
            model.open()
            batcher.close()
        assert gone.cancelled()
        assert model.batch_sizes == [1, 1]
        assert answers == [expected(1), expected(3)]

    def test_an_async_waiter_cancelled_in_the_queue_is_not_computed(self) -> None:
        model = GatedModel(max_batch_size=8)
        batcher = Batcher(model, max_batch_size=8, max_queue_delay_ms=NEVER_MS)

        async def main() -> list[object]:
            running = batcher.submit_async({"x": rows(1)})
            await asyncio.to_thread(eventually, lambda: model.entered() == 1, WAIT)
            gone = batcher.submit_async({"x": rows(2)})
            kept = batcher.submit_async({"x": rows(3)})
            gone.cancel()
            model.open()
            done = await asyncio.wait_for(asyncio.gather(running, kept), WAIT)
            return [d.outputs["y"].tolist() for d in done]

        try:
            answers = asyncio.run(main())
        finally:
            model.open()
            batcher.close()
        assert model.batch_sizes == [1, 1]
        assert answers == [expected(1), expected(3)]

    def test_with_two_workers_a_batch_waits_the_queue_delay_only_while_the_model_is_busy(self) -> None:
        model = GatedModel(max_batch_size=8)
        batcher = Batcher(model, max_batch_size=8, max_queue_delay_ms=NEVER_MS, workers=2)
        try:
            running = batcher.submit({"x": rows(1)})
            eventually(lambda: model.entered() == 1, WAIT, message="the first batch to start")
            waiting = [batcher.submit({"x": rows(i)}) for i in (2, 3)]
            assert model.entered() == 1  # the second worker holds them: the model is busy
            model.release(0)  # the model is idle now: the held batch goes at once
            eventually(lambda: model.entered() == 2, WAIT, message="the held batch to start")
            model.release(1)
            answers = results([running, *waiting])
        finally:
            model.open()
            batcher.close()
        assert model.batch_sizes == [1, 2]
        assert answers == [expected(1), expected(2), expected(3)]

    def test_with_two_workers_a_held_batch_goes_after_the_queue_delay_even_if_the_model_stays_busy(self) -> None:
        model = GatedModel(max_batch_size=8)
        batcher = Batcher(model, max_batch_size=8, max_queue_delay_ms=20, workers=2)
        try:
            running = batcher.submit({"x": rows(1)})
            eventually(lambda: model.entered() == 1, WAIT, message="the first batch to start")
            waiting = batcher.submit({"x": rows(2)})
            eventually(lambda: model.entered() == 2, WAIT, message="the second worker to give up waiting")
            model.open()
            answers = results([running, waiting])
        finally:
            model.open()
            batcher.close()
        assert answers == [expected(1), expected(2)]

    def test_close_runs_what_is_queued(self) -> None:
        model = GatedModel(max_batch_size=8)
        batcher = Batcher(model, max_batch_size=8, max_queue_delay_ms=NEVER_MS)
        running = batcher.submit({"x": rows(1)})
        eventually(lambda: model.entered() == 1, WAIT, message="the first batch to start")
        queued = batcher.submit({"x": rows(2)})
        closing = threading.Thread(target=batcher.close, kwargs={"timeout": WAIT})
        closing.start()
        model.open()
        closing.join(WAIT)
        assert results([running, queued]) == [expected(1), expected(2)]
        with pytest.raises(RuntimeError, match="shutting down"):
            batcher.submit({"x": rows(3)})


class TestAdaptiveServer:
    def test_a_grpc_call_whose_deadline_passed_in_the_queue_is_not_computed(self) -> None:
        model = GatedModel(max_batch_size=8)
        batching = BatchingConfig(max_batch_size=8, max_queue_delay_ms=NEVER_MS)
        with serving([model], batching=batching, rest_port=None) as srv, \
                GrpcInferenceClient("127.0.0.1", srv.grpc_port, timeout=WAIT) as client:
            batcher = srv.repository._batchers["linear"]
            try:
                first: Future[list[list[float]]] = Future()
                threading.Thread(target=lambda: first.set_result(
                    client.infer("linear", {"x": rows(1)}).outputs["y"].tolist())).start()
                eventually(lambda: model.entered() == 1, WAIT, message="the first batch to start")
                with pytest.raises(CloudUnavailableError, match="DEADLINE_EXCEEDED"):
                    client.infer("linear", {"x": rows(2)}, timeout=0.3)
                eventually(lambda: all(r.future.cancelled() for r in batcher._pending), WAIT,
                           message="the server to cancel the expired call")
                model.open()
                assert first.result(WAIT) == expected(1)
                assert client.infer("linear", {"x": rows(3)}).outputs["y"].tolist() == expected(3)
            finally:
                model.open()
        assert model.batch_sizes == [1, 1]  # request 2 was never computed

    def test_the_default_config_is_adaptive_and_a_fixed_delay_can_be_asked_for(self) -> None:
        assert BatchingConfig().adaptive is True
        model = LinearModel(max_batch_size=8)
        fixed = BatchingConfig(max_batch_size=8, max_queue_delay_ms=NEVER_MS, adaptive=False)
        with serving([model], batching=fixed, rest_port=None) as srv, \
                GrpcInferenceClient("127.0.0.1", srv.grpc_port) as client, \
                pytest.raises(CloudUnavailableError, match="DEADLINE_EXCEEDED"):
            client.infer("linear", {"x": rows(1)}, timeout=0.3)  # waits for a batch that never fills
