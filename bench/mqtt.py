"""MQTT device benchmark: ``python -m bench.mqtt [--quick]``.

Starts mosquitto on a free 127.0.0.1 port (generated config, persistence in a temp
dir), serves the shallow digits model (logistic regression exported with skl2onnx,
ONNX Runtime with one thread, EdgeOnly: every answer computed at the edge) behind a
:class:`~sedna.service.mqtt.gateway.DeviceGateway`, and plays the digits test split
from a simulated device in the same process:

* ``mqtt_rtt_p50_ms`` / ``mqtt_rtt_p99_ms``: device -> result round trip, one request at a time;
* ``mqtt_requests_per_s``: sustained answers per second with a window of requests in flight;
* ``broker_overhead_ratio``: MQTT round-trip p50 over the p50 of calling the same infer
  function directly in process (how much the broker hop and codec cost).

Goals: p50 <= 3 ms, >= 1000 requests/s on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._report import Report
from sedna.core.outcome import JointOutcome
from sedna.service.mqtt import DeviceGateway, MqttSettings
from sedna.service.mqtt.simulator import digits_test_split, simulate
from sedna.service.mqtt.testing import Mosquitto

GOALS = {"mqtt_rtt_p50_ms": "<= 3", "mqtt_requests_per_s": ">= 1000"}


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
    times = []
    for _ in range(rounds):
        for i in range(len(x)):
            start = time.perf_counter()
            infer(x[i:i + 1])
            times.append((time.perf_counter() - start) * 1000.0)
    return float(np.percentile(times, 50))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (for CI smoke runs)")
    parser.add_argument("--window", type=int, default=64, help="requests in flight for the throughput run")
    args = parser.parse_args(argv)
    report = Report("mqtt", args.quick)
    rounds = 1 if args.quick else 3
    infer = edge_only(shallow_model())
    x, _ = digits_test_split()
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp, Mosquitto(Path(tmp)) as broker:
        settings = MqttSettings(port=broker.port, protocol="5", workers=2, max_in_flight=256)
        gateway = DeviceGateway(infer, settings, "bench", "digits")
        if not gateway.start(10.0):
            raise SystemExit(f"gateway did not connect to mosquitto on {broker.address}")
        try:
            device = MqttSettings(port=broker.port, protocol="5")
            simulate("digits", "bench", device, count=100, window=8)  # warm-up
            sequential = [simulate("digits", "bench", device, window=1) for _ in range(rounds)]
            pipelined = [simulate("digits", "bench", device, window=args.window) for _ in range(rounds)]
        finally:
            gateway.stop()
    p50 = statistics.median(s["rtt_p50_ms"] for s in sequential)
    p99 = statistics.median(s["rtt_p99_ms"] for s in sequential)
    rps = statistics.median(s["requests_per_s"] for s in pipelined)
    direct = direct_p50_ms(infer, x, rounds)
    accuracy = sequential[0]["accuracy"]
    report.figure("mqtt_rtt_p50_ms", round(p50, 3), "ms", requests=sequential[0]["sent"], accuracy=round(accuracy, 4))
    report.figure("mqtt_rtt_p99_ms", round(p99, 3), "ms")
    report.figure("mqtt_requests_per_s", round(rps, 1), "requests/s", window=args.window,
                  errors=sum(s["errors"] for s in pipelined))
    report.figure("broker_overhead_ratio", round(p50 / direct, 2), "x", direct_infer_p50_ms=round(direct, 4))
    report.write_markdown(GOALS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
