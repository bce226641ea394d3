"""Cloud-side dynamic batching: throughput and p95 latency, batched vs batch size 1.

The cloud model is an MLP 3072-H-2048-10 built as ONNX from numpy random weights
(fixed seed), run by ONNX Runtime on one intra-op thread. The benchmark's brief asks
for a model that costs at least 1 ms per sample at batch 1 on one thread, so
:func:`calibrate` times batch-1 runs and takes the narrowest H in :data:`HIDDEN_WIDTHS`
whose fastest run takes 1 ms on this machine (2048 did on slower machines; a faster CPU
needs 2560 or 3072); the width and the measured cost are reported. A batch of 32
amortises the weight reads. Two servers run as child processes on 127.0.0.1
(``python -m bench._batching --serve <max_batch> <H> <workers> adaptive|fixed``, gRPC plus REST for
``/metrics``), one with ``BatchingConfig(max_batch_size=32, max_queue_delay_ms=2)`` (adaptive)
and one with ``max_batch_size=1``, in the same topology (replicas x batcher workers). The same
32 concurrent clients (one channel each, asyncio tasks of this process) drive them, first over
``ModelStreamInfer`` streams, then with unary ``ModelInfer`` calls. With unary calls more
slices send samples as edges do: :data:`EDGES` processes, each one
:class:`~sedna.core.joint_inference.cloud.CloudModel` that batches the offloads arriving together,
offloading from 8 threads each (the same 32 callers, ``*_edge_batched``) and from 32 and 64
threads each (128 and 256 callers, ``*_edge_batched_128`` / ``_256``): a server's throughput
limit shows only under a load that keeps its batches full, as a concurrency sweep shows it.

Load on a shared machine comes and goes within seconds, so nothing is compared across
minutes: for each transport the unbatched server, bare ONNX Runtime (batch 32, one process per
usable core, one thread each: the most these cores can do with this model) and the batched server
take turns in short slices, in rotating order, for several rounds; every ratio is the median of
its per-round ratios. Beside the wall-clock figures the CPU time each side spent is read from
``/proc`` (server replicas, this client process, the ONNX Runtime processes), which says where
the time went and is much less sensitive to other load than wall-clock rates. The clients share
the machine's cores with the server, so every microsecond a request costs either side is taken
from the model. Used by ``python -m bench.joint_inference`` (no asserts; returns figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import statistics
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


def _serve(max_batch_size: int, hidden: int, workers: int, adaptive: bool = True) -> None:
    """A replica (child process): serve the MLP on the ports in the environment until SIGTERM."""
    from sedna.service.inference import BatchingConfig, InferenceServer
    from sedna.service.inference.replicas import signal_ready

    model = MlpModel(hidden)
    model.predict({"x": np.zeros((1, INPUT), np.float32)})  # warm the session
    batching = BatchingConfig(max_batch_size=max_batch_size, max_queue_delay_ms=2.0, workers=workers, adaptive=adaptive)
    server = InferenceServer([model], rest_port=int(os.environ["BENCH_REST_PORT"]),
                             grpc_port=int(os.environ["BENCH_GRPC_PORT"]), batching=batching, reuse_port=True).start()
    signal_ready()
    server.serve_forever()


def _env() -> dict[str, str]:
    root = Path(__file__).resolve().parent.parent
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
            "OMP_NUM_THREADS": "1"}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used (all its threads), from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _ServerProcess:
    """The cloud worker's topology: ``replicas`` server processes sharing the ports (SO_REUSEPORT)."""

    def __init__(self, max_batch_size: int, hidden: int, replicas: int, workers: int, adaptive: bool = True) -> None:
        from sedna.service.inference.replicas import ReplicaSet

        command = [sys.executable, "-m", "bench._batching", "--serve", str(max_batch_size), str(hidden),
                   str(workers), "adaptive" if adaptive else "fixed"]
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

    def cpu(self) -> float:
        """CPU seconds the replicas have used so far."""
        return sum(cpu_seconds(pid) for pid in self.replicas.pids())

    def close(self) -> None:
        self.replicas.stop()


