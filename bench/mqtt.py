"""MQTT device benchmark: ``python -m bench.mqtt [--quick]``.

Starts mosquitto on a free 127.0.0.1 port (generated config, persistence in a temp
dir) and serves the shallow digits model (logistic regression exported with skl2onnx,
ONNX Runtime with one thread, EdgeOnly: every answer computed at the edge) behind a
:class:`~sedna.service.mqtt.gateway.DeviceGateway` in this process. The device that
generates the load runs in a **separate process** (``multiprocessing``, spawn), so it
does not share the GIL with the gateway; it plays the digits test split with
:func:`~sedna.service.mqtt.simulator.simulate`:

* ``mqtt_rtt_p50_ms`` / ``mqtt_rtt_p99_ms``: device -> result round trip, one request at a time;
* ``mqtt_requests_per_s``: sustained answers per second with ``--window`` requests in flight;
* ``mqtt_cpu_us_per_request``: CPU time (user + system) of gateway, device and mosquitto
  per answered request during the throughput run; ``mqtt_cpu_bound_requests_per_s`` is
  what that CPU cost allows on the cores of this machine (``os.cpu_count()``) when nothing
  else runs: the figure that does not depend on what else loads the machine;
* ``broker_overhead_ratio``: MQTT round-trip p50 over the p50 of calling the same infer
  function directly in process (how much the broker hop and codec cost).

Every figure is the median of ``--repeat`` runs; each line carries the load average
of the machine when it was measured. Goals: p50 <= 3 ms, >= 1000 requests/s on 2 cores.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._report import Report, add_report_options
from sedna.common.outcome import JointOutcome
from sedna.service.mqtt import DeviceGateway, MqttSettings
from sedna.service.mqtt.simulator import digits_test_split, simulate
from sedna.service.mqtt.testing import Mosquitto

GOALS = {"mqtt_rtt_p50_ms": "<= 3", "mqtt_requests_per_s": ">= 1000", "mqtt_cpu_bound_requests_per_s": ">= 1000"}
_TICKS = os.sysconf("SC_CLK_TCK")


def shallow_model() -> Any:
    """The shallow digits model: logistic regression on the train split, as an ONNX Runtime session (1 thread)."""
    import onnxruntime as ort
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_train, _, y_train, _ = train_test_split(x, digits.target, test_size=0.3, random_state=0, stratify=digits.target)
    clf = LogisticRegression(max_iter=2000).fit(x_train, y_train)
    onnx_model = convert_sklearn(clf, initial_types=[("input", FloatTensorType([None, 64]))],
                                 options={id(clf): {"zipmap": False}}, target_opset=17)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def edge_only(session: Any) -> Any:
    """EdgeOnly joint inference: the shallow model's label, never offloaded."""
    name = session.get_inputs()[0].name

    def infer(tensor: np.ndarray) -> JointOutcome:
        label = session.run(None, {name: tensor.reshape(-1, 64).astype(np.float32, copy=False)})[0]
        return JointOutcome(False, label, label, None, "edge")

    return infer


def direct_p50_ms(infer: Any, x: np.ndarray, rounds: int) -> float:
    """p50 of calling ``infer`` on one row at a time, in process (no broker, no codec)."""
    times = []
    for _ in range(rounds):
        for i in range(len(x)):
            start = time.perf_counter()
            infer(x[i:i + 1])
            times.append((time.perf_counter() - start) * 1000.0)
    return float(np.percentile(times, 50))


def python_speed_us() -> float:
    """How slow this machine runs Python right now: microseconds per ``json.dumps`` of a small answer.

    About 2 us on an idle desktop core; a loaded or shared machine shows a larger figure,
    and the CPU figures of the same run scale with it.
    """
    import json
    import timeit

    answer = {"id": "sim-1-0", "ok": True, "result": [3], "hard_example": False, "computed_at": "edge"}
    return round(min(timeit.repeat(lambda: json.dumps(answer), number=2000, repeat=5)) / 2000 * 1e6, 2)


