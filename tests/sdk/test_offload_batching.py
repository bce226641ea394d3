"""Edge-side batching of offloads: concurrent hard examples reach a real gRPC inference server as
one request, each caller gets its own answer, limits and deadlines hold, a bad sample is refused
on its own, and a request's hard rows and a stored backlog travel together.

The server runs without its own batching, so every request is one ``predict`` call and the model's
``batch_sizes`` are the requests' row counts. Gated models decide what is queued when, so no test
depends on the machine's speed.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sedna.backend.tensors import Prediction, TensorSpec
from sedna.common.config import WorkerConfig
from sedna.common.errors import CloudUnavailableError, InvalidInputError
from sedna.core.circuit import CircuitBreaker
from sedna.core.hard_examples import HardExampleStore
from sedna.core.joint_inference import JointInference
from sedna.core.joint_inference.cloud import CloudModel
from sedna.service.inference import GrpcInferenceClient
from tests.service.test_inference_adaptive import GatedModel
from tests.service.test_inference_batching import expected, rows
from tests.service.test_inference_support import LinearModel, serving
from tests.support.waiting import eventually

WAIT = 10.0


class RefusingModel(GatedModel):
    """GatedModel that refuses (as invalid input) any request holding a row whose x[0] is -7."""

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        prediction = super().predict(inputs)
        if (inputs["x"][:, 0] == -7).any():
            raise InvalidInputError("inputs[0] 'x': -7 is not a valid feature")
        return prediction


class FixedBatchModel(LinearModel):
    """LinearModel whose metadata declares a fixed batch of one row."""

    inputs = (TensorSpec("x", "FP32", (1, 4)),)
    outputs = (TensorSpec("y", "FP32", (1, 3)),)


def cloud_model(port: int, model: str = "linear", **kw: Any) -> CloudModel:
    return CloudModel(GrpcInferenceClient("127.0.0.1", port, timeout=WAIT), model, **kw)


@contextlib.contextmanager
def served_cloud(model: Any, **kw: Any) -> Iterator[CloudModel]:
    """A CloudModel (``kw`` as for CloudModel) of ``model`` served over gRPC without server batching."""
    with serving([model], batching=None, rest_port=None) as srv:
        cloud = cloud_model(srv.grpc_port, **kw)
        try:
            yield cloud
        finally:
            cloud.close()


def first_row(i: int) -> np.ndarray:
    return rows(i)[0]


def in_threads(count: int, call: Any) -> list[concurrent.futures.Future[Any]]:
    pool = concurrent.futures.ThreadPoolExecutor(count)
    futures = [pool.submit(call, i) for i in range(count)]
    pool.shutdown(wait=False)
    return futures


def held_call(cloud: CloudModel, model: GatedModel, i: int) -> concurrent.futures.Future[Any]:
    """``cloud.predict(first_row(i))`` started in a thread, once the gated model holds its request."""
    entered = model.entered()
    future = in_threads(1, lambda _: cloud.predict(first_row(i), timeout=WAIT))[0]
    eventually(lambda: model.entered() == entered + 1, WAIT)
    return future


class TestCloudModelBatching:
    def test_calls_that_arrive_while_the_cloud_is_busy_go_as_one_request(self) -> None:
        model = GatedModel()
        with served_cloud(model, max_in_flight=1) as cloud:
            lone = held_call(cloud, model, 0)
            model.release(0)
            assert lone.result(WAIT).tolist() == expected(0)
            busy = held_call(cloud, model, 1)
            waiting = in_threads(6, lambda i: cloud.predict(first_row(10 + i), timeout=WAIT))
            eventually(lambda: cloud.batcher.stats.calls == 1 and _queued(cloud) == 6, WAIT)
            model.open()
            assert busy.result(WAIT).tolist() == expected(1)
            assert [f.result(WAIT).tolist() for f in waiting] == [expected(10 + i) for i in range(6)]
        assert model.batch_sizes == [1, 1, 6]
        assert cloud.batcher.stats.mean_batch == pytest.approx(8 / 3)

    def test_a_lone_call_goes_at_once_and_alone(self) -> None:
        model = LinearModel()
        with served_cloud(model) as cloud:
            for i in range(3):
                assert cloud.predict(first_row(i), timeout=WAIT).tolist() == expected(i)
        assert model.batch_sizes == [1, 1, 1]

    def test_a_batch_never_exceeds_max_batch_rows(self) -> None:
        model = GatedModel()
        with served_cloud(model, max_batch=3, max_in_flight=1) as cloud:
            first = held_call(cloud, model, 0)
            waiting = in_threads(8, lambda i: cloud.predict(first_row(1 + i), timeout=WAIT))
            eventually(lambda: _queued(cloud) == 8, WAIT)
            model.open()
            first.result(WAIT)
            assert [f.result(WAIT).tolist() for f in waiting] == [expected(1 + i) for i in range(8)]
        assert model.batch_sizes == [1, 3, 3, 2]

    def test_big_model_max_batch_1_sends_every_sample_alone(self) -> None:
        model = GatedModel()
        with serving([model], batching=None, rest_port=None) as srv:
            cfg = WorkerConfig.from_env({"SERVICE_NAME": "linear", "BIG_MODEL_GRPC_PORT": str(srv.grpc_port),
                                         "BIG_MODEL_MAX_BATCH": "1"})
            cloud = CloudModel.from_config(cfg)
            try:
                futures = in_threads(4, lambda i: cloud.predict(first_row(i), timeout=WAIT))
                eventually(lambda: model.entered() == 4, WAIT)  # nothing waits for a batch
                model.open()
                assert [f.result(WAIT).tolist() for f in futures] == [expected(i) for i in range(4)]
            finally:
                cloud.close()
        assert model.batch_sizes == [1, 1, 1, 1]

    def test_big_model_max_batch_must_be_positive(self) -> None:
        from sedna.common.errors import ConfigError

        with pytest.raises(ConfigError, match="BIG_MODEL_MAX_BATCH"):
            WorkerConfig.from_env({"BIG_MODEL_MAX_BATCH": "0"})

    def test_a_model_with_a_fixed_batch_dimension_gets_one_sample_per_request(self) -> None:
        model = FixedBatchModel()
        with served_cloud(model) as cloud:
            answers = cloud.predict_each([first_row(i) for i in range(3)], timeout=WAIT)
        assert [a.tolist() for a in answers] == [expected(i) for i in range(3)]
        assert model.batch_sizes == [1, 1, 1]

    def test_a_refused_batch_is_sent_again_sample_by_sample_so_only_the_bad_one_fails(self) -> None:
        model = RefusingModel()
        with served_cloud(model, max_in_flight=1) as cloud:
            busy = held_call(cloud, model, 0)
            samples = [first_row(1), np.array([-7, 1, 0, 0], np.float32), first_row(2)]
            each = in_threads(1, lambda i: cloud.predict_each(samples, timeout=WAIT))
            eventually(lambda: _queued(cloud) == 3, WAIT)
            model.open()
            busy.result(WAIT)
            answers = each[0].result(WAIT)
        assert answers[0].tolist() == expected(1) and answers[2].tolist() == expected(2)
        assert isinstance(answers[1], InvalidInputError) and "-7 is not a valid feature" in str(answers[1])
        assert model.batch_sizes == [1, 3, 1, 1, 1]
        assert cloud.batcher.stats.split_retries == 1

    def test_a_sample_queued_behind_a_stuck_call_fails_by_its_own_deadline(self) -> None:
        model = GatedModel()
        with served_cloud(model, max_in_flight=1) as cloud:
            stuck = held_call(cloud, model, 0)
            began = time.monotonic()
            with pytest.raises(CloudUnavailableError, match="deadline"):
                cloud.predict(first_row(1), timeout=0.3)
            assert time.monotonic() - began < 3.0
            assert _queued(cloud) == 0
            model.open()
            assert stuck.result(WAIT).tolist() == expected(0)
        assert model.batch_sizes == [1]


def _queued(cloud: CloudModel) -> int:
    return cloud.batcher.queued


class EdgeModel:
    """Confident on inputs with x[0] >= 0, uniform (hard) otherwise."""

    def predict(self, data: Any) -> np.ndarray:
        x = np.asarray(data).reshape(-1)
        return np.array([[0.0, 1.0]]) if x[0] >= 0 else np.array([[0.5, 0.5]])


class SwitchedModel(LinearModel):
    """LinearModel that fails every request (INTERNAL, an outage to the edge) while ``down``."""

    down = False
    refused = 0

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        if self.down:
            self.refused += 1
            raise RuntimeError("the cloud model is down")
        return super().predict(inputs)


def joint(tmp_path: Path, cloud: CloudModel, breaker: CircuitBreaker | None = None) -> JointInference:
    cfg = WorkerConfig.from_env({"SERVICE_NAME": "linear"})
    return JointInference(EdgeModel(), {"method": "CrossEntropy", "param": {"threshold_cross_entropy": 0.5}},
                          config=cfg, cloud=cloud, store=HardExampleStore(tmp_path / "hard"),
                          offload_interval=3600, breaker=breaker)


def hard(k: int) -> np.ndarray:
    """A sample the edge finds hard (x[0] = -k < 0); the cloud answers -expected(k)."""
    return -rows(k)[0]


class TestJointInferenceTogether:
    def test_the_hard_rows_of_one_request_go_to_the_cloud_as_one_request(self, tmp_path: Path) -> None:
        model = LinearModel()
        with serving([model], batching=None, rest_port=None) as srv:
            ji = joint(tmp_path, cloud_model(srv.grpc_port))
            try:
                samples = [first_row(i) if i % 3 == 0 else hard(i + 2) for i in range(6)]
                outcomes = ji.infer_many(samples)
            finally:
                ji.close()
        assert [o.computed_at for o in outcomes] == ["edge", "cloud", "cloud", "edge", "cloud", "cloud"]
        for i in (1, 2, 4, 5):
            assert outcomes[i].result.tolist() == (-np.array(expected(i + 2))).tolist()
        assert model.batch_sizes == [4]
        counts = ji.stats.snapshot()
        assert counts["inferences"] == 6 and counts["hard_examples"] == 4 and counts["cloud_answers"] == 4
        assert ji.store.counts()["answered"] == 4

    def test_the_stored_backlog_goes_to_the_cloud_in_one_request_once_it_is_back(self, tmp_path: Path) -> None:
        model = SwitchedModel()
        with serving([model], batching=None, rest_port=None) as srv:
            ji = joint(tmp_path, cloud_model(srv.grpc_port), CircuitBreaker(failure_threshold=100))
            try:
                model.down = True
                for k in range(2, 7):
                    assert ji.infer(hard(k)).computed_at == "edge"
                assert ji.store.counts()["pending"] == 5
                model.down = False
                model.batch_sizes.clear()
                assert ji.offload_pending() == 5
            finally:
                ji.close()
        assert model.batch_sizes == [5]
        assert ji.store.counts()["pending"] == 0 and ji.stats.snapshot()["uploaded_later"] == 5

    @pytest.mark.parametrize("max_batch", [32, 1])
    def test_an_outage_leaves_the_backlog_pending_after_one_request(self, tmp_path: Path, max_batch: int) -> None:
        model = SwitchedModel()
        with serving([model], batching=None, rest_port=None) as srv:
            ji = joint(tmp_path, cloud_model(srv.grpc_port, max_batch=max_batch), CircuitBreaker(failure_threshold=100))
            try:
                model.down = True
                for k in range(2, 5):
                    ji.infer(hard(k))
                model.refused = 0
                assert ji.offload_pending() == 0
                assert ji.store.counts()["pending"] == 3
            finally:
                ji.close()
        assert model.refused == 1  # the first failure stands for the rest: no timeout per stored sample


def test_many_threads_with_mixed_shapes_each_get_their_own_answers() -> None:
    """Concurrency stress on the batcher alone: every answer is its caller's, nothing hangs."""
    from sedna.core.joint_inference.offload_batching import OffloadBatcher

    rng = np.random.default_rng(5)
    delays = iter(rng.uniform(0, 0.003, 100_000).tolist())
    lock = threading.Lock()

    def send(rows: np.ndarray, timeout: float | None) -> np.ndarray:
        with lock:
            delay = next(delays)
        time.sleep(delay)
        return rows * 2

    batcher = OffloadBatcher(send, max_batch=8)

    def caller(i: int) -> None:
        for j in range(40):
            width = 3 if (i + j) % 3 else 5
            sample = np.full((1 + j % 2, width), i * 1000 + j, np.float32)
            answers = batcher.submit([sample], timeout=WAIT)
            np.testing.assert_array_equal(answers[0], sample * 2)

    futures = in_threads(16, caller)
    for future in futures:
        future.result(60)
    assert batcher.stats.samples == 16 * 40 and batcher.stats.calls < batcher.stats.samples


