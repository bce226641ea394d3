"""Joint-inference benchmark: ``python -m bench.joint_inference [--quick]``.

Figures, all measured side by side in one run (ratios carry the verdict):

- accuracy / offload curve over CrossEntropy thresholds on the digits test split,
  and edge, cloud and joint accuracy at the example's chosen threshold, measured
  end to end through real cloud and edge worker processes;
- edge overhead: time ``JointInference.inference`` adds per sample that stays on
  the edge, over a bare ONNX Runtime ``run`` of the same model;
- transport: a 224×224×3 uint8 image round trip over our gRPC and REST paths against a
  raw-bytes floor (a bare FastAPI endpoint and a bare gRPC bytes method doing the same work)
  and against JSON numbers (``transport_vs_floor_ratio``, ``transport_speedup``);
- cloud batching: throughput and p95 with dynamic batching vs batch size 1, with 32
  clients on ``ModelStreamInfer`` streams (``batching_*``) and on unary calls
  (``batching_*_unary``), the server running as one replica per core; and the batched
  throughput against bare ONNX Runtime at batch 32 on the same cores (``serving_vs_ort_limit``),
  all in interleaved slices (``bench._batching``). The ``*_cpu`` twins compare CPU time per
  request instead of wall-clock rates (what each answer cost the server, read from ``/proc``),
  which other load on a shared machine barely moves;
- a lone request's round trip with the adaptive batcher against the fixed queue delay (2 ms and
  0 ms), ``lone_request_adaptive_vs_no_delay``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._report import Report, add_report_options

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
CHOSEN = 0.6
GOALS = {
    "joint_accuracy": "within 0.5 point of cloud_accuracy",
    "offload_ratio": "≤ 0.20",
    "edge_cloud_param_ratio": "≤ 0.10",
    "edge_overhead_us": "≤ 50",
    "transport_speedup": "≥ 10",
    "transport_vs_floor_ratio": "≤ 1.2",
    "lone_request_adaptive_vs_no_delay": "≈ 1 (no queue delay when idle)",
    "serving_vs_ort_limit": "≥ 0.5",
    "serving_vs_ort_limit_unary": "≥ 0.5",
    "serving_vs_ort_limit_edge_batched": "≥ 0.5",
    "serving_vs_ort_limit_edge_batched_128": "≥ 0.5",
    "serving_vs_ort_limit_edge_batched_256": "≥ 0.5",
    "batching_speedup": "≥ 3",
    "batching_p95_ratio": "≤ 1",
    "batching_speedup_unary": "≥ 3",
    "batching_p95_ratio_unary": "≤ 1",
}


def accuracy_curve(report: Report, models: dict[str, Any]) -> dict[str, list[float]]:
    """Offline sweep with the SDK's own CrossEntropy filter over each sample's edge probabilities."""
    import onnxruntime as ort

    from examples.joint_inference.digits.models import digits_split
    from sedna.algorithms.hard_example_mining import CrossEntropyFilter

    split = digits_split()
    edge = ort.InferenceSession(str(models["edge"])).run(["probabilities"], {"x": split.x_test})[0]
    cloud = ort.InferenceSession(str(models["cloud"])).run(["probabilities"], {"x": split.x_test})[0]
    curve: dict[str, list[float]] = {"offload": [], "accuracy": []}
    for threshold in THRESHOLDS:
        f = CrossEntropyFilter(threshold)
        hard = np.array([f(p) for p in edge])
        final = np.where(hard, cloud.argmax(1), edge.argmax(1))
        curve["offload"].append(float(hard.mean()))
        curve["accuracy"].append(float((final == split.y_test).mean()))
        report.figure("curve_joint_accuracy", round(float((final == split.y_test).mean()), 4), "fraction",
                      threshold=threshold)
        report.figure("curve_offload_ratio", round(float(hard.mean()), 4), "fraction", threshold=threshold)
    curve["edge"] = [float((edge.argmax(1) == split.y_test).mean())]
    curve["cloud"] = [float((cloud.argmax(1) == split.y_test).mean())]
    return curve


def end_to_end(report: Report, workdir: Path) -> dict[str, Any]:
    from examples.joint_inference.digits.processes import run

    figures = run(workdir, hem_threshold=CHOSEN)
    report.figure("edge_accuracy", round(figures["edge_accuracy"], 4), "fraction")
    report.figure("cloud_accuracy", round(figures["cloud_accuracy"], 4), "fraction")
    report.figure("joint_accuracy", round(figures["joint_accuracy"], 4), "fraction", threshold=CHOSEN)
    report.figure("offload_ratio", round(figures["offloaded_share"], 4), "fraction", threshold=CHOSEN)
    report.figure("edge_cloud_param_ratio", round(figures["edge_params"] / figures["cloud_params"], 5), "ratio",
                  edge_params=figures["edge_params"], cloud_params=figures["cloud_params"])
    return figures


class _NoCloud:
    def predict(self, data: Any, timeout: float | None = None) -> Any:
        raise AssertionError("an easy sample reached the cloud")


def edge_overhead(report: Report, models: dict[str, Any], quick: bool) -> None:
    """Interleaved blocks of bare ``session.run`` and ``JointInference.inference`` on easy samples.

    The bare run fetches the same output the edge estimator uses (``probabilities``), so the
    difference is exactly what joint inference adds: input handling, mining, counters.
    """
    import onnxruntime as ort

    from examples.joint_inference.digits.models import digits_split
    from sedna.algorithms.hard_example_mining import CrossEntropyFilter
    from sedna.backend.onnx import OnnxEstimator
    from sedna.common.config import WorkerConfig
    from sedna.core.joint_inference import JointInference

    split = digits_split()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    bare = ort.InferenceSession(str(models["edge"]), options, providers=["CPUExecutionProvider"])
    hem = CrossEntropyFilter(CHOSEN)
    probs = bare.run(["probabilities"], {"x": split.x_test})[0]
    easy = [split.x_test[i: i + 1] for i in range(len(probs)) if not hem(probs[i])]
    joint = JointInference(OnnxEstimator(models["edge"], intra_op_threads=1), hem,
                           config=WorkerConfig.from_env({}), cloud=_NoCloud(), offload_interval=3600,
                           store=None)
    rounds = 5 if quick else 15
    bare_us: list[float] = []
    joint_us: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        for x in easy:
            bare.run(["probabilities"], {"x": x})
        bare_us.append((time.perf_counter() - start) / len(easy) * 1e6)
        start = time.perf_counter()
        for x in easy:
            joint.inference(x)
        joint_us.append((time.perf_counter() - start) / len(easy) * 1e6)
    joint.close()
    b, j = statistics.median(bare_us), statistics.median(joint_us)
    report.figure("edge_overhead_us", round(j - b, 2), "us", bare_run_us=round(b, 2), joint_us=round(j, 2),
                  samples=len(easy))
    report.figure("edge_overhead_ratio", round(j / b, 3), "ratio")


def transport_and_batching(report: Report, quick: bool) -> None:
    from bench._batching import measure_batching, measure_lone_request
    from bench._transport import measure_transport

    load = {"load1_before": round(os.getloadavg()[0], 2)}
    t = measure_transport(quick)
    load["load1_after"] = round(os.getloadavg()[0], 2)
    report.figure("transport_vs_floor_ratio", t["transport_vs_floor_ratio"], "ratio", grpc_ms=t["grpc_ms"],
                  floor_ms=t["floor_ms"], floor_http_ms=t["floor_http_ms"], floor_grpc_ms=t["floor_grpc_ms"],
                  payload_bytes=t["payload_bytes"], **load)
    report.figure("rest_vs_floor_ratio", t["rest_vs_floor_ratio"], "ratio", rest_binary_ms=t["rest_binary_ms"],
                  floor_ms=t["floor_ms"], **load)
    report.figure("transport_speedup", round(t["transport_speedup"], 2), "ratio", grpc_ms=round(t["grpc_ms"], 3),
                  json_ms=round(t["json_ms"], 3), **load)
    load = {"load1_before": round(os.getloadavg()[0], 2)}
    lone = measure_lone_request(quick)
    load["load1_after"] = round(os.getloadavg()[0], 2)
    report.figure("lone_request_adaptive_vs_no_delay", round(lone["lone_ms_adaptive"] / lone["lone_ms_fixed_0ms"], 3),
                  "ratio", adaptive_ms=lone["lone_ms_adaptive"], fixed_2ms_ms=lone["lone_ms_fixed_2ms"],
                  fixed_0ms_ms=lone["lone_ms_fixed_0ms"], **load)
    load = {"load1_before": round(os.getloadavg()[0], 2)}
    b = measure_batching(quick)
    load["load1_after"] = round(os.getloadavg()[0], 2)
    common = {"replicas": b["replicas"], "workers": b["workers"], "rounds": b["rounds"], "policy": b["policy"], **load}
    for suffix, transport in (("", "ModelStreamInfer"), ("_unary", "ModelInfer")):
        report.figure(f"serving_vs_ort_limit{suffix}", b[f"serving_vs_ort_limit{suffix}"], "ratio",
                      transport=transport, throughput_batched=b[f"throughput_batched{suffix}"],
                      ort_limit_samples_per_s=b[f"ort_limit{suffix}"],
                      per_round=b[f"serving_vs_ort_limit_spread{suffix}"], **common)
        report.figure(f"serving_vs_ort_limit_cpu{suffix}", b[f"serving_cpu_vs_ort{suffix}"], "ratio",
                      transport=transport, ort_cpu_us_per_sample=b[f"ort_cpu_us_per_sample{suffix}"],
                      server_cpu_us_per_request=b[f"server_cpu_us_per_request{suffix}"],
                      client_cpu_us_per_request=b[f"client_cpu_us_per_request{suffix}"], **common)
    for suffix, transport in (("", "ModelStreamInfer"), ("_unary", "ModelInfer")):
        report.figure(f"batching_speedup{suffix}", round(b[f"batching_speedup{suffix}"], 2), "ratio",
                      transport=transport, throughput_batched=b[f"throughput_batched{suffix}"],
                      throughput_unbatched=b[f"throughput_unbatched{suffix}"],
                      mean_batch_size=b[f"mean_batch_size{suffix}"], model=b["model"],
                      model_ms_batch1=b["model_ms_batch1"], per_round=b[f"batching_speedup_spread{suffix}"],
                      **common)
        cpu_ratio = b[f"unbatched_server_cpu_us_per_request{suffix}"] / b[f"server_cpu_us_per_request{suffix}"]
        report.figure(f"batching_speedup_cpu{suffix}", round(cpu_ratio, 2), "ratio", transport=transport,
                      unbatched_server_cpu_us_per_request=b[f"unbatched_server_cpu_us_per_request{suffix}"],
                      server_cpu_us_per_request=b[f"server_cpu_us_per_request{suffix}"], **common)
        report.figure(f"batching_p95_ratio{suffix}", round(b[f"batching_p95_ratio{suffix}"], 3), "ratio",
                      transport=transport, p95_batched_ms=b[f"p95_batched_ms{suffix}"],
                      p95_unbatched_ms=b[f"p95_unbatched_ms{suffix}"], **common)
    for callers in b["edge_callers"]:
        suffix = "" if callers == b["clients"] else f"_{callers}"
        report.figure(f"serving_vs_ort_limit_edge_batched{suffix}", b[f"serving_vs_ort_limit_edge_batched{suffix}"],
                      "ratio", transport="ModelInfer, offloads batched at the edge", callers=callers,
                      edges=b["edges"], throughput_edge_batched=b[f"throughput_edge_batched{suffix}"],
                      ort_limit_samples_per_s=b["ort_limit_unary"],
                      edge_samples_per_request=b[f"edge_samples_per_request{suffix}"],
                      mean_batch_size=b[f"mean_batch_size_edge_batched{suffix}"],
                      per_round=b[f"serving_vs_ort_limit_spread_edge_batched{suffix}"], **common)
        report.figure(f"serving_vs_ort_limit_cpu_edge_batched{suffix}", b[f"serving_cpu_vs_ort_edge_batched{suffix}"],
                      "ratio", callers=callers,
                      server_cpu_us_per_sample=b[f"server_cpu_us_per_sample_edge_batched{suffix}"],
                      client_cpu_us_per_sample=b[f"client_cpu_us_per_sample_edge_batched{suffix}"], **common)
        report.figure(f"edge_batching_speedup{suffix}", b[f"edge_batching_speedup{suffix}"], "ratio", callers=callers,
                      throughput_edge_batched=b[f"throughput_edge_batched{suffix}"],
                      throughput_unbatched=b["throughput_unbatched_unary"], **common)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (for CI smoke runs)")
    add_report_options(parser)
    args = parser.parse_args(argv)
    from examples.joint_inference.digits.models import build_models

    report = Report("joint_inference", args.quick, save=args.save_report)
    with tempfile.TemporaryDirectory(prefix="bench-ji-") as tmp:
        workdir = Path(tmp)
        models = build_models(workdir / "models")
        curve = accuracy_curve(report, models)
        end_to_end(report, workdir)
        edge_overhead(report, models, args.quick)
        transport_and_batching(report, args.quick)
    path = report.write_markdown(GOALS)
    print(f"# report written to {path}", flush=True)
    from examples.plots import threshold_curve

    threshold_curve(path.parent / "joint_inference_curve.png", THRESHOLDS, curve["offload"], curve["accuracy"],
                    CHOSEN, edge_accuracy=curve["edge"][0], cloud_accuracy=curve["cloud"][0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
