"""The digits example end to end: 3 trainers + aggregator processes, ONNX export."""

from __future__ import annotations

from pathlib import Path

import pytest

from examples.federated_learning.digits.run import run

pytestmark = pytest.mark.processes


@pytest.mark.slow
def test_digits_example_converges_and_exports_onnx(tmp_path: Path) -> None:
    result = run(tmp_path, rounds=10)
    accuracy = result["accuracy"]
    assert sorted(accuracy) == list(range(1, 11))
    # Measured: 0.87 after round 1, 0.94 after round 10 (label-skewed shards, FedAvg, 2 local epochs).
    assert accuracy[10] >= 0.90
    assert result["onnx_accuracy"] == pytest.approx(accuracy[10], abs=0.005)
    import onnx

    graph = onnx.load(str(result["onnx"])).graph
    assert [n.op_type for n in graph.node] == ["MatMul", "Add", "Softmax"]
    assert graph.input[0].name == "x" and graph.output[0].name == "probabilities"
    dims = [d.dim_value or d.dim_param or -1 for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims[1] == 64