_ORT_LIMIT = """
import sys, time
import numpy as np
from bench._batching import INPUT, MlpModel
model, x = MlpModel({hidden}), {{"x": np.random.default_rng(3).standard_normal((32, INPUT)).astype(np.float32)}}
model.predict(x)
print("ready", flush=True)
for line in sys.stdin:
    seconds = float(line)
    samples, began, cpu = 0, time.perf_counter(), time.process_time()
    while (now := time.perf_counter()) < began + seconds:
        model.predict(x)
        samples += 32
    print(samples, now - began, time.process_time() - cpu, flush=True)
"""


class _Piped:
    """Helper processes running ``code`` that print ``ready`` once warm, then answer one line per line."""

    def __init__(self, code: str, count: int) -> None:
        self.procs = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       env=_env(), cwd=Path(__file__).resolve().parent.parent, text=True)
                      for _ in range(count)]
        try:
            for proc in self.procs:
                assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        except BaseException:
            self.close()
            raise

    def ask(self, line: str) -> list[list[float]]:
        """Send ``line`` to every process at once; their answers (numbers) in order."""
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
        answers = []
        for proc in self.procs:
            assert proc.stdout is not None
            answers.append([float(v) for v in proc.stdout.readline().split()])
        return answers

    def close(self) -> None:
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


class OrtLimit(_Piped):
    """Bare ONNX Runtime at batch 32 in ``processes`` processes (one thread each), run on demand."""

    def __init__(self, hidden: int, processes: int) -> None:
        super().__init__(_ORT_LIMIT.format(hidden=hidden), processes)

    def run(self, seconds: float) -> tuple[float, float]:
        """(samples/s, CPU seconds per sample) of all processes running together for ``seconds``."""
        answers = self.ask(f"{seconds}")
        samples = sum(n for n, _, _ in answers)
        return sum(n / wall for n, wall, _ in answers), sum(used for _, _, used in answers) / max(samples, 1.0)


def _load(port: int, seconds: float, warmup: float, stream: bool) -> tuple[float, float, float]:
    """Throughput (req/s), p95 latency (ms) and this process's CPU seconds per request of CLIENTS clients.

    Each client has its own channel (and, with ``stream``, its own ``ModelStreamInfer``
    stream) and one request in flight; all run as tasks of one event loop, the cheapest
    load generator on the server's machine.
    """
    from sedna.service.inference import AsyncGrpcInferenceClient

    rng = np.random.default_rng(1)
    samples = [rng.standard_normal((1, INPUT)).astype(np.float32) for _ in range(CLIENTS)]
    cpu: list[float] = []

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

        async def clock() -> None:
            await asyncio.sleep(max(0.0, begin - time.perf_counter()))
            cpu.append(time.process_time())
            await asyncio.sleep(max(0.0, end - time.perf_counter()))
            cpu.append(time.process_time())

        try:
            await asyncio.gather(clock(), *(one(i) for i in range(CLIENTS)))
        finally:
            for s in streams:
                await s.close()
            for client in clients:
                await client.close()
        return latencies

    flat = np.array(asyncio.run(run()))
    p95 = float(np.percentile(flat, 95) * 1000.0) if len(flat) else float("nan")
    return len(flat) / seconds, p95, (cpu[1] - cpu[0]) / max(len(flat), 1)


_EDGE = """
import sys, threading, time
import numpy as np
from bench._batching import INPUT
from sedna.core.joint_inference.cloud import CloudModel
from sedna.service.inference import GrpcInferenceClient
cloud = CloudModel(GrpcInferenceClient("127.0.0.1", {port}, timeout=30), "mlp")
samples = np.random.default_rng(2).standard_normal(({threads}, INPUT)).astype(np.float32)  # one per thread
cloud.predict(samples[0])
print("ready", flush=True)
for line in sys.stdin:
    seconds, warmup, threads = line.split()
    seconds, warmup, threads = float(seconds), float(warmup), int(threads)
    begin = time.perf_counter() + warmup
    end = begin + seconds
    done = [0] * threads
    calls = cloud.batcher.stats.calls, cloud.batcher.stats.samples
    def one(i):
        while (began := time.perf_counter()) < end:
            cloud.predict(samples[i])
            if began >= begin and time.perf_counter() <= end:
                done[i] += 1
    workers = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    time.sleep(max(0.0, begin - time.perf_counter()))
    cpu = time.process_time()
    time.sleep(max(0.0, end - time.perf_counter()))
    cpu = time.process_time() - cpu
    for w in workers:
        w.join()
    stats = cloud.batcher.stats
    print(sum(done), cpu, stats.calls - calls[0], stats.samples - calls[1], flush=True)
"""
EDGES = 4
"""Edge processes of the edge-batching slices, each offloading one sample at a time from each thread."""
EDGE_CALLERS = (CLIENTS, 128, 256)
"""Callers (threads over all edge processes) of the edge-batching slices: the 32 clients, then more."""