def _device(port: int, plan: list[dict[str, Any]], out: Any) -> None:
    """The load generator (child process): run each ``simulate`` of ``plan``, send back summaries and CPU time."""
    settings = MqttSettings(port=port, protocol="5")
    for run in plan:
        cpu = time.process_time()
        summary = simulate("digits", "bench", settings, **run)
        summary["cpu_s"] = time.process_time() - cpu
        out.put(summary)


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (from ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def run_device(port: int, plan: list[dict[str, Any]], broker_pid: int, timeout: float = 600.0) -> list[dict[str, Any]]:
    """Run ``plan`` in a spawned device process; each summary gains gateway and broker CPU seconds."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=_device, args=(port, plan, out), daemon=True)
    child.start()
    summaries = []
    try:
        for _ in plan:
            gateway_cpu, broker_cpu = time.process_time(), _proc_cpu_s(broker_pid)
            summary = out.get(timeout=timeout)
            summary["gateway_cpu_s"] = time.process_time() - gateway_cpu
            summary["broker_cpu_s"] = _proc_cpu_s(broker_pid) - broker_cpu
            summary["load"] = round(os.getloadavg()[0], 2)
            summaries.append(summary)
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()
    return summaries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer and shorter runs (for CI smoke runs)")
    parser.add_argument("--window", type=int, default=64, help="requests in flight for the throughput run")
    parser.add_argument("--repeat", type=int, default=0, help="runs per figure (default 3, 1 with --quick)")
    add_report_options(parser)
    args = parser.parse_args(argv)
    report = Report("mqtt", args.quick, save=args.save_report)
    rounds = args.repeat or (1 if args.quick else 3)
    volume = 1000 if args.quick else 5000
    infer = edge_only(shallow_model())
    x, _ = digits_test_split()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp, Mosquitto(Path(tmp), persistence=False) as broker:
        assert broker.proc is not None
        settings = MqttSettings(port=broker.port, protocol="5", workers=2, max_in_flight=256)
        gateway = DeviceGateway(infer, settings, "bench", "digits")
        if not gateway.start(10.0):
            raise SystemExit(f"gateway did not connect to mosquitto on {broker.address}")
        plan: list[dict[str, Any]] = [{"count": 200, "window": 8}]  # warm-up
        plan += [{"window": 1} for _ in range(rounds)]
        plan += [{"count": volume, "window": args.window} for _ in range(rounds)]
        try:
            summaries = run_device(broker.port, plan, broker.proc.pid)
        finally:
            gateway.stop()
    sequential, pipelined = summaries[1:1 + rounds], summaries[1 + rounds:]
    direct = direct_p50_ms(infer, x, rounds)
    p50 = statistics.median(s["rtt_p50_ms"] for s in sequential)
    p99 = statistics.median(s["rtt_p99_ms"] for s in sequential)
    rps = statistics.median(s["requests_per_s"] for s in pipelined)
    cpu_us = statistics.median(1e6 * (s["cpu_s"] + s["gateway_cpu_s"] + s["broker_cpu_s"]) / s["answered"]
                               for s in pipelined)
    split = {name: round(statistics.median(1e6 * s[key] / s["answered"] for s in pipelined), 1)
             for name, key in (("gateway_us", "gateway_cpu_s"), ("device_us", "cpu_s"), ("broker_us", "broker_cpu_s"))}
    loads = {"load_before": round(load_before, 2), "load_during": [s["load"] for s in summaries[1:]],
             "cores": os.cpu_count()}
    report.figure("mqtt_rtt_p50_ms", round(p50, 3), "ms", requests=sequential[0]["sent"],
                  accuracy=round(sequential[0]["accuracy"], 4), runs=[round(s["rtt_p50_ms"], 3) for s in sequential],
                  **loads)
    report.figure("mqtt_rtt_p99_ms", round(p99, 3), "ms", runs=[round(s["rtt_p99_ms"], 3) for s in sequential])
    report.figure("mqtt_requests_per_s", round(rps, 1), "requests/s", window=args.window, requests=volume,
                  errors=sum(s["errors"] + s["unanswered"] for s in pipelined),
                  runs=[round(s["requests_per_s"], 1) for s in pipelined])
    report.figure("mqtt_cpu_us_per_request", round(cpu_us, 1), "us", **split, python_speed_us=python_speed_us())
    report.figure("mqtt_cpu_bound_requests_per_s", round((os.cpu_count() or 1) * 1e6 / cpu_us, 1), "requests/s",
                  cores=os.cpu_count())
    report.figure("broker_overhead_ratio", round(p50 / direct, 2), "x", direct_infer_p50_ms=round(direct, 4))
    report.write_markdown(GOALS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
