"""Cloud-side dynamic batching: throughput and p95 latency, batched vs batch size 1.

The cloud model is an MLP 3072-H-2048-10 built as ONNX from numpy random weights
(fixed seed), run by ONNX Runtime on one intra-op thread. The benchmark's brief asks
for a model that costs at least 1 ms per sample at batch 1 on one thread, so
:func:`calibrate` times batch-1 runs and takes the narrowest H in :data:`HIDDEN_WIDTHS`
whose fastest run takes 1 ms on this machine (2048 did on slower machines; a faster CPU
needs 2560 or 3072); the width and the measured cost are reported. A batch of 32
amortises the weight reads. Two servers run in child processes on 127.0.0.1
(``python -m bench._batching --serve <max_batch> <H>``, gRPC plus REST for ``/metrics``),
one with ``BatchingConfig(max_batch_size=32, max_queue_delay_ms=2)`` and one with
``max_batch_size=1``. The same 32 concurrent clients (one channel each, asyncio tasks
of this process) drive each in turn for a fixed time, first over ``ModelStreamInfer``
streams, then with unary ``ModelInfer`` calls. The clients share the machine's two
cores with the server, so every microsecond a request costs either side is taken
from the model. Used by ``python -m bench.joint_inference`` (no asserts; returns figures).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sedna.backend.tensors import Prediction, TensorSpec

INPUT, OUTPUT = 3072, 10
HIDDEN_WIDTHS = (2048, 2560, 3072, 4096)
"""Candidate widths of the first hidden layer, narrowest first (the second is 2048)."""
MIN_SAMPLE_MS = 1.0
CLIENTS = 32
SEED = 0


def layers(hidden: int) -> tuple[int, ...]:
    """The layer widths of the MLP with first hidden width ``hidden``."""
    return (INPUT, hidden, 2048, OUTPUT)


def build_mlp(hidden: int) -> bytes:
    """The MLP 3072-``hidden``-2048-10 as a serialized ONNX model (MatMul + Add + Relu per hidden layer)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(SEED)
    nodes, inits, current = [], [], "x"
    sizes = layers(hidden)
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        b = np.zeros(fan_out, np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes += [helper.make_node("MatMul", [current, f"w{i}"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"])]
        current = f"a{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [current], [f"r{i}"]))
            current = f"r{i}"
    nodes.append(helper.make_node("Identity", [current], ["logits"]))
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, INPUT])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, OUTPUT])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


class MlpModel:
    """The MLP as a ServedModel on one ONNX Runtime thread."""

    name = "mlp"
    version = "1"
    platform = "onnxruntime_onnx"
    inputs = (TensorSpec("x", "FP32", (-1, INPUT)),)
    outputs = (TensorSpec("logits", "FP32", (-1, OUTPUT)),)
    max_batch_size = 64

    def __init__(self, hidden: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(build_mlp(hidden), options, providers=["CPUExecutionProvider"])

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        (logits,) = self.session.run(["logits"], {"x": np.ascontiguousarray(inputs["x"])})
        return Prediction({"logits": logits})


def sample_ms(model: MlpModel, batch: int = 1, runs: int = 50) -> float:
    """Milliseconds per sample of ``model`` at ``batch``: the fastest of ``runs`` (other load only adds time)."""
    x = {"x": np.random.default_rng(2).standard_normal((batch, INPUT)).astype(np.float32)}
    model.predict(x)
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        model.predict(x)
        times.append(time.perf_counter() - began)
    return min(times) * 1000.0 / batch


def calibrate() -> tuple[int, float]:
    """The narrowest hidden width whose batch-1 cost reaches :data:`MIN_SAMPLE_MS`, and that cost (ms)."""
    for hidden in HIDDEN_WIDTHS:
        cost = sample_ms(MlpModel(hidden))
        if cost >= MIN_SAMPLE_MS:
            break
    return hidden, cost


def _serve(max_batch_size: int, hidden: int) -> None:
    """A replica (child process): serve the MLP on the ports in the environment until SIGTERM."""
    from sedna.service.inference import BatchingConfig, InferenceServer
    from sedna.service.inference.replicas import signal_ready

    model = MlpModel(hidden)
    model.predict({"x": np.zeros((1, INPUT), np.float32)})  # warm the session
    batching = BatchingConfig(max_batch_size=max_batch_size, max_queue_delay_ms=2.0, workers=1)
    server = InferenceServer([model], rest_port=int(os.environ["BENCH_REST_PORT"]),
                             grpc_port=int(os.environ["BENCH_GRPC_PORT"]), batching=batching, reuse_port=True).start()
    signal_ready()
    server.serve_forever()


def _env() -> dict[str, str]:
    root = Path(__file__).resolve().parent.parent
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
            "OMP_NUM_THREADS": "1"}