class EdgeLoad(_Piped):
    """:data:`EDGES` edge processes, each offloading from its threads through one
    :class:`~sedna.core.joint_inference.cloud.CloudModel` (which batches concurrent offloads)."""

    def __init__(self, port: int) -> None:
        super().__init__(_EDGE.format(port=port, threads=max(EDGE_CALLERS) // EDGES), EDGES)

    def run(self, seconds: float, warmup: float, callers: int) -> tuple[float, float, float]:
        """(samples/s, client CPU seconds per sample, samples per edge request) of ``callers``
        threads over all edges, over ``seconds``."""
        answers = self.ask(f"{seconds} {warmup} {callers // EDGES}")
        answered, cpu, calls, sent = (sum(column) for column in zip(*answers, strict=True))
        return answered / seconds, cpu / max(answered, 1.0), sent / max(calls, 1.0)


def _edge_slice(server: _ServerProcess, edges: EdgeLoad, seconds: float, warmup: float,
                callers: int) -> dict[str, float]:
    """One slice of edge-batched offloads against ``server``: rate, server and client CPU per sample."""
    samples, calls = server.batches()
    cpu = server.cpu()
    rate, client_cpu, per_request = edges.run(seconds, warmup, callers)
    server_cpu = server.cpu() - cpu
    samples_after, calls_after = server.batches()
    done = max(samples_after - samples, 1.0)
    return {"rate": rate, "server_us": server_cpu / done * 1e6, "client_us": client_cpu * 1e6,
            "per_request": per_request, "batch": done / max(calls_after - calls, 1.0)}


def _slice(server: _ServerProcess, seconds: float, warmup: float, stream: bool) -> dict[str, float]:
    """One load slice against ``server``: rate, p95, mean batch and CPU microseconds per request."""
    samples, calls = server.batches()
    cpu = server.cpu()
    rate, p95, client_cpu = _load(server.port, seconds, warmup, stream)
    server_cpu = server.cpu() - cpu
    samples_after, calls_after = server.batches()
    done = max(samples_after - samples, 1.0)
    return {"rate": rate, "p95": p95, "batch": done / max(calls_after - calls, 1.0),
            "server_us": server_cpu / done * 1e6, "client_us": client_cpu * 1e6}


def measure_batching(quick: bool, replicas: int = 0, workers: int = 1, adaptive: bool = True) -> dict[str, Any]:
    """Throughput and p95 with dynamic batching (max 32) vs max batch size 1, 32 concurrent clients.

    Both transports are measured: ``ModelStreamInfer`` streams (the figures without suffix)
    and unary ``ModelInfer`` calls (``*_unary``). Both servers run as ``replicas`` processes
    (default: one per usable core, as the cloud worker does with ``SERVING_REPLICAS=auto``) of
    ``workers`` batcher threads each; ``adaptive=False`` gives the batched server the fixed queue
    delay instead of the adaptive policy (for A/B runs). For each transport, rounds of three slices in rotating
    order (unbatched server, bare ONNX Runtime at batch 32 on every usable core, batched server);
    ``serving_vs_ort_limit`` is batched req/s over that limit and ``batching_speedup`` batched
    over unbatched req/s, each the median of its per-round ratios.
    """
    from sedna.service.inference.replicas import usable_cores

    rounds, seconds, warmup = (3, 2.0, 0.5) if quick else (5, 3.0, 0.5)
    cores = usable_cores()
    replicas = replicas or cores
    hidden, cost = calibrate()
    with contextlib.ExitStack() as helpers:  # whatever started is stopped, also when a later one fails
        batched = helpers.enter_context(contextlib.closing(_ServerProcess(32, hidden, replicas, workers, adaptive)))
        unbatched = helpers.enter_context(contextlib.closing(_ServerProcess(1, hidden, replicas, workers)))
        limit = helpers.enter_context(contextlib.closing(OrtLimit(hidden, cores)))
        edges = helpers.enter_context(contextlib.closing(EdgeLoad(batched.port)))
        figures: dict[str, Any] = {"replicas": replicas, "workers": workers, "rounds": rounds,
                                   "policy": "adaptive" if adaptive else "fixed"}
        for stream, suffix in ((True, ""), (False, "_unary")):
            rows: list[dict[str, Any]] = []
            for r in range(rounds):
                steps = ["unbatched", "ort", "batched"] + ([] if stream else [f"edges{n}" for n in EDGE_CALLERS])
                steps = steps[r % len(steps):] + steps[:r % len(steps)]
                row: dict[str, Any] = {}
                for step in steps:
                    if step == "ort":
                        row["ort"], row["ort_cpu_us"] = limit.run(seconds)
                        row["ort_cpu_us"] *= 1e6
                    elif step.startswith("edges"):
                        row[step] = _edge_slice(batched, edges, seconds, warmup, int(step[len("edges"):]))
                    else:
                        row[step] = _slice(batched if step == "batched" else unbatched, seconds, warmup, stream)
                rows.append(row)

            def median(value: Any, ndigits: int = 3, rows: list[dict[str, Any]] = rows) -> float:
                return round(statistics.median(value(row) for row in rows), ndigits)

            figures.update({
                f"ort_limit{suffix}": median(lambda row: row["ort"], 1),
                f"serving_vs_ort_limit{suffix}": median(lambda row: row["batched"]["rate"] / row["ort"]),
                f"serving_vs_ort_limit_spread{suffix}": [round(row["batched"]["rate"] / row["ort"], 3) for row in rows],
                f"mean_batch_size{suffix}": median(lambda row: row["batched"]["batch"], 2),
                f"throughput_batched{suffix}": median(lambda row: row["batched"]["rate"], 1),
                f"throughput_unbatched{suffix}": median(lambda row: row["unbatched"]["rate"], 1),
                f"p95_batched_ms{suffix}": median(lambda row: row["batched"]["p95"], 2),
                f"p95_unbatched_ms{suffix}": median(lambda row: row["unbatched"]["p95"], 2),
                f"batching_speedup{suffix}": median(lambda row: row["batched"]["rate"] / row["unbatched"]["rate"], 2),
                f"batching_speedup_spread{suffix}": [round(row["batched"]["rate"] / row["unbatched"]["rate"], 2)
                                                     for row in rows],
                f"batching_p95_ratio{suffix}": median(lambda row: row["batched"]["p95"] / row["unbatched"]["p95"]),
                f"server_cpu_us_per_request{suffix}": median(lambda row: row["batched"]["server_us"], 1),
                f"client_cpu_us_per_request{suffix}": median(lambda row: row["batched"]["client_us"], 1),
                f"unbatched_server_cpu_us_per_request{suffix}": median(lambda row: row["unbatched"]["server_us"], 1),
                f"ort_cpu_us_per_sample{suffix}": median(lambda row: row["ort_cpu_us"], 1),
                f"serving_cpu_vs_ort{suffix}": median(lambda row: row["ort_cpu_us"] / row["batched"]["server_us"]),
            })
            if not stream:
                figures.update(_edge_figures(rows, median))
    return {**figures, "edges": EDGES, "edge_callers": list(EDGE_CALLERS),
            "model": "mlp-" + "-".join(map(str, layers(hidden))), "model_ms_batch1": round(cost, 3),
            "clients": CLIENTS, "seconds": seconds}


def _edge_figures(rows: list[dict[str, Any]], median: Any) -> dict[str, Any]:
    """The edge-batching slices' figures: unary calls, offloads batched at the edge, per number of
    callers (no suffix for the 32 clients, ``_<callers>`` for the others)."""
    figures: dict[str, Any] = {}
    for callers in EDGE_CALLERS:
        key, suffix = f"edges{callers}", "" if callers == CLIENTS else f"_{callers}"
        figures.update({
            f"serving_vs_ort_limit_edge_batched{suffix}": median(lambda row, k=key: row[k]["rate"] / row["ort"]),
            f"serving_vs_ort_limit_spread_edge_batched{suffix}": [round(row[key]["rate"] / row["ort"], 3)
                                                                  for row in rows],
            f"throughput_edge_batched{suffix}": median(lambda row, k=key: row[k]["rate"], 1),
            f"edge_samples_per_request{suffix}": median(lambda row, k=key: row[k]["per_request"], 2),
            f"mean_batch_size_edge_batched{suffix}": median(lambda row, k=key: row[k]["batch"], 2),
            f"edge_batching_speedup{suffix}": median(lambda row, k=key: row[k]["rate"] / row["unbatched"]["rate"], 2),
            f"server_cpu_us_per_sample_edge_batched{suffix}": median(lambda row, k=key: row[k]["server_us"], 1),
            f"client_cpu_us_per_sample_edge_batched{suffix}": median(lambda row, k=key: row[k]["client_us"], 1),
            f"serving_cpu_vs_ort_edge_batched{suffix}": median(
                lambda row, k=key: row["ort_cpu_us"] / row[k]["server_us"]),
        })
    return figures


def measure_lone_request(quick: bool) -> dict[str, Any]:
    """Round-trip ms of one client calling alone (the model always idle), by batching policy.

    Three in-process servers with a tiny model, called in turn (rotating order) with sequential
    unary requests: adaptive with the default 2 ms queue delay, the fixed 2 ms delay (the policy
    before), and the fixed delay at 0. Medians of per-round medians; the adaptive server should
    match the zero-delay one, the fixed 2 ms one pays its delay (more on a loaded machine, where
    a timed wait oversleeps).
    """
    from sedna.service.inference import BatchingConfig, GrpcInferenceClient, InferenceServer

    class Tiny:
        name, version, platform, max_batch_size = "tiny", "1", "numpy", 32
        inputs = (TensorSpec("x", "FP32", (-1, 4)),)
        outputs = (TensorSpec("y", "FP32", (-1, 4)),)

        def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
            return Prediction({"y": inputs["x"] * 2.0})

    configs = {"adaptive": BatchingConfig(max_queue_delay_ms=2.0),
               "fixed_2ms": BatchingConfig(max_queue_delay_ms=2.0, adaptive=False),
               "fixed_0ms": BatchingConfig(max_queue_delay_ms=0.0, adaptive=False)}
    rounds, calls = (3, 50) if quick else (7, 100)
    x = {"x": np.ones((1, 4), np.float32)}
    servers = {name: InferenceServer([Tiny()], rest_port=None, batching=cfg).start() for name, cfg in configs.items()}
    clients = {name: GrpcInferenceClient("127.0.0.1", int(srv.grpc_port or 0)) for name, srv in servers.items()}
    per_round: dict[str, list[float]] = {name: [] for name in configs}
    try:
        for client in clients.values():
            client.infer("tiny", x)
        for r in range(rounds):
            order = list(clients)
            for name in order[r % 3:] + order[:r % 3]:
                times = []
                for _ in range(calls):
                    began = time.perf_counter()
                    clients[name].infer("tiny", x)
                    times.append(time.perf_counter() - began)
                per_round[name].append(statistics.median(times) * 1000.0)
    finally:
        for client in clients.values():
            client.close()
        for srv in servers.values():
            srv.stop()
    return {f"lone_ms_{name}": round(statistics.median(values), 3) for name, values in per_round.items()}


def _main(argv: list[str]) -> Any:
    if len(argv) >= 5 and argv[0] == "--serve":
        _serve(int(argv[1]), int(argv[2]), int(argv[3]), argv[4] == "adaptive")
        return None
    if "--lone" in argv:
        print(json.dumps(measure_lone_request("--quick" in argv)))
        return None
    replicas = int(argv[argv.index("--replicas") + 1]) if "--replicas" in argv else 0
    workers = int(argv[argv.index("--workers") + 1]) if "--workers" in argv else 1
    print(json.dumps(measure_batching("--quick" in argv, replicas, workers, "--fixed" not in argv)))
    return None


if __name__ == "__main__":
    _main(sys.argv[1:])
