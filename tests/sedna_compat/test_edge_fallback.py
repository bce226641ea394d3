"""The project's edge given a Sedna controller's env (only ``BIG_MODEL_PORT``): it speaks Sedna's REST
``/{JOB_NAME}/predict``, one attempt per hard example bounded by ``BIG_MODEL_TIMEOUT``, and the circuit
breaker stops the calls to a failing cloud (Sedna's client retried ~12 s per hard example)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sedna.common.config import WorkerConfig
from sedna.common.errors import CloudUnavailableError, InferenceError, InvalidInputError
from sedna.core.hard_examples import HardExampleStore
from sedna.core.joint_inference import JointInference
from sedna.core.joint_inference.sedna_rest import SednaRestModel


class FakeSednaCloud:
    """A real HTTP server on loopback that records every request and answers as told."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status, self.delay = status, delay
        self.requests: list[tuple[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                outer.requests.append((self.path, body))
                time.sleep(outer.delay)
                payload = json.dumps({"result": [[0.0, 1.0]]} if outer.status == 200 else {"error": "boom"}).encode()
                try:
                    self.send_response(outer.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except BrokenPipeError:  # the client gave up waiting (the slow-cloud test)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeSednaCloud:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class AlwaysUnsure:
    """An edge model that is never sure: every sample is a hard example."""

    def predict(self, data: Any) -> np.ndarray:
        return np.array([0.5, 0.5])


def sedna_env(port: int, **extra: str) -> dict[str, str]:
    """What Sedna's JointInferenceService controller gives an edge worker."""
    return {"SERVICE_NAME": "helmet", "WORKER_NAME": "edgeworker-x", "BIG_MODEL_IP": "127.0.0.1",
            "BIG_MODEL_PORT": str(port), "HEM_NAME": "CrossEntropy",
            "HEM_PARAMETERS": json.dumps([{"key": "threshold_cross_entropy", "value": "0.5"}]), **extra}


@pytest.fixture
def edge_of(tmp_path: Path) -> Iterator[Any]:
    made: list[JointInference] = []

    def make(env: dict[str, str]) -> JointInference:
        joint = JointInference(AlwaysUnsure(), config=WorkerConfig.from_env(env),
                               store=HardExampleStore(tmp_path / "hard"), offload_interval=3600)
        made.append(joint)
        return joint

    yield make
    for joint in made:
        joint.close()


def test_only_big_model_port_means_sedna_rest_under_job_name(edge_of: Any) -> None:
    with FakeSednaCloud() as cloud:
        joint = edge_of(sedna_env(cloud.port))
        is_hard, final, _edge, cloud_result = joint.inference(np.arange(4.0))

    assert is_hard and cloud.requests == [("/sedna/predict", {"data": [0.0, 1.0, 2.0, 3.0]})]
    assert np.array_equal(final, [[0.0, 1.0]]) and np.array_equal(cloud_result, [[0.0, 1.0]])


def test_job_name_names_the_path(edge_of: Any) -> None:
    with FakeSednaCloud() as cloud:
        edge_of(sedna_env(cloud.port, JOB_NAME="helmet")).inference(np.zeros(2))

    assert [path for path, _ in cloud.requests] == ["/helmet/predict"]


def test_a_failing_cloud_gets_one_attempt_per_hard_example_until_the_breaker_opens(edge_of: Any) -> None:
    with FakeSednaCloud(status=503) as cloud:
        joint = edge_of(sedna_env(cloud.port))
        started = time.monotonic()
        outcomes = [joint.infer(np.zeros(2)) for _ in range(20)]
        elapsed = time.monotonic() - started

    assert all(o.computed_at == "edge" and o.is_hard_example for o in outcomes)
    assert len(cloud.requests) == joint.breaker.failure_threshold == 3  # then the circuit is open
    assert elapsed < 5.0, elapsed  # Sedna's client: 5 attempts x 3 s for each of the 20


def test_a_slow_cloud_costs_at_most_big_model_timeout_per_hard_example(edge_of: Any) -> None:
    with FakeSednaCloud(delay=3.0) as cloud:
        joint = edge_of(sedna_env(cloud.port, BIG_MODEL_TIMEOUT="0.3"))
        started = time.monotonic()
        outcome = joint.infer(np.zeros(2))
        elapsed = time.monotonic() - started

    assert joint.cloud_timeout == 0.3
    assert outcome.computed_at == "edge" and elapsed < 2.0, elapsed


def test_a_grpc_port_in_the_env_keeps_grpc() -> None:
    cfg = WorkerConfig.from_env({"BIG_MODEL_PORT": "5000", "BIG_MODEL_GRPC_PORT": "5001"})

    assert cfg.big_model_protocol == "grpc"
    assert WorkerConfig.from_env({"BIG_MODEL_PORT": "5000"}).big_model_protocol == "sedna"
    assert WorkerConfig.from_env({}).big_model_protocol == "grpc"
    assert WorkerConfig.from_env({"BIG_MODEL_PORT": "5000", "BIG_MODEL_PROTOCOL": "rest"}).big_model_protocol == "rest"


class TestClientErrors:
    def test_nothing_listening_is_cloud_unavailable(self) -> None:
        with FakeSednaCloud() as cloud:
            port = cloud.port
        client = SednaRestModel(f"http://127.0.0.1:{port}")
        with pytest.raises(CloudUnavailableError, match=rf"cloud http://127.0.0.1:{port}/sedna/predict unreachable"):
            client.predict([1.0], timeout=1.0)

    @pytest.mark.parametrize(("status", "error", "message"), [
        (400, InvalidInputError, "refused the sample (400)"),
        (404, InferenceError, "set JOB_NAME to the name the big model serves"),
        (500, CloudUnavailableError, "failed (500)"),
    ])
    def test_statuses_map_onto_the_sdk_errors(self, status: int, error: type, message: str) -> None:
        with FakeSednaCloud(status=status) as cloud:
            client = SednaRestModel(f"http://127.0.0.1:{cloud.port}")
            with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
                client.predict([1.0], timeout=2.0)
            client.close()