class _ServerProcess:
    """The cloud worker's topology: ``replicas`` server processes sharing the ports (SO_REUSEPORT)."""

    def __init__(self, max_batch_size: int, hidden: int, replicas: int) -> None:
        from sedna.service.inference.replicas import ReplicaSet

        command = [sys.executable, "-m", "bench._batching", "--serve", str(max_batch_size), str(hidden)]
        self.replicas = ReplicaSet(command, replicas, _env(), "127.0.0.1", {"BENCH_GRPC_PORT": 0,
                                                                             "BENCH_REST_PORT": 0}).start()
        self.port, self.rest_port = self.replicas.ports["BENCH_GRPC_PORT"], self.replicas.ports["BENCH_REST_PORT"]

    def batches(self) -> tuple[float, float]:
        """(samples, predict calls) so far, from the server's Prometheus metrics."""
        import httpx

        text = httpx.get(f"http://127.0.0.1:{self.rest_port}/metrics", timeout=10, trust_env=False).text
        values = {}
        for line in text.splitlines():
            for key in ("sedna_inference_batch_size_sum", "sedna_inference_batch_size_count"):
                if line.startswith(key + "{"):
                    values[key] = float(line.rsplit(" ", 1)[1])
        return values.get("sedna_inference_batch_size_sum", 0.0), values.get("sedna_inference_batch_size_count", 0.0)

    def close(self) -> None:
        self.replicas.stop()


_ORT_LIMIT = """
import sys, time
import numpy as np
from bench._batching import INPUT, MlpModel
model, x = MlpModel({hidden}), {{"x": np.random.default_rng(3).standard_normal((32, INPUT)).astype(np.float32)}}
model.predict(x)
print("ready", flush=True)
sys.stdin.readline()
samples, began = 0, time.perf_counter()
while (now := time.perf_counter()) < began + {seconds}:
    model.predict(x)
    samples += 32
print(samples / (now - began), flush=True)
"""


