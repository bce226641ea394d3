"""Sedna compatibility benchmark: ``python -m bench.sedna_compat [--quick]``.

The digits test split (540 samples) runs through two edges against one cloud worker process
(``workers.joint_inference.cloud``, serving REST and gRPC), side by side in one run:

- (a) a Sedna-style edge: the edge model answers, CrossEntropy mines hard examples, and each hard
  example is POSTed as a JSON number list to ``/sedna/predict`` the way Sedna's ``ModelClient``
  does it (``requests``, a new session and connection per call);
- (b) this project's edge: :class:`~sedna.core.joint_inference.JointInference` with the same edge
  model and mining algorithm, offloading over gRPC (raw tensor bytes, one kept channel).

Figures: ``rest_joint_accuracy`` and ``grpc_joint_accuracy`` (equal by construction: same models,
same mining, the cloud answers both paths with the same output) and ``grpc_offload_speedup``, the
median per-hard-example offload time of (a) over (b) across interleaved passes (goal >= 10). For
information: both times, (c) this project's REST fallback (``BIG_MODEL_PROTOCOL=sedna``: the same
``/sedna/predict`` on one keep-alive connection), which a project edge uses with a Sedna controller's env,
and the same speedup against a second cloud worker started with ``MAX_QUEUE_DELAY_MS=0``. With one edge
offloading one sample at a time every request finds the model idle; the adaptive batcher sends it at
once, so both cloud workers should answer alike (before it, the default 2 ms a lone request waited for
batch partners was most of either path's time, and only the second worker showed what the transports
themselves cost).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench._report import Report, add_report_options

SERVICE = "digits"
THRESHOLD = 0.6
GOALS = {
    "rest_joint_accuracy": "= grpc_joint_accuracy",
    "grpc_joint_accuracy": "= rest_joint_accuracy",
    "grpc_offload_speedup": "≥ 10",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"cloud worker exited ({proc.returncode}); see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"cloud worker did not listen on {port} within {timeout}s; see {log}")


class Timed:
    """A cloud client whose ``predict`` calls are timed (seconds, one entry per hard example)."""

    def __init__(self, predict: Callable[..., Any]) -> None:
        self._predict = predict
        self.seconds: list[float] = []

    def predict(self, data: Any, timeout: float | None = None) -> Any:
        started = time.perf_counter()
        try:
            return self._predict(data, timeout)
        finally:
            self.seconds.append(time.perf_counter() - started)


def sedna_style_post(url: str) -> Callable[..., Any]:
    """What Sedna's ``ModelClient.inference`` does per call: ``requests``, JSON list in, ``result`` out."""
    import requests

    def predict(data: Any, timeout: float | None = None) -> Any:
        response = requests.request(method="POST", url=url, json={"data": np.asarray(data).tolist()})
        response.raise_for_status()
        return np.asarray(response.json()["result"])

    return predict


def sedna_style_edge(edge: Any, hem: Any, cloud: Timed, x: np.ndarray) -> list[int]:
    """Sedna's ``inference-then-mining``: edge answer, mining on it, the cloud's answer for hard samples."""
    labels = []
    for sample in x:
        edge_result = edge.predict(sample[np.newaxis])
        final = edge_result
        if hem(edge_result):
            try:
                final = cloud.predict(sample)
            except Exception:  # as Sedna: the edge answer stands when the cloud call fails
                final = edge_result
        labels.append(int(np.argmax(final)))
    return labels


def project_edge(joint: Any, x: np.ndarray) -> list[int]:
    return [int(np.argmax(joint.inference(sample[np.newaxis])[1])) for sample in x]


def run(report: Report, quick: bool, workdir: Path) -> None:
    """Both edges against a default cloud worker, then the speedup against one with no queue delay."""
    from examples.joint_inference.digits.models import build_models

    models = build_models(workdir / "models")
    measure(report, quick, workdir / "default", models, {})
    measure(report, quick, workdir / "no-delay", models, {"MAX_QUEUE_DELAY_MS": "0"}, suffix="_no_queue_delay")


