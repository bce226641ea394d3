"""Stream the digits test split through an edge worker and print the report table.

Accuracy of edge only and cloud only come from running the two ONNX models locally
on the same split; joint accuracy, the share offloaded and the latencies come from
the edge worker's own answers (its response parameters say where each answer was
computed).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from examples.joint_inference.digits.models import digits_split


def _local_accuracy(model_path: str, x: np.ndarray, y: np.ndarray) -> float:
    from sedna.backend.onnx import import_onnxruntime

    ort = import_onnxruntime()

    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    probs = session.run(["probabilities"], {"x": x})[0]
    return float((probs.argmax(1) == y).mean())


def stream(edge_host: str, edge_grpc_port: int, model_name: str, token: str | None = None,
           limit: int | None = None) -> dict[str, Any]:
    """Send each test sample to the edge worker over gRPC; return the raw figures."""
    from sedna.service.inference import GrpcInferenceClient

    split = digits_split()
    x, y = split.x_test[:limit], split.y_test[:limit]
    latencies, correct, offloaded, hard = [], 0, 0, 0
    with GrpcInferenceClient(edge_host, edge_grpc_port, token=token, timeout=10.0) as client:
        for i in range(len(x)):
            start = time.perf_counter()
            result = client.infer(model_name, {"x": x[i: i + 1]})
            latencies.append(time.perf_counter() - start)
            probs = result.outputs["probabilities"]
            correct += int(probs.argmax() == y[i])
            hard += int(bool(result.parameters.get("hard_example")))
            offloaded += int(result.parameters.get("computed_at") == "cloud")
    lat = np.array(latencies) * 1000.0
    return {"samples": len(x), "joint_accuracy": correct / len(x), "hard_share": hard / len(x),
            "offloaded_share": offloaded / len(x), "bytes_to_cloud": offloaded * x[0].nbytes,
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99))}


def stream_and_report(edge_host: str, edge_grpc_port: int, model_name: str, models: dict[str, Any],
                      token: str | None = None, limit: int | None = None) -> dict[str, Any]:
    """Stream the split through the edge, print the table, return every figure."""
    split = digits_split()
    figures = stream(edge_host, edge_grpc_port, model_name, token, limit)
    n = figures["samples"]
    figures["edge_accuracy"] = _local_accuracy(str(models["edge"]), split.x_test[:n], split.y_test[:n])
    figures["cloud_accuracy"] = _local_accuracy(str(models["cloud"]), split.x_test[:n], split.y_test[:n])
    figures["edge_params"], figures["cloud_params"] = models["edge_params"], models["cloud_params"]
    print_table(figures)
    return figures


def print_table(f: dict[str, Any]) -> None:
    rows = [
        ("test samples", f"{f['samples']}"),
        ("edge model / cloud model parameters", f"{f['edge_params']} / {f['cloud_params']}"),
        ("accuracy, edge only", f"{f['edge_accuracy']:.4f}"),
        ("accuracy, cloud only", f"{f['cloud_accuracy']:.4f}"),
        ("accuracy, joint inference", f"{f['joint_accuracy']:.4f}"),
        ("hard examples (share)", f"{f['hard_share']:.3f}"),
        ("answered by the cloud (share)", f"{f['offloaded_share']:.3f}"),
        ("tensor bytes sent to the cloud", f"{f['bytes_to_cloud']}"),
        ("edge round trip p50 / p99 (ms)", f"{f['p50_ms']:.2f} / {f['p99_ms']:.2f}"),
    ]
    width = max(len(name) for name, _ in rows)
    print("\nJoint inference on the digits test split")
    print("-" * (width + 16))
    for name, value in rows:
        print(f"{name:<{width}}  {value:>12}")
    print("-" * (width + 16))