def ort_limit(hidden: int, processes: int, seconds: float) -> float:
    """Samples/s of bare ONNX Runtime at batch 32 on ``processes`` processes at once (one thread each)."""
    code = _ORT_LIMIT.format(hidden=hidden, seconds=seconds)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env=_env(), cwd=Path(__file__).resolve().parent.parent, text=True)
             for _ in range(processes)]
    try:
        for proc in procs:  # sessions built and warm: start them together
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        return sum(float(proc.communicate(timeout=seconds + 60)[0]) for proc in procs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _load(port: int, seconds: float, warmup: float, stream: bool) -> tuple[float, float]:
    """Throughput (req/s) and p95 latency (ms) of CLIENTS clients, each calling as fast as it can.

    Each client has its own channel (and, with ``stream``, its own ``ModelStreamInfer``
    stream) and one request in flight; all run as tasks of one event loop, the cheapest
    load generator on the server's machine.
    """
    from sedna.service.inference import AsyncGrpcInferenceClient

    rng = np.random.default_rng(1)
    samples = [rng.standard_normal((1, INPUT)).astype(np.float32) for _ in range(CLIENTS)]

    async def run() -> list[float]:
        clients = [AsyncGrpcInferenceClient("127.0.0.1", port, timeout=30) for _ in range(CLIENTS)]
        streams = [client.stream() for client in clients] if stream else []
        latencies: list[float] = []
        begin = time.perf_counter() + warmup
        end = begin + seconds

        async def one(i: int) -> None:
            call, x = (streams[i] if stream else clients[i]).infer, {"x": samples[i]}
            while (began := time.perf_counter()) < end:
                await call("mlp", x)
                done = time.perf_counter()
                if began >= begin and done <= end:
                    latencies.append(done - began)

        try:
            await asyncio.gather(*(one(i) for i in range(CLIENTS)))
        finally:
            for s in streams:
                await s.close()
            for client in clients:
                await client.close()
        return latencies

    flat = np.array(asyncio.run(run()))
    return len(flat) / seconds, float(np.percentile(flat, 95) * 1000.0) if len(flat) else float("nan")


def measure_batching(quick: bool, replicas: int = 0) -> dict[str, Any]:
    """Throughput and p95 with dynamic batching (max 32) vs max batch size 1, 32 concurrent clients.

    Both transports are measured against both servers, alternating: ``ModelStreamInfer``
    streams (the figures without suffix) and unary ``ModelInfer`` calls (``*_unary``).
    Both servers run as ``replicas`` processes (default: one per usable core), as the cloud
    worker does with ``SERVING_REPLICAS=auto``. Right before each batched run, bare ONNX
    Runtime runs batches of 32 on one process per usable core for as long (the limit of these
    cores for this model); ``serving_vs_ort_limit`` is batched req/s over that limit.
    """
    from sedna.service.inference.replicas import usable_cores

    seconds, warmup = (3.0, 1.0) if quick else (8.0, 2.0)
    cores = usable_cores()
    replicas = replicas or cores
    hidden, cost = calibrate()
    batched, unbatched = _ServerProcess(32, hidden, replicas), _ServerProcess(1, hidden, replicas)
    figures: dict[str, Any] = {"replicas": replicas}
    try:
        for stream, suffix in ((True, ""), (False, "_unary")):
            throughput_unbatched, p95_unbatched = _load(unbatched.port, seconds, warmup, stream)
            limit = ort_limit(hidden, cores, seconds)
            samples, calls = batched.batches()
            throughput_batched, p95_batched = _load(batched.port, seconds, warmup, stream)
            samples_after, calls_after = batched.batches()
            figures.update({
                f"ort_limit{suffix}": round(limit, 1),
                f"serving_vs_ort_limit{suffix}": round(throughput_batched / limit, 3),
                f"mean_batch_size{suffix}": round((samples_after - samples) / max(calls_after - calls, 1), 2),
                f"throughput_batched{suffix}": round(throughput_batched, 1),
                f"throughput_unbatched{suffix}": round(throughput_unbatched, 1),
                f"p95_batched_ms{suffix}": round(p95_batched, 2),
                f"p95_unbatched_ms{suffix}": round(p95_unbatched, 2),
                f"batching_speedup{suffix}": round(throughput_batched / throughput_unbatched, 2),
                f"batching_p95_ratio{suffix}": round(p95_batched / p95_unbatched, 3),
            })
    finally:
        batched.close()
        unbatched.close()
    return {**figures, "model": "mlp-" + "-".join(map(str, layers(hidden))),
            "model_ms_batch1": round(cost, 3), "clients": CLIENTS, "seconds": seconds}


def _main(argv: list[str]) -> Any:
    if len(argv) >= 3 and argv[0] == "--serve":
        _serve(int(argv[1]), int(argv[2]))
        return None
    replicas = int(argv[argv.index("--replicas") + 1]) if "--replicas" in argv else 0
    print(json.dumps(measure_batching("--quick" in argv, replicas)))
    return None


if __name__ == "__main__":
    _main(sys.argv[1:])
