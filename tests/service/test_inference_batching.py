"""Dynamic batching: concurrent requests share predict calls, each requester gets its
own rows back, a failing batch fails only its own requests, oversize requests run alone."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from sedna.backend.tensors import Prediction, TensorSpec
from sedna.common.errors import CloudUnavailableError
from sedna.service.inference import BatchingConfig, GrpcInferenceClient, RestInferenceClient
from sedna.service.inference._batching import Batcher
from tests.service.test_inference_support import LinearModel, serving


def rows(i: int, n: int = 1) -> np.ndarray:
    """n rows whose first column identifies request i (x = [i, 1, 0, 0])."""
    return np.tile(np.array([[i, 1, 0, 0]], np.float32), (n, 1))


def expected(i: int, n: int = 1) -> list[list[float]]:
    """rows(i) @ W = i * W[0] + W[1] = i * [0, 1, 2] + [3, 4, 5], by hand."""
    return [[3.0, i + 4.0, 2.0 * i + 5.0]] * n


def run_concurrently(count: int, call: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(count)

    def task(i: int) -> object:
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(task, range(count)))


class TestBatcherUnit:
    def test_concurrent_submissions_become_one_batch_split_back_in_order(self) -> None:
        model = LinearModel(max_batch_size=8)
        batcher = Batcher(model, max_batch_size=32, max_queue_delay_ms=200, workers=1, adaptive=False)
        try:
            futures = [batcher.submit({"x": rows(i, n)}) for i, n in ((1, 1), (2, 3), (3, 2))]
            results = [f.result(timeout=5) for f in futures]
        finally:
            batcher.close()
        assert model.batch_sizes == [6]  # limit is min(32, model's 8); 6 samples fit in one batch
        assert [r.outputs["y"].tolist() for r in results] == [expected(1), expected(2, 3), expected(3, 2)]
        assert [r.parameters["rows"] for r in results] == [6, 6, 6]

    def test_batch_stops_at_the_limit_and_oversize_runs_alone(self) -> None:
        model = LinearModel(max_batch_size=4)
        batcher = Batcher(model, max_batch_size=32, max_queue_delay_ms=100, workers=1, adaptive=False)
        try:
            futures = [batcher.submit({"x": rows(i, n)}) for i, n in ((1, 3), (2, 2), (3, 6), (4, 1))]
            results = [f.result(timeout=5) for f in futures]
        finally:
            batcher.close()
        assert model.batch_sizes == [3, 2, 6, 1]  # 3+2 > 4; 6 > 4 runs alone; 1 waits then runs
        assert [r.outputs["y"].shape[0] for r in results] == [3, 2, 6, 1]

    def test_the_first_request_waits_at_most_the_queue_delay(self) -> None:
        model = LinearModel(max_batch_size=8)
        batcher = Batcher(model, max_batch_size=8, max_queue_delay_ms=30, workers=1, adaptive=False)
        try:
            started = time.monotonic()
            result = batcher.submit({"x": rows(5)}).result(timeout=5)
            waited = time.monotonic() - started
        finally:
            batcher.close()
        assert result.outputs["y"].tolist() == expected(5)
        assert 0.025 <= waited < 1.0

    def test_a_failing_predict_fails_its_batch_only(self) -> None:
        model = LinearModel(max_batch_size=2)
        batcher = Batcher(model, max_batch_size=2, max_queue_delay_ms=100, workers=1, adaptive=False)
        try:
            futures = [batcher.submit({"x": rows(i)}) for i in (-1, 2, 3, 4)]
            outcomes = []
            for future in futures:
                try:
                    outcomes.append(future.result(timeout=5).outputs["y"].tolist())
                except RuntimeError as exc:
                    outcomes.append(str(exc))
        finally:
            batcher.close()
        assert model.batch_sizes == [2, 2]
        assert outcomes == ["poisoned sample", "poisoned sample", expected(3), expected(4)]

    def test_a_cancelled_thread_future_is_skipped_and_the_worker_keeps_going(self) -> None:
        model = LinearModel(max_batch_size=4)
        batcher = Batcher(model, max_batch_size=4, max_queue_delay_ms=100, workers=1, adaptive=False)
        try:
            gone, kept = batcher.submit({"x": rows(1)}), batcher.submit({"x": rows(2)})
            assert gone.cancel()
            assert kept.result(timeout=5).outputs["y"].tolist() == expected(2)
            assert batcher.submit({"x": rows(3)}).result(timeout=5).outputs["y"].tolist() == expected(3)
        finally:
            batcher.close()
        assert model.batch_sizes == [1, 1]  # the cancelled request was dropped, not computed

    def test_async_submissions_share_a_batch_with_threads_and_each_gets_its_rows(self) -> None:
        model = LinearModel(max_batch_size=8)
        batcher = Batcher(model, max_batch_size=8, max_queue_delay_ms=300, workers=1, adaptive=False)
        wakeups = 0

        async def main() -> list[list[list[float]]]:
            nonlocal wakeups
            loop = asyncio.get_running_loop()
            original = loop.call_soon_threadsafe

            def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
                nonlocal wakeups
                wakeups += 1
                return original(*args, **kwargs)

            loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
            threaded = batcher.submit({"x": rows(9)})
            waiting = [batcher.submit_async({"x": rows(i, n)}) for i, n in ((1, 1), (2, 3), (3, 2))]
            results = await asyncio.gather(*waiting)
            return [r.outputs["y"].tolist() for r in results] + [threaded.result(5).outputs["y"].tolist()]

        try:
            outputs = asyncio.run(main())
        finally:
            batcher.close()
        assert model.batch_sizes == [7]
        assert outputs == [expected(1), expected(2, 3), expected(3, 2), expected(9)]
        assert wakeups == 1  # one hand-over to the loop for the whole batch

    def test_async_waiters_hear_of_a_failing_batch_and_a_cancelled_one_is_skipped(self) -> None:
        model = LinearModel(max_batch_size=4, delay=0.05)
        batcher = Batcher(model, max_batch_size=4, max_queue_delay_ms=100, workers=1, adaptive=False)

        async def main() -> tuple[list[object], bool]:
            gone = batcher.submit_async({"x": rows(5)})
            poisoned = [batcher.submit_async({"x": rows(i)}) for i in (-1, 2)]
            gone.cancel()
            outcomes = await asyncio.gather(*poisoned, return_exceptions=True)
            after = await batcher.submit_async({"x": rows(4)})
            return [str(o) for o in outcomes] + [after.outputs["y"].tolist()], gone.cancelled()

        try:
            outcomes, cancelled = asyncio.run(main())
        finally:
            batcher.close()
        assert outcomes == ["poisoned sample", "poisoned sample", expected(4)]
        assert cancelled

    def test_wrong_output_batch_dimension_is_reported(self) -> None:
        class Bad(LinearModel):
            def predict(self, inputs):  # type: ignore[override]
                return Prediction({"y": np.zeros((1, 3), np.float32)})

        batcher = Batcher(Bad(max_batch_size=4), max_batch_size=4, max_queue_delay_ms=100, adaptive=False)
        try:
            futures = [batcher.submit({"x": rows(i)}) for i in (1, 2)]
            with pytest.raises(RuntimeError, match="output 'y' has shape \\[1, 3\\], expected batch dimension 2"):
                futures[0].result(timeout=5)
        finally:
            batcher.close()

    def test_incompatible_shapes_are_not_mixed(self) -> None:
        class Seq:
            name, version, platform, max_batch_size = "seq", "1", "numpy", 8
            inputs = (TensorSpec("x", "FP32", (-1, -1)),)
            outputs = (TensorSpec("n", "INT64", (-1,)),)
            sizes: list[tuple[int, int]] = []

            def predict(self, inputs):  # type: ignore[no-untyped-def]
                self.sizes.append(inputs["x"].shape)
                return Prediction({"n": np.full(inputs["x"].shape[0], inputs["x"].shape[1])})

        model = Seq()
        batcher = Batcher(model, max_batch_size=8, max_queue_delay_ms=100, adaptive=False)
        try:
            futures = [batcher.submit({"x": np.zeros((1, k), np.float32)}) for k in (3, 3, 5)]
            results = [f.result(timeout=5).outputs["n"].tolist() for f in futures]
        finally:
            batcher.close()
        assert model.sizes == [(2, 3), (1, 5)]
        assert results == [[3], [3], [5]]


class TestServerBatching:
    def test_concurrent_grpc_and_rest_requests_are_batched_and_routed_back(self) -> None:
        model = LinearModel(max_batch_size=16, delay=0.01)
        with serving([model], batching=BatchingConfig(max_batch_size=8, max_queue_delay_ms=20)) as srv:
            grpc_client = GrpcInferenceClient("127.0.0.1", srv.grpc_port)
            rest_client = RestInferenceClient(f"http://127.0.0.1:{srv.rest_port}")

            def call(i: int) -> list[list[float]]:
                client = grpc_client if i % 2 else rest_client
                return client.infer("linear", {"x": rows(i, 1 + i % 3)}).outputs["y"].tolist()

            try:
                results = run_concurrently(24, call)
            finally:
                grpc_client.close()
                rest_client.close()
            metrics = srv.metrics.exposition()[0].decode()
        assert results == [expected(i, 1 + i % 3) for i in range(24)]
        assert max(model.batch_sizes) > 1 and max(model.batch_sizes) <= 8
        assert sum(model.batch_sizes) == sum(1 + i % 3 for i in range(24))
        assert len(model.batch_sizes) < 24
        assert f"sedna_inference_batch_size_count{{model=\"linear\"}} {float(len(model.batch_sizes))}" in metrics

    def test_a_poisoned_request_fails_only_its_batch_and_the_server_keeps_serving(self) -> None:
        model = LinearModel(max_batch_size=4, delay=0.005)
        batching = BatchingConfig(max_batch_size=4, max_queue_delay_ms=50)
        with serving([model], batching=batching, rest_port=None) as srv, \
                GrpcInferenceClient("127.0.0.1", srv.grpc_port) as client:

            def call(i: int) -> object:
                try:
                    return client.infer("linear", {"x": rows(-1 if i == 0 else i)}).outputs["y"].tolist()
                except CloudUnavailableError as exc:
                    return str(exc)

            results = run_concurrently(8, call)
            after = client.infer("linear", {"x": rows(7)}).outputs["y"].tolist()
        failed = [i for i, r in enumerate(results) if isinstance(r, str)]
        assert 0 in failed and "INTERNAL" in results[0] and "poisoned sample" in results[0]
        assert len(failed) <= 4  # only the poisoned request's batch
        assert all(results[i] == expected(i) for i in range(8) if i not in failed)
        assert after == expected(7)

    @pytest.mark.parametrize("batching", [None, BatchingConfig(max_batch_size=0)], ids=["none", "zero"])
    def test_without_batching_each_request_runs_alone(self, batching: BatchingConfig | None) -> None:
        model = LinearModel(max_batch_size=16, delay=0.01)
        with serving([model], batching=batching, rest_port=None) as srv, \
                GrpcInferenceClient("127.0.0.1", srv.grpc_port) as client:
            results = run_concurrently(6, lambda i: client.infer("linear", {"x": rows(i)}).outputs["y"].tolist())
        assert results == [expected(i) for i in range(6)]
        assert model.batch_sizes == [1] * 6