def test_many_callers_with_several_samples_and_short_deadlines_never_hang() -> None:
    """64 callers, 1-3 samples each, some deadlines shorter than a call: every sample is answered
    (its own answer) or refused as unavailable, every caller returns, and nothing stays queued."""
    from sedna.core.joint_inference.offload_batching import OffloadBatcher

    def send(rows: np.ndarray, timeout: float | None) -> np.ndarray:
        time.sleep(0.002)
        return rows + 1

    batcher = OffloadBatcher(send, max_batch=16)
    outcomes = {"answered": 0, "expired": 0}
    lock = threading.Lock()

    def caller(i: int) -> None:
        for j in range(30):
            samples = [np.full((1, 4), i * 100 + j * 3 + k, np.float32) for k in range(1 + (i + j) % 3)]
            timeout = 0.001 if (i + j) % 5 == 0 else WAIT
            for sample, answer in zip(samples, batcher.submit(samples, timeout=timeout), strict=True):
                if isinstance(answer, CloudUnavailableError):
                    assert timeout < 1, "only a short deadline may expire"
                    key = "expired"
                else:
                    np.testing.assert_array_equal(answer, sample + 1)
                    key = "answered"
                with lock:
                    outcomes[key] += 1

    for future in in_threads(64, caller):
        future.result(60)
    assert outcomes["answered"] + outcomes["expired"] == sum(1 + (i + j) % 3 for i in range(64) for j in range(30))
    assert outcomes["answered"] == batcher.stats.samples and batcher.queued == 0
