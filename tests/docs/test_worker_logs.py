"""A healthy ready-made worker says what it serves and how it is doing, at INFO.

The cloud and edge joint-inference workers run as real processes with the default log level: the
start line names the model file with its sha256 digest and the addresses; the periodic summary
counts requests, the offload share and errors; the HTTP client's per-report lines stay out.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from examples.joint_inference.digits.models import digits_split
from sedna.service.inference import GrpcInferenceClient
from tests.support.procs import free_port, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.processes

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_workers_log_a_start_line_with_the_model_digest_and_periodic_summaries(
        digits_models: dict[str, Any], tmp_path: Path) -> None:
    rest, grpc, edge_rest, edge_grpc = free_port(), free_port(), free_port(), free_port()
    quiet = {"LOG_LEVEL": "", "LOG_SUMMARY_PERIOD": "0.3", "INTRA_OP_THREADS": "1", "SERVICE_NAME": "digits"}
    cloud_env = {**quiet, "MODEL_URL": str(digits_models["cloud"]), "BIG_MODEL_BIND_PORT": str(rest),
                 "BIG_MODEL_GRPC_PORT": str(grpc)}
    edge_env = {**quiet, "MODEL_URL": str(digits_models["edge"]), "BIG_MODEL_IP": "127.0.0.1",
                "BIG_MODEL_GRPC_PORT": str(grpc), "EDGE_BIND_PORT": str(edge_rest), "EDGE_GRPC_PORT": str(edge_grpc),
                "HEM_NAME": "CrossEntropy", "STATE_DIR": str(tmp_path / "edge-state"),
                "LC_SERVER": "http://127.0.0.1:9", "LC_PERIOD": "0.2"}
    cloud_log, edge_log = tmp_path / "cloud.log", tmp_path / "edge.log"
    with running("workers.joint_inference.cloud", cloud_env, cloud_log, port=grpc), \
            running("workers.joint_inference.edge", edge_env, edge_log, port=edge_grpc):
        x = digits_split().x_test[:60]
        with GrpcInferenceClient("127.0.0.1", edge_grpc, timeout=10.0) as client:
            for row in x:
                client.infer("digits", {"x": row[np.newaxis]})
        edge_summary = eventually(lambda: re.search(r"summary: 60 requests, 60 samples, (\d+) hard \(offload share "
                                                    r"([0-9.]+)\), 0 cloud failures, 0 errors", edge_log.read_text()),
                                  message="the edge's summary of 60 requests", timeout=20)
        hard = int(edge_summary.group(1))
        assert hard > 0 and float(edge_summary.group(2)) == pytest.approx(hard / 60, abs=1e-3)
        eventually(lambda: f"summary: {hard} requests, 0 errors" in cloud_log.read_text(),
                   message="the cloud's summary of the offloaded requests", timeout=20)
    cloud_text, edge_text = cloud_log.read_text(), edge_log.read_text()
    cloud_start = [line for line in cloud_text.splitlines() if "cloud worker serving model 'digits'" in line]
    edge_start = [line for line in edge_text.splitlines() if "edge worker serving joint inference 'digits'" in line]
    assert len(cloud_start) == 1 and " INFO " in cloud_start[0]
    assert f"{digits_models['cloud']} (sha256 {digest(digits_models['cloud'])})" in cloud_start[0]
    assert f"REST :{rest}, gRPC :{grpc}" in cloud_start[0]
    assert len(edge_start) == 1 and " INFO " in edge_start[0]
    assert f"{digits_models['edge']} (sha256 {digest(digits_models['edge'])})" in edge_start[0]
    assert f"cloud 127.0.0.1:{grpc}" in edge_start[0]
    assert "HTTP Request" not in edge_text  # the LC reports are not logged one by one
    assert edge_text.count("summary: 60 requests") == 1  # an unchanged summary is not repeated


def test_no_example_turns_the_workers_logs_down() -> None:
    offenders = [str(path) for path in EXAMPLES.rglob("*") if path.suffix in {".py", ".yaml"}
                 and re.search(r"LOG_LEVEL\W+(value:\s*)?WARNING", path.read_text())]
    assert offenders == []
