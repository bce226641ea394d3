"""Edge -> cloud transport cost: our OIP paths against a raw-bytes floor and against JSON lists.

One 224x224x3 uint8 image makes a round trip to an echo-like model that answers
three channel means (a small output, so the request dominates). Measured side by side:

- our paths: OIP v2 over gRPC (raw bytes, the edge's default) and over REST with the
  binary extension, through :class:`~sedna.service.inference.InferenceServer` and our clients;
- the floor: the least a Python server can do with the same bytes, doing the same
  work: a ten-line FastAPI endpoint that takes the image as the raw request body
  (keep-alive) and a raw gRPC unary method whose request and response are plain bytes
  (no protobuf, no metadata); ``floor_ms`` is the faster of the two;
- the baseline: a plain FastAPI endpoint that receives the image as a JSON list of
  numbers and rebuilds the array, as Sedna's ``/{service}/predict`` does.

Every path is timed in interleaved rounds (a median per round, the median of rounds
reported), so load that comes and goes on a shared machine falls on all of them alike;
``transport_vs_floor_ratio`` is our gRPC path over the floor. All servers run in this
process on 127.0.0.1. Used by ``python -m bench.joint_inference`` (no asserts; returns figures).
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


def _floor_app() -> Any:
    from fastapi.responses import Response

    app = FastAPI()

    @app.post("/echo/raw")
    async def raw(request: Request) -> Any:
        image = np.frombuffer(await request.body(), np.uint8).reshape(224, 224, 3)
        return Response(image.mean(axis=(0, 1), dtype=np.float32).tobytes())

    return app


async def _floor_grpc() -> tuple[Any, int]:
    """A grpc.aio server with one unary method on raw bytes (no protobuf): the gRPC floor."""
    import grpc

    async def echo(request: bytes, context: Any) -> bytes:
        image = np.frombuffer(request, np.uint8).reshape(224, 224, 3)
        return image.mean(axis=(0, 1), dtype=np.float32).tobytes()

    server = grpc.aio.server()
    handlers = {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("floor", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


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


def _interleaved(calls: Mapping[str, Callable[[], object]], rounds: int, per_round: int) -> dict[str, float]:
    """Median over ``rounds`` of each call's median ms over ``per_round`` calls, the calls taking turns."""
    medians: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            medians[name].append(_median_ms(call, per_round))
    return {name: statistics.median(values) for name, values in medians.items()}


def measure_transport(quick: bool) -> dict[str, float]:
    """Median round-trip ms of one image over our gRPC and REST paths, the raw-bytes floor and JSON lists."""
    import grpc
    import httpx

    from sedna.common.loop_thread import LoopThread
    from sedna.service.inference import GrpcInferenceClient, InferenceServer, RestInferenceClient

    rounds, per_round = (5, 20) if quick else (9, 40)
    nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]  # as requests/urllib3 do; fair to the baseline
    image = np.random.default_rng(0).integers(0, 256, size=(224, 224, 3), dtype=np.uint8)
    batch = image[np.newaxis]
    want = image.mean(axis=(0, 1))
    server = InferenceServer([_ChannelMeans()], rest_port=0, grpc_port=0).start()
    base_port, stop_baseline = _serve_in_thread(_baseline_app())
    floor_port, stop_floor = _serve_in_thread(_floor_app())
    floor_loop = LoopThread("bench-grpc-floor")
    floor_server, floor_grpc_port = floor_loop.start(_floor_grpc)

    def http_client(port: int) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False,
                            transport=httpx.HTTPTransport(socket_options=nodelay))

    try:
        with GrpcInferenceClient("127.0.0.1", server.grpc_port or 0, timeout=30) as grpc_client, \
                RestInferenceClient(f"http://127.0.0.1:{server.rest_port}", timeout=30) as rest_client, \
                http_client(base_port) as http, http_client(floor_port) as floor_http, \
                grpc.insecure_channel(f"127.0.0.1:{floor_grpc_port}") as floor_channel:
            floor_echo = floor_channel.unary_unary("/floor/Echo")

            def check(got: Any, path: str) -> None:
                assert np.allclose(got, want, atol=1e-3), f"{path} returned a wrong answer"

            def grpc_call() -> None:
                check(grpc_client.infer("echo", {"image": batch}).outputs["means"][0], "the gRPC path")

            def rest_call() -> None:
                check(rest_client.infer("echo", {"image": batch}).outputs["means"][0], "the REST path")

            def floor_http_call() -> None:
                response = floor_http.post("/echo/raw", content=image.tobytes())
                response.raise_for_status()
                check(np.frombuffer(response.content, np.float32), "the HTTP floor")

            def floor_grpc_call() -> None:
                check(np.frombuffer(floor_echo(image.tobytes(), timeout=30), np.float32), "the gRPC floor")

            def json_call() -> None:
                response = http.post("/echo/predict", json={"data": image.tolist()})
                response.raise_for_status()
                check(response.json()["result"], "the JSON baseline")

            ms = _interleaved({"grpc": grpc_call, "rest": rest_call, "floor_http": floor_http_call,
                               "floor_grpc": floor_grpc_call}, rounds, per_round)
            json_ms = _median_ms(json_call, max(10, per_round // 2))
    finally:
        floor_loop.call(floor_server.stop(0), 10)
        floor_loop.stop()
        stop_floor()
        stop_baseline()
        server.stop()
    floor = min(ms["floor_http"], ms["floor_grpc"])
    return {
        "grpc_ms": round(ms["grpc"], 3),
        "rest_binary_ms": round(ms["rest"], 3),
        "floor_http_ms": round(ms["floor_http"], 3),
        "floor_grpc_ms": round(ms["floor_grpc"], 3),
        "floor_ms": round(floor, 3),
        "json_ms": round(json_ms, 3),
        "transport_vs_floor_ratio": round(ms["grpc"] / floor, 3),
        "rest_vs_floor_ratio": round(ms["rest"] / floor, 3),
        "transport_speedup": round(json_ms / ms["grpc"], 2),
        "payload_bytes": int(image.nbytes),
        "rounds": rounds * per_round,
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(measure_transport("--quick" in sys.argv)))
