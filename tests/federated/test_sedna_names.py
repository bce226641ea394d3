"""Sedna's federated-learning names over this project's server (in-process, real gRPC on 127.0.0.1)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sedna.common.config import WorkerConfig
from sedna.common.errors import ConfigError
from sedna.core.federated_learning import FederatedLearning
from sedna.service.client import AggregationClient, LCClient
from sedna.service.client.aggregation import target_of
from sedna.service.server import AggregationServer
from tests.support.procs import free_port


def sedna_trainer(url: str, client_id: str, seen: list[tuple[int, str]], out: dict[str, Any]) -> None:
    """Sedna's FederatedLearning.train loop, written against its AggregationClient."""
    node = AggregationClient(url=url, client_id=client_id, ping_timeout=20)
    weights = [np.zeros(2, np.float32), np.zeros((2, 2), np.float32)]
    while True:
        weights = [w + 1 for w in weights]  # "training"
        node.send({"num_samples": 10, "weights": weights}, msg_type="update_weight", job_name="")
        received = node.recv(wait_data_type="recv_weight")
        data = received["data"]
        seen.append((int(data["round_number"]), data["exit_flag"]))
        weights = data["weights"]
        if data["exit_flag"] == "ok":
            out[client_id] = weights
            return


def test_sednas_aggregation_server_and_client_run_a_job_together() -> None:
    port = free_port()
    server = AggregationServer(aggregation_algorithm="FedAvg", exit_round=3, ws_size=20 * 1024 * 1024,
                               participants_count=2,
                               environ={"AGG_BIND_IP": "127.0.0.1", "AGG_BIND_PORT": str(port)})
    assert (server.aggregation, server.http_port, server.host) == ("FedAvg", port, "127.0.0.1")
    runner = threading.Thread(target=server.start, daemon=True)
    runner.start()
    seen: dict[str, list[tuple[int, str]]] = {"a": [], "b": []}
    final: dict[str, Any] = {}
    trainers = [threading.Thread(target=sedna_trainer, args=(f"ws://127.0.0.1:{port}/FedAvg", cid, seen[cid], final),
                                 daemon=True) for cid in seen]
    for t in trainers:
        t.start()
    for t in [*trainers, runner]:
        t.join(60)
    assert server.result is not None and server.result.rounds == 3
    for cid in ("a", "b"):
        assert seen[cid] == [(1, "continue"), (2, "continue"), (3, "ok")]
        assert isinstance(final[cid], list) and [w.tolist() for w in final[cid]] == [[3.0, 3.0], [[3.0, 3.0]] * 2]


def test_aggregation_and_aggregation_algorithm_are_one_parameter() -> None:
    env = {"AGG_BIND_PORT": "7400"}
    assert AggregationServer("FedProx", environ=env).aggregation == "FedProx"
    assert AggregationServer(environ=env).aggregation == "FedAvg"
    with pytest.raises(ConfigError, match="disagree"):
        AggregationServer("FedAvg", aggregation_algorithm="Krum", environ=env)


def test_sednas_aggregator_uri_gives_the_grpc_target() -> None:
    assert target_of("ws://10.0.0.5:7363/FedAvg") == "10.0.0.5:7363"
    assert target_of("ws://agg.default/FedAvg") == "agg.default:7363"
    assert target_of("127.0.0.1:9000") == "127.0.0.1:9000"
    with pytest.raises(ConfigError, match="names no host"):
        target_of("ws:///FedAvg")


def test_the_client_package_reexports_the_lc_client_and_imports_no_grpc() -> None:
    from sedna.service import lc_client

    assert LCClient is lc_client.LCClient
    code = "import sys, sedna.service.client, sedna.service.server; print('grpc' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


class Linear:
    def __init__(self) -> None:
        self.w = np.array([2.0, 0.0])

    def train(self, train_data: Any) -> None: ...
    def get_weights(self) -> list[np.ndarray]: return [self.w]
    def set_weights(self, weights: list[np.ndarray]) -> None: self.w = weights[0]
    def predict(self, data: np.ndarray, scale: float = 1.0) -> np.ndarray: return data @ self.w * scale
    def evaluate(self, data: np.ndarray) -> dict[str, float]: return {"sum": float((data @ self.w).sum())}


def test_inference_and_evaluate_call_the_estimator_and_the_post_process() -> None:
    from sedna.common.class_factory import ClassFactory, ClassType

    fl = FederatedLearning(Linear, config=WorkerConfig.from_env({}))
    x = np.array([[1.0, 5.0], [2.0, 5.0]])
    assert fl.inference(x).tolist() == [2.0, 4.0]
    assert fl.inference(x, scale=10.0, unknown=1).tolist() == [20.0, 40.0]
    assert fl.inference(x, post_process=lambda r: r.argmax()) == 1
    name = "fl_test_double"
    if not ClassFactory.is_exists(ClassType.CALLBACK, name):
        ClassFactory.register_cls(lambda r: r * 2, ClassType.CALLBACK, alias=name)  # type: ignore[arg-type]
    assert fl.inference(x, post_process=name).tolist() == [4.0, 8.0]
    assert fl.evaluate(x) == {"sum": 6.0}
    with pytest.raises(TypeError, match="post_process must be a callable"):
        fl.inference(x, post_process=3)


@pytest.mark.parametrize(("env", "expected"), [
    ({}, ""),
    ({"MODEL_URL": "{tmp}/edge", "WORKER_NAME": "fl-train-0"}, "{tmp}/edge/fl-train-0.npz"),
    ({"MODEL_URL": "{tmp}/edge", "WORKER_NAME": "w", "MODEL_NAME": "fl-model"}, "{tmp}/edge/w.npz"),
    ({"MODEL_URL": "{tmp}/edge", "WORKER_NAME": "w", "MODEL_NAME": "model.h5"}, "{tmp}/edge/model.h5"),
    ({"MODEL_URL": "{tmp}/final.npz"}, "{tmp}/final.npz"),
    ({"MODEL_URL": "{tmp}/edge", "model_path": "{tmp}/mine.bin"}, "{tmp}/mine.bin"),
])
def test_where_the_trainer_saves_the_global_model(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    environ = {k: v.format(tmp=tmp_path) for k, v in env.items()}
    fl = FederatedLearning(Linear, config=WorkerConfig.from_env(environ))
    assert fl.model_path == expected.format(tmp=tmp_path)
