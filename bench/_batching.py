"""Cloud-side dynamic batching: throughput and p95 latency, batched vs batch size 1.

The cloud model is an MLP 3072-2048-2048-10 built as ONNX from numpy random weights
(fixed seed), run by ONNX Runtime on one intra-op thread, so one sample costs
over a millisecond while a batch of 32 amortises the weight reads. Two servers run in
child processes on 127.0.0.1 (``python -m bench._batching --serve <max_batch>``, gRPC plus REST for ``/metrics``),
one with ``BatchingConfig(max_batch_size=32, max_queue_delay_ms=2)`` and one with
``max_batch_size=1``; the same 32 concurrent gRPC clients (threads, one channel
each) drive each in turn for a fixed time. Used by ``python -m bench.joint_inference``
(no asserts; returns figures).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sedna.backend.tensors import Prediction, TensorSpec

LAYERS = (3072, 2048, 2048, 10)
CLIENTS = 32
SEED = 0


def build_mlp() -> bytes:
    """The MLP as a serialized ONNX model (MatMul + Add + Relu per hidden layer)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(SEED)
    nodes, inits, current = [], [], "x"
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(LAYERS)):
        w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        b = np.zeros(fan_out, np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes += [helper.make_node("MatMul", [current, f"w{i}"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"])]
        current = f"a{i}"
        if i < len(LAYERS) - 2:
            nodes.append(helper.make_node("Relu", [current], [f"r{i}"]))
            current = f"r{i}"
    nodes.append(helper.make_node("Identity", [current], ["logits"]))
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, LAYERS[0]])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, LAYERS[-1]])],
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
    inputs = (TensorSpec("x", "FP32", (-1, LAYERS[0])),)
    outputs = (TensorSpec("logits", "FP32", (-1, LAYERS[-1])),)
    max_batch_size = 64

    def __init__(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(build_mlp(), options, providers=["CPUExecutionProvider"])

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        (logits,) = self.session.run(["logits"], {"x": np.ascontiguousarray(inputs["x"])})
        return Prediction({"logits": logits})


def _serve(max_batch_size: int) -> None:
    """Child process: serve the MLP over gRPC, print the port, stop when stdin closes."""
    from sedna.service.inference import BatchingConfig, InferenceServer

    model = MlpModel()
    model.predict({"x": np.zeros((1, LAYERS[0]), np.float32)})  # warm the session
    batching = BatchingConfig(max_batch_size=max_batch_size, max_queue_delay_ms=2.0, workers=1)
    server = InferenceServer([model], rest_port=0, grpc_port=0, batching=batching).start()
    print(json.dumps({"grpc_port": server.grpc_port, "rest_port": server.rest_port}), flush=True)
    sys.stdin.read()
    server.stop()


class _ServerProcess:
    def __init__(self, max_batch_size: int) -> None:
        root = Path(__file__).resolve().parent.parent
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
               "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "bench._batching", "--serve", str(max_batch_size)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=root, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            raise RuntimeError(f"batching server (max_batch_size={max_batch_size}) exited before listening")
        ports = json.loads(line)
        self.port, self.rest_port = int(ports["grpc_port"]), int(ports["rest_port"])

    def mean_batch_size(self) -> float:
        """Samples per predict call so far, from the server's Prometheus metrics."""
        import httpx

        text = httpx.get(f"http://127.0.0.1:{self.rest_port}/metrics", timeout=10, trust_env=False).text
        values = {}
        for line in text.splitlines():
            for key in ("sedna_inference_batch_size_sum", "sedna_inference_batch_size_count"):
                if line.startswith(key + "{"):
                    values[key] = float(line.rsplit(" ", 1)[1])
        count = values.get("sedna_inference_batch_size_count", 0.0)
        return values.get("sedna_inference_batch_size_sum", 0.0) / count if count else float("nan")

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _load(port: int, seconds: float, warmup: float) -> tuple[float, float]:
    """Throughput (req/s) and p95 latency (ms) of CLIENTS threads calling as fast as they can."""
    from sedna.service.inference import GrpcInferenceClient

    clients = [GrpcInferenceClient("127.0.0.1", port, timeout=30) for _ in range(CLIENTS)]
    rng = np.random.default_rng(1)
    samples = [rng.standard_normal((1, LAYERS[0])).astype(np.float32) for _ in range(CLIENTS)]
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    start = threading.Barrier(CLIENTS + 1)
    window: dict[str, float] = {}

    def worker(i: int) -> None:
        client, x = clients[i], {"x": samples[i]}
        start.wait()
        while True:
            began = time.perf_counter()
            if began >= window["end"]:
                return
            client.infer("mlp", x)
            done = time.perf_counter()
            if began >= window["begin"] and done <= window["end"]:
                latencies[i].append(done - began)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    now = time.perf_counter()
    window["begin"], window["end"] = now + warmup, now + warmup + seconds
    start.wait()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    flat = np.array([t for per in latencies for t in per])
    return len(flat) / seconds, float(np.percentile(flat, 95) * 1000.0) if len(flat) else float("nan")


def measure_batching(quick: bool) -> dict[str, float]:
    """Throughput and p95 with dynamic batching (max 32) vs max batch size 1, 32 concurrent gRPC clients."""
    seconds, warmup = (3.0, 1.0) if quick else (10.0, 2.0)
    batched, unbatched = _ServerProcess(32), _ServerProcess(1)
    try:
        throughput_unbatched, p95_unbatched = _load(unbatched.port, seconds, warmup)
        throughput_batched, p95_batched = _load(batched.port, seconds, warmup)
        mean_batch = batched.mean_batch_size()
    finally:
        batched.close()
        unbatched.close()
    return {
        "throughput_batched": round(throughput_batched, 1),
        "throughput_unbatched": round(throughput_unbatched, 1),
        "p95_batched_ms": round(p95_batched, 2),
        "p95_unbatched_ms": round(p95_unbatched, 2),
        "batching_speedup": round(throughput_batched / throughput_unbatched, 2),
        "batching_p95_ratio": round(p95_batched / p95_unbatched, 3),
        "mean_batch_size": round(mean_batch, 2),
        "clients": CLIENTS,
        "seconds": seconds,
    }


def _main(argv: list[str]) -> Any:
    if len(argv) >= 2 and argv[0] == "--serve":
        _serve(int(argv[1]))
        return None
    print(json.dumps(measure_batching("--quick" in argv)))
    return None


if __name__ == "__main__":
    _main(sys.argv[1:])
