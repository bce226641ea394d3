"""Client error mapping over real sockets: unreachable servers, missed deadlines and
model failures become CloudUnavailableError; probes answer False instead of raising."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sedna.common.errors import CloudUnavailableError
from sedna.service.inference import GrpcInferenceClient, InferenceServer, RestInferenceClient
from sedna.service.inference import __all__ as exported
from tests.service.test_inference_support import LinearModel, serving
from tests.support.procs import free_port, stop, wait_for_port

X = np.ones((1, 4), np.float32)
POISON = np.array([[-1, 0, 0, 0]], np.float32)


@pytest.fixture(scope="module")
def slow_server() -> Iterator[InferenceServer]:
    with serving([LinearModel(max_batch_size=0, delay=0.5)]) as srv:
        yield srv


def test_the_public_surface_is_pinned() -> None:
    assert exported == ["AsyncGrpcInferenceClient", "AsyncInferStream", "BatchingConfig", "GrpcInferenceClient",
                        "InferResult", "InferStream", "InferenceServer", "RestInferenceClient", "TLSConfig"]


class TestUnreachable:
    def test_grpc_connection_refused(self) -> None:
        with GrpcInferenceClient("127.0.0.1", free_port(), timeout=1.0) as client:
            with pytest.raises(CloudUnavailableError, match="UNAVAILABLE"):
                client.infer("linear", {"x": X})
            assert client.server_live() is False and client.model_ready("linear") is False

    def test_rest_connection_refused(self) -> None:
        with RestInferenceClient(f"http://127.0.0.1:{free_port()}", timeout=1.0) as client:
            with pytest.raises(CloudUnavailableError, match="ConnectError"):
                client.infer("linear", {"x": X})
            assert client.server_ready() is False and client.model_ready("linear") is False


class TestDeadlines:
    def test_grpc_deadline(self, slow_server: InferenceServer) -> None:
        with GrpcInferenceClient("127.0.0.1", slow_server.grpc_port) as client:
            with pytest.raises(CloudUnavailableError, match="DEADLINE_EXCEEDED"):
                client.infer("linear", {"x": X}, timeout=0.1)
            assert client.infer("linear", {"x": X}, timeout=5).outputs["y"].tolist() == [[18, 22, 26]]

    def test_rest_timeout(self, slow_server: InferenceServer) -> None:
        with RestInferenceClient(f"http://127.0.0.1:{slow_server.rest_port}") as client:
            with pytest.raises(CloudUnavailableError, match="timed out"):
                client.infer("linear", {"x": X}, timeout=0.1)
            assert client.infer("linear", {"x": X}, timeout=5).outputs["y"].tolist() == [[18, 22, 26]]


class TestModelFailure:
    def test_model_exception_is_500_and_cloud_unavailable(self) -> None:
        import httpx

        with serving([LinearModel(max_batch_size=0)]) as srv:
            response = httpx.post(f"http://127.0.0.1:{srv.rest_port}/v2/models/linear/infer",
                                  json={"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4],
                                                    "data": [-1, 0, 0, 0]}]})
            assert response.status_code == 500
            assert response.json() == {"error": "model 'linear' failed: RuntimeError: poisoned sample"}
            with RestInferenceClient(f"http://127.0.0.1:{srv.rest_port}") as rest, \
                    GrpcInferenceClient("127.0.0.1", srv.grpc_port) as grpc_client:
                with pytest.raises(CloudUnavailableError, match="HTTP 500"):
                    rest.infer("linear", {"x": POISON})
                with pytest.raises(CloudUnavailableError, match=r"INTERNAL.*poisoned sample"):
                    grpc_client.infer("linear", {"x": POISON})
                assert rest.infer("linear", {"x": X}).outputs["y"].tolist() == [[18, 22, 26]]
            text = srv.metrics.exposition()[0].decode()
        assert 'sedna_inference_failures_total{model="linear",protocol="rest",reason="model_error"} 2.0' in text
        assert 'sedna_inference_failures_total{model="linear",protocol="grpc",reason="model_error"} 1.0' in text


class TestServerArguments:
    def test_bad_arguments_are_named(self) -> None:
        with pytest.raises(ValueError, match="rest_port=70000 must be an integer"):
            InferenceServer([LinearModel()], rest_port=70000)
        with pytest.raises(ValueError, match="both None"):
            InferenceServer([LinearModel()], rest_port=None, grpc_port=None)
        with pytest.raises(ValueError, match="two served models are named 'linear'"):
            InferenceServer([LinearModel(), LinearModel()])
        from sedna.service.inference import BatchingConfig

        with pytest.raises(ValueError, match=r"BatchingConfig.max_queue_delay_ms=-1"):
            BatchingConfig(max_queue_delay_ms=-1)

    def test_stop_then_clients_see_the_server_gone(self) -> None:
        server = InferenceServer([LinearModel()], rest_port=0, grpc_port=0).start()
        grpc_port, rest_port = server.grpc_port, server.rest_port
        server.stop()
        with GrpcInferenceClient("127.0.0.1", grpc_port, timeout=1.0) as client:
            assert client.server_live() is False
        with RestInferenceClient(f"http://127.0.0.1:{rest_port}", timeout=1.0) as client:
            assert client.server_live() is False


SERVE_FOREVER = """
import sys
from tests.service.test_inference_support import LinearModel
from sedna.service.inference import InferenceServer
server = InferenceServer([LinearModel()], rest_port=int(sys.argv[1]), grpc_port=int(sys.argv[2]))
server.serve_forever()
print("stopped cleanly", flush=True)
"""


class TestServeForever:
    @pytest.mark.processes
    def test_sigterm_stops_the_server_gracefully(self, tmp_path: Path) -> None:
        rest_port, grpc_port = free_port(), free_port()
        log = tmp_path / "server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-c", SERVE_FOREVER, str(rest_port), str(grpc_port)],
                                    stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2])
        try:
            wait_for_port(rest_port, 30, proc, log)
            wait_for_port(grpc_port, 30, proc, log)
            with GrpcInferenceClient("127.0.0.1", grpc_port) as client:
                assert client.infer("linear", {"x": X}).outputs["y"].tolist() == [[18, 22, 26]]
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
        finally:
            stop(proc)
        assert "stopped cleanly" in log.read_text()
