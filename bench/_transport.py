"""Edge -> cloud transport cost: our OIP gRPC path vs Sedna-style JSON number lists.

One 224x224x3 uint8 image makes a round trip to an echo-like model that answers
three channel means (a small output, so the request dominates). Our path sends
raw bytes over gRPC (and, for information, over REST with the binary extension);
the baseline is a plain FastAPI endpoint that receives the image as a JSON list of
numbers and rebuilds the array, as Sedna's ``/{service}/predict`` does. All servers
run in this process on 127.0.0.1; figures are medians over N round trips.
Used by ``python -m bench.joint_inference`` (no asserts; returns figures).
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from fastapi import FastAPI, Request

from sedna.backend.tensors import Prediction, TensorSpec


class _ChannelMeans:
    """Echo-like model: UINT8 [-1,224,224,3] image in, FP32 [-1,3] channel means out."""

    name = "echo"
    version = "1"
    platform = "numpy"
    inputs = (TensorSpec("image", "UINT8", (-1, 224, 224, 3)),)
    outputs = (TensorSpec("means", "FP32", (-1, 3)),)
    max_batch_size = 0

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        return Prediction({"means": inputs["image"].mean(axis=(1, 2), dtype=np.float32)})


def _baseline_app() -> Any:
    app = FastAPI()

    @app.post("/echo/predict")
    async def predict(request: Request) -> Any:
        body = await request.json()
        image = np.array(body["data"], dtype=np.uint8)
        return {"result": image.mean(axis=(0, 1)).tolist()}

    return app


def _serve_in_thread(app: Any) -> tuple[int, Callable[[], None]]:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY, as uvicorn's own
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", ws="none"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return port, stop


def _median_ms(call: Callable[[], object], rounds: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(samples)


def measure_transport(quick: bool) -> dict[str, float]:
    """Median round-trip ms of one image over gRPC (raw bytes) vs JSON lists; speedup = json / grpc."""
    import httpx

    from sedna.service.inference import GrpcInferenceClient, InferenceServer, RestInferenceClient

    rounds = 20 if quick else 100
    nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]  # as requests/urllib3 do; fair to the baseline
    image = np.random.default_rng(0).integers(0, 256, size=(224, 224, 3), dtype=np.uint8)
    batch = image[np.newaxis]
    want = image.mean(axis=(0, 1))
    server = InferenceServer([_ChannelMeans()], rest_port=0, grpc_port=0).start()
    base_port, stop_baseline = _serve_in_thread(_baseline_app())
    try:
        with GrpcInferenceClient("127.0.0.1", server.grpc_port or 0, timeout=30) as grpc_client, \
                RestInferenceClient(f"http://127.0.0.1:{server.rest_port}", timeout=30) as rest_client, \
                httpx.Client(base_url=f"http://127.0.0.1:{base_port}", timeout=30, trust_env=False,
                             transport=httpx.HTTPTransport(socket_options=nodelay)) as http:

            def grpc_call() -> None:
                got = grpc_client.infer("echo", {"image": batch}).outputs["means"][0]
                assert np.allclose(got, want, atol=1e-3), "gRPC path returned a wrong answer"

            def rest_call() -> None:
                rest_client.infer("echo", {"image": batch})

            def json_call() -> None:
                response = http.post("/echo/predict", json={"data": image.tolist()})
                response.raise_for_status()
                assert np.allclose(response.json()["result"], want, atol=1e-3), "baseline returned a wrong answer"

            grpc_ms = _median_ms(grpc_call, rounds)
            json_ms = _median_ms(json_call, rounds)
            rest_ms = _median_ms(rest_call, rounds)
    finally:
        stop_baseline()
        server.stop()
    return {
        "grpc_ms": round(grpc_ms, 3),
        "rest_binary_ms": round(rest_ms, 3),
        "json_ms": round(json_ms, 3),
        "transport_speedup": round(json_ms / grpc_ms, 2),
        "payload_bytes": int(image.nbytes),
        "rounds": rounds,
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(measure_transport("--quick" in sys.argv)))