def measure(report: Report, quick: bool, workdir: Path, models: dict[str, Any], cloud_extra: dict[str, str],
            suffix: str = "") -> None:
    from examples.joint_inference.digits.models import digits_split
    from sedna.algorithms.hard_example_mining import CrossEntropyFilter
    from sedna.backend.onnx import OnnxEstimator
    from sedna.common.config import WorkerConfig
    from sedna.core.hard_examples import HardExampleStore
    from sedna.core.joint_inference import JointInference
    from sedna.core.joint_inference.cloud import connect_cloud

    workdir.mkdir(parents=True, exist_ok=True)
    split = digits_split()
    x, y = split.x_test.astype(np.float32), split.y_test
    rest, grpc_port = _free_port(), _free_port()
    env = {**os.environ, "SERVICE_NAME": SERVICE, "WORKER_NAME": "cloud", "MODEL_URL": str(models["cloud"]),
           "BIG_MODEL_BIND_PORT": str(rest), "BIG_MODEL_GRPC_PORT": str(grpc_port), "LOG_LEVEL": "WARNING",
           "INTRA_OP_THREADS": "1", **cloud_extra}
    log = workdir / "cloud.log"
    with log.open("ab") as handle:
        cloud_proc = subprocess.Popen([sys.executable, "-m", "workers.joint_inference.cloud"], env=env,
                                      stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(grpc_port, cloud_proc, log)
        _wait(rest, cloud_proc, log)
        edge = OnnxEstimator(models["edge"], intra_op_threads=1)
        hem = CrossEntropyFilter(THRESHOLD)
        sedna_cloud = Timed(sedna_style_post(f"http://127.0.0.1:{rest}/sedna/predict"))

        def joint_with(protocol: str, port_env: dict[str, str]) -> tuple[Any, Timed]:
            cfg = WorkerConfig.from_env({"SERVICE_NAME": SERVICE, "BIG_MODEL_IP": "127.0.0.1",
                                         "BIG_MODEL_PORT": str(rest), "BIG_MODEL_PROTOCOL": protocol,
                                         "BIG_MODEL_TIMEOUT": "10", **port_env})
            timed = Timed(connect_cloud(cfg).predict)
            joint = JointInference(OnnxEstimator(models["edge"], intra_op_threads=1), hem, config=cfg, cloud=timed,
                                   store=HardExampleStore(workdir / f"hard-{protocol}"), offload_interval=3600)
            return joint, timed

        grpc_joint, grpc_cloud = joint_with("grpc", {"BIG_MODEL_GRPC_PORT": str(grpc_port)})
        rest_joint, rest_cloud = joint_with("sedna", {})
        passes = 2 if quick else 5
        per_pass: dict[str, list[float]] = {"sedna": [], "grpc": [], "fallback": []}
        labels: dict[str, list[int]] = {}
        project_edge(grpc_joint, x[:20])  # warm-up: channel, metadata, first-run allocations
        sedna_style_edge(edge, hem, Timed(sedna_cloud._predict), x[:20])
        for _ in range(passes):
            for name, runner, timed in (
                ("sedna", lambda: sedna_style_edge(edge, hem, sedna_cloud, x), sedna_cloud),
                ("grpc", lambda: project_edge(grpc_joint, x), grpc_cloud),
                ("fallback", lambda: project_edge(rest_joint, x), rest_cloud),
            ):
                timed.seconds.clear()
                labels[name] = runner()
                per_pass[name].append(statistics.median(timed.seconds))
        hard = len(sedna_cloud.seconds)
        grpc_joint.close()
        rest_joint.close()
    finally:
        cloud_proc.terminate()
        try:
            cloud_proc.wait(10)
        except subprocess.TimeoutExpired:
            cloud_proc.kill()
    accuracy = {name: round(float(np.mean(np.asarray(found) == y)), 4) for name, found in labels.items()}
    ms = {name: statistics.median(values) * 1000 for name, values in per_pass.items()}
    if suffix:
        report.figure(f"grpc_offload_speedup{suffix}", round(ms["sedna"] / ms["grpc"], 2), "ratio",
                      rest_offload_ms=round(ms["sedna"], 3), grpc_offload_ms=round(ms["grpc"], 3),
                      fallback_offload_ms=round(ms["fallback"], 3), passes=passes, cloud="MAX_QUEUE_DELAY_MS=0",
                      accuracies=f"{accuracy['sedna']}/{accuracy['grpc']}/{accuracy['fallback']}")
        return
    report.figure("rest_joint_accuracy", accuracy["sedna"], "fraction", samples=len(x), hard_examples=hard,
                  threshold=THRESHOLD, edge="Sedna-style REST /predict")
    report.figure("grpc_joint_accuracy", accuracy["grpc"], "fraction", samples=len(x),
                  hard_examples=len(grpc_cloud.seconds), threshold=THRESHOLD, edge="project gRPC")
    report.figure("grpc_offload_speedup", round(ms["sedna"] / ms["grpc"], 2), "ratio",
                  rest_offload_ms=round(ms["sedna"], 3), grpc_offload_ms=round(ms["grpc"], 3), passes=passes)
    report.figure("rest_offload_ms", round(ms["sedna"], 3), "ms", client="requests per call, JSON (Sedna's way)")
    report.figure("grpc_offload_ms", round(ms["grpc"], 3), "ms", client="JointInference, gRPC")
    report.figure("fallback_offload_ms", round(ms["fallback"], 3), "ms",
                  client="JointInference, BIG_MODEL_PROTOCOL=sedna (keep-alive REST /predict)",
                  fallback_joint_accuracy=accuracy["fallback"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer passes (for CI smoke runs)")
    add_report_options(parser)
    args = parser.parse_args(argv)
    report = Report("sedna_compat", args.quick, save=args.save_report)
    with tempfile.TemporaryDirectory(prefix="bench-sedna-compat-") as tmp:
        run(report, args.quick, Path(tmp))
    path = report.write_markdown(GOALS)
    print(f"# report written to {path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
