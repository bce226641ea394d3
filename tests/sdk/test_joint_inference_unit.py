"""JointInference with an in-process cloud double: modes, fallback, breaker, stored examples."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sedna.common.config import WorkerConfig
from sedna.common.errors import CloudUnavailableError, InvalidInputError
from sedna.core.circuit import CircuitBreaker, CircuitState
from sedna.core.hard_examples import HardExampleStore
from sedna.core.joint_inference import JointInference


class EdgeModel:
    """Confident (one-hot) on inputs with x[0] >= 0, uniform (hard) otherwise."""

    def predict(self, data: Any) -> np.ndarray:
        x = np.asarray(data).reshape(-1)
        return np.array([[0.0, 1.0]]) if x[0] >= 0 else np.array([[0.5, 0.5]])


class Cloud:
    def __init__(self) -> None:
        self.up = True
        self.calls = 0
        self.refuse = False

    def predict(self, data: Any, timeout: float | None = None) -> np.ndarray:
        self.calls += 1
        if self.refuse:
            raise InvalidInputError("inputs[0] 'x': datatype FP64 does not match FP32")
        if not self.up:
            raise CloudUnavailableError("connection refused")
        return np.array([[1.0, 0.0]])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, cloud: Cloud, mode: str = "inference-then-mining", **kw: Any) -> JointInference:
    cfg = WorkerConfig.from_env({"SERVICE_NAME": "digits"})
    return JointInference(EdgeModel(), {"method": "CrossEntropy", "param": {"threshold_cross_entropy": 0.5}},
                          config=cfg, cloud=cloud, store=HardExampleStore(tmp_path / "hard"), mining_mode=mode,
                          offload_interval=3600, **kw)


def test_easy_sample_stays_on_the_edge(tmp_path: Path) -> None:
    cloud = Cloud()
    with make(tmp_path, cloud) as ji:
        hard, final, edge, cloud_result = ji.inference(np.array([1.0]))
    assert (hard, cloud_result, cloud.calls) == (False, None, 0)
    np.testing.assert_array_equal(final, [[0.0, 1.0]])
    assert final is edge


def test_hard_sample_is_answered_by_the_cloud_and_kept(tmp_path: Path) -> None:
    cloud = Cloud()
    with make(tmp_path, cloud) as ji:
        outcome = ji.infer(np.array([-1.0]))
        counts = ji.store.counts()
        stats = ji.stats.snapshot()
    assert (outcome.is_hard_example, outcome.computed_at) == (True, "cloud")
    np.testing.assert_array_equal(outcome.result, [[1.0, 0.0]])
    np.testing.assert_array_equal(outcome.edge_result, [[0.5, 0.5]])
    assert counts == {"pending": 0, "answered": 1, "evicted": 0}
    assert (stats["inferences"], stats["hard_examples"], stats["cloud_answers"]) == (1, 1, 1)
    assert stats["offload_ratio"] == 1.0


def test_dead_cloud_yields_the_edge_result_and_keeps_the_example_pending(tmp_path: Path) -> None:
    cloud = Cloud()
    cloud.up = False
    with make(tmp_path, cloud) as ji:
        outcome = ji.infer(np.array([-2.0]))
        assert (outcome.is_hard_example, outcome.computed_at, outcome.cloud_result) == (True, "edge", None)
        np.testing.assert_array_equal(outcome.result, [[0.5, 0.5]])
        assert ji.store.counts()["pending"] == 1
        cloud.up = True
        assert ji.offload_pending() == 1
        assert ji.store.counts() == {"pending": 0, "answered": 1, "evicted": 0}
        assert ji.stats.snapshot()["uploaded_later"] == 1
        (stored,) = [p for p in (tmp_path / "hard").glob("*.npy")]
        np.testing.assert_array_equal(np.load(stored), [-2.0])


def test_breaker_stops_calling_a_dead_cloud(tmp_path: Path) -> None:
    cloud, clock = Cloud(), Clock()
    cloud.up = False
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=5.0, clock=clock)
    with make(tmp_path, cloud, breaker=breaker) as ji:
        for _ in range(10):
            assert ji.infer(np.array([-1.0])).computed_at == "edge"
        assert cloud.calls == 2  # the breaker opened after two failures
        assert ji.stats.snapshot()["fallbacks"] == 10
        clock.now = 5.0  # half-open: one probe goes through
        cloud.up = True
        assert ji.infer(np.array([-1.0])).computed_at == "cloud"
        assert breaker.state is CircuitState.CLOSED


def test_cloud_refusing_a_sample_does_not_open_the_breaker(tmp_path: Path) -> None:
    cloud = Cloud()
    cloud.refuse = True
    breaker = CircuitBreaker(failure_threshold=1)
    with make(tmp_path, cloud, breaker=breaker) as ji:
        assert ji.infer(np.array([-1.0])).computed_at == "edge"
        assert breaker.state is CircuitState.CLOSED
        assert ji.store.counts()["pending"] == 0  # rejected, not retried forever


def test_mining_then_inference_sends_hard_inputs_to_the_cloud_only(tmp_path: Path) -> None:
    cloud = Cloud()
    edge_calls = []

    class CountingEdge(EdgeModel):
        def predict(self, data: Any) -> np.ndarray:
            edge_calls.append(1)
            return super().predict(data)

    cfg = WorkerConfig.from_env({})
    with JointInference(CountingEdge(), {"method": "CloudOnly"}, config=cfg, cloud=cloud,
                        store=HardExampleStore(tmp_path), mining_mode="mining-then-inference",
                        offload_interval=3600) as ji:
        outcome = ji.infer(np.array([1.0]))
        assert (outcome.computed_at, outcome.edge_result, len(edge_calls)) == ("cloud", None, 0)
        cloud.up = False
        fallback = ji.infer(np.array([1.0]))
        assert (fallback.computed_at, len(edge_calls)) == ("edge", 1)


def test_hem_from_env_and_none_means_edge_only(tmp_path: Path) -> None:
    cloud = Cloud()
    env = {"HEM_NAME": "CloudOnly"}
    with JointInference(EdgeModel(), config=WorkerConfig.from_env(env), cloud=cloud,
                        store=HardExampleStore(tmp_path / "a"), offload_interval=3600) as ji:
        assert ji.infer(np.array([1.0])).computed_at == "cloud"
    with JointInference(EdgeModel(), config=WorkerConfig.from_env({}), cloud=cloud,
                        store=HardExampleStore(tmp_path / "b"), offload_interval=3600) as ji:
        assert ji.infer(np.array([-1.0])).is_hard_example is False


def test_post_process_applies_to_both_edge_and_cloud_results(tmp_path: Path) -> None:
    with make(tmp_path, Cloud()) as ji:
        hard, final, edge, cloud = ji.inference(np.array([-1.0]), post_process=lambda r: int(np.argmax(r)))
    # the HEM judged the post-processed edge result (an int): unjudgeable, so not hard
    assert (hard, final, edge, cloud) == (False, 0, 0, None)


def test_hard_example_store_is_bounded_and_survives_restart(tmp_path: Path) -> None:
    store = HardExampleStore(tmp_path, capacity=3)
    first = store.put(np.zeros(2), state="answered")
    ids = [store.put(np.full(2, i)) for i in range(3)]
    assert store.counts() == {"pending": 3, "answered": 0, "evicted": 1}
    assert not (tmp_path / f"{first}.npy").exists()  # the answered one went first
    reopened = HardExampleStore(tmp_path, capacity=3)
    assert [e.id for e in reopened.pending()] == ids
    np.testing.assert_array_equal(next(iter(reopened.pending())).load(), [0.0, 0.0])


def test_breaker_backoff_doubles_after_a_failed_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=1.0, max_reset_timeout=3.0, clock=clock)
    breaker.record_failure()
    assert not breaker.allow()
    clock.now = 1.0
    assert breaker.allow() and not breaker.allow()  # one probe at a time
    breaker.record_failure()
    clock.now = 2.5
    assert not breaker.allow()  # now 2 s
    clock.now = 3.0
    assert breaker.allow()
    breaker.record_failure()
    clock.now = 5.9
    assert not breaker.allow()  # capped at 3 s
    clock.now = 6.0
    assert breaker.allow()


def test_invalid_mining_mode_names_it() -> None:
    with pytest.raises(ValueError, match="'both'"):
        JointInference(EdgeModel(), config=WorkerConfig.from_env({}), cloud=Cloud(), mining_mode="both")


class SlowMetadataCloud:
    """A real OIP gRPC server on 127.0.0.1 whose ModelMetadata answers only when released."""

    def __init__(self) -> None:
        import grpc

        from sedna.proto import grpc_predict_v2_pb2 as pb
        from sedna.proto import grpc_predict_v2_pb2_grpc as pb_grpc

        self.release = threading.Event()
        self.arrived = threading.Semaphore(0)
        outer = self

        class Servicer(pb_grpc.GRPCInferenceServiceServicer):
            def ModelMetadata(self, request: Any, context: Any) -> Any:
                outer.arrived.release()
                outer.release.wait(10)
                return pb.ModelMetadataResponse(
                    name=request.name, inputs=[pb.ModelMetadataResponse.TensorMetadata(
                        name="x", datatype="FP32", shape=[-1, 1])])

        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(Servicer(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def close(self) -> None:
        self.release.set()
        self.server.stop(0).wait(5)


@pytest.fixture
def slow_cloud() -> Iterator[SlowMetadataCloud]:
    cloud = SlowMetadataCloud()
    yield cloud
    cloud.close()


def test_the_first_cloud_call_fetches_metadata_within_big_model_timeout(tmp_path: Path,
                                                                        slow_cloud: SlowMetadataCloud) -> None:
    # Regression: the metadata fetch used the client's 5 s default, so a cold, slow cloud held the
    # first hard example for 5 s whatever BIG_MODEL_TIMEOUT (the edge's cloud_timeout) said.
    cfg = WorkerConfig.from_env({"SERVICE_NAME": "digits", "BIG_MODEL_IP": "127.0.0.1",
                                 "BIG_MODEL_GRPC_PORT": str(slow_cloud.port)})
    with JointInference(EdgeModel(), {"method": "CloudOnly"}, config=cfg, cloud_timeout=0.3,
                        store=HardExampleStore(tmp_path), offload_interval=3600) as ji:
        started = time.monotonic()
        outcome = ji.infer(np.array([1.0]))
        elapsed = time.monotonic() - started
    assert (outcome.is_hard_example, outcome.computed_at) == (True, "edge")
    assert elapsed < 2.0, f"the first hard example waited {elapsed:.1f}s for the cloud's metadata"
    assert ji.stats.snapshot()["cloud_failures"] == 1


def test_a_slow_metadata_fetch_does_not_hold_other_requests(slow_cloud: SlowMetadataCloud) -> None:
    # Regression: the fetch ran under a lock, so every request waited behind the first one's call.
    from sedna.core.joint_inference.cloud import CloudModel
    from sedna.service.inference import GrpcInferenceClient

    model = CloudModel(GrpcInferenceClient("127.0.0.1", slow_cloud.port), "digits")
    first: list[BaseException] = []

    def patient() -> None:
        try:
            model.predict(np.zeros(1, np.float32), timeout=4.0)
        except BaseException as exc:  # the server goes away under it: any outcome is fine, but keep it
            first.append(exc)

    waiting = threading.Thread(target=patient)
    waiting.start()
    try:
        assert slow_cloud.arrived.acquire(timeout=5)  # the first request is inside its metadata call
        started = time.monotonic()
        with pytest.raises(CloudUnavailableError):
            model.predict(np.zeros(1, np.float32), timeout=0.3)
        elapsed = time.monotonic() - started
    finally:
        slow_cloud.close()
        waiting.join(10)
        model.close()
    assert elapsed < 2.0, f"a 0.3 s request waited {elapsed:.1f}s behind another request's metadata fetch"
