"""The aggregation server with in-process clients over real gRPC on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Callable

import grpc
import numpy as np
import pytest

from sedna.algorithms.aggregation import create_strategy
from sedna.proto import federated_pb2 as pb
from sedna.proto import federated_pb2_grpc as pb_grpc
from sedna.service.aggregation import AggregationClient, AggregationServer, ClientSettings, JobRejectedError
from sedna.service.aggregation.client import StopInfo
from sedna.service.aggregation.server import RunResult
from sedna.service.aggregation.settings import ServerSettings

Weights = dict[str, np.ndarray]


class Handler:
    """A client whose update is ``transform(global weights)``."""

    def __init__(self, transform: Callable[[Weights], Weights], accuracy: float | None = None) -> None:
        self.transform, self.accuracy = transform, accuracy
        self.rejected: list[tuple[int, str]] = []
        self.final: StopInfo | None = None
        self.rounds: list[int] = []

    def get_weights(self) -> Weights:
        return {"w": np.zeros((3, 2000), np.float32), "b": np.zeros(3, np.float32)}

    def fit(self, server_round: int, weights: Weights, config: dict) -> tuple[Weights, int, dict]:
        self.rounds.append(server_round)
        return self.transform(weights), 10, {"loss": 0.5}

    def evaluate(self, server_round: int, weights: Weights, config: dict) -> tuple[int, float, dict]:
        return 5, 0.1, {"accuracy": (self.accuracy or 0.0) + 0.1 * server_round}

    def on_rejected(self, server_round: int, reason: str) -> None:
        self.rejected.append((server_round, reason))

    def on_stop(self, info: StopInfo) -> None:
        self.final = info


def plus_one(w: Weights) -> Weights:
    return {k: v + 1 for k, v in w.items()}


def run_job(server: AggregationServer, handlers: dict[str, Handler], **client_kw) -> RunResult:
    port = server.start()
    threads, errors = [], []

    def follow(cid: str, handler: Handler) -> None:
        try:
            AggregationClient(ClientSettings(target=f"127.0.0.1:{port}", client_id=cid, num_samples=10,
                                             chunk_size=1024, connect_timeout_s=20, **client_kw), handler).run()
        except Exception as exc:
            errors.append(exc)

    for cid, handler in handlers.items():
        threads.append(threading.Thread(target=follow, args=(cid, handler), daemon=True))
        threads[-1].start()
    try:
        result = server.run()
    finally:
        server.stop()
    for t in threads:
        t.join(20)
    assert not errors, errors
    return result


def test_bad_updates_are_rejected_with_a_reason_and_excluded() -> None:
    initial = {"w": np.zeros((3, 2000), np.float32), "b": np.zeros(3, np.float32)}
    nan = np.zeros((3, 2000), np.float32)
    nan[2, 1999] = np.nan
    handlers = {
        "good-1": Handler(plus_one),
        "good-2": Handler(lambda w: {k: v + 3 for k, v in w.items()}),
        "bad-name": Handler(lambda w: {"W": w["w"] + 1, "b": w["b"]}),
        "bad-shape": Handler(lambda w: {"w": np.zeros((2000, 3), np.float32), "b": w["b"]}),
        "bad-dtype": Handler(lambda w: {"w": w["w"].astype(np.float64), "b": w["b"]}),
        "bad-nan": Handler(lambda w: {"w": nan, "b": w["b"]}),
    }
    server = AggregationServer(create_strategy("FedAvg", min_available_clients=6),
                               ServerSettings(bind_port=0, num_rounds=1, round_timeout_s=20, chunk_size=1024,
                                              min_completion_rate=0.3), initial_weights=initial)
    result = run_job(server, handlers)
    entry = result.history[0]
    assert entry["clients"] == ["good-1", "good-2"]
    np.testing.assert_array_equal(result.weights["w"], np.full((3, 2000), 2.0, np.float32))  # mean of +1 and +3
    reasons = entry["failures"]
    assert set(reasons) == {"bad-name", "bad-shape", "bad-dtype", "bad-nan"}
    assert "wrong tensor names" in reasons["bad-name"] and "['W']" in reasons["bad-name"]
    assert "shape [2000, 3] but the model has [3, 2000]" in reasons["bad-shape"]
    assert "dtype FP64 but the model has FP32" in reasons["bad-dtype"]
    assert "non-finite" in reasons["bad-nan"] and "flat index 5999" in reasons["bad-nan"]
    for cid in ("bad-name", "bad-shape", "bad-dtype", "bad-nan"):
        assert handlers[cid].rejected == [(1, reasons[cid].removeprefix("rejected: "))]
        assert handlers[cid].final is not None  # still in the job: it gets the final model
    assert handlers["good-1"].rejected == []
    final = handlers["good-1"].final
    assert final is not None and final.round == 1
    np.testing.assert_array_equal(final.weights["w"], result.weights["w"])
    reg = server.metrics.registry
    assert reg.get_sample_value("sedna_fl_updates_total", {"outcome": "rejected"}) == 4
    assert reg.get_sample_value("sedna_fl_updates_total", {"outcome": "accepted"}) == 2
    assert reg.get_sample_value("sedna_fl_round") == 1


def test_target_metric_stops_early_and_compressed_updates_count(tmp_path) -> None:
    handlers = {f"c{i}": Handler(plus_one, accuracy=0.6) for i in range(3)}
    server = AggregationServer(
        create_strategy("FedAvg", min_available_clients=3),
        ServerSettings(bind_port=0, num_rounds=10, target_metric="accuracy", target_value=0.85, round_timeout_s=20,
                       checkpoint_dir=str(tmp_path / "ckpt"), model_path=str(tmp_path / "final.npz")))
    result = run_job(server, handlers, compression="fp16", can_evaluate=True)
    assert result.rounds == 3 and "target accuracy" in result.reason  # 0.6 + 0.1 * 3 >= 0.85
    assert [h["eval_metrics"]["accuracy"] for h in result.history] == pytest.approx([0.7, 0.8, 0.9])
    assert result.weights["b"].tolist() == [3.0, 3.0, 3.0]  # initial weights came from a client (zeros)
    with np.load(tmp_path / "final.npz") as final:
        assert final["b"].tolist() == [3.0, 3.0, 3.0]


def test_wrong_token_or_job_is_refused_at_once() -> None:
    server = AggregationServer(create_strategy("FedAvg"), ServerSettings(bind_port=0, token="s3cret", job_name="j1"))
    port = server.start()
    try:
        for kwargs, match in (({"token": "nope", "job_name": "j1"}, "UNAUTHENTICATED"),
                              ({"token": "s3cret", "job_name": "other"}, "PERMISSION_DENIED.*'other'")):
            client = AggregationClient(ClientSettings(target=f"127.0.0.1:{port}", client_id="c", **kwargs),
                                       Handler(plus_one))
            with pytest.raises(JobRejectedError, match=match):
                client.run()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = pb_grpc.FederatedLearningStub(channel).Health(pb.HealthRequest(), timeout=5)
        assert (health.status, health.round, health.job_name) == ("WAITING", 0, "j1")
    finally:
        server.stop()


def test_client_gives_up_after_connect_timeout() -> None:
    from tests.support.procs import free_port

    client = AggregationClient(ClientSettings(target=f"127.0.0.1:{free_port()}", client_id="c",
                                              connect_timeout_s=0.5, backoff_initial_s=0.05), Handler(plus_one))
    with pytest.raises(ConnectionError, match="CONNECT_TIMEOUT"):
        client.run()


def test_checkpoints_are_written_in_the_background_but_durable_before_the_next_round(tmp_path, monkeypatch) -> None:
    from sedna.service.aggregation.checkpoint import CheckpointStore

    store = CheckpointStore(tmp_path / "ckpt")
    seen: list[tuple[int, bool, int]] = []
    writes: list[tuple[int, str]] = []
    real_save = CheckpointStore.save

    def slow_save(self: CheckpointStore, ckpt) -> None:
        writes.append((ckpt.round, threading.current_thread().name))
        threading.Event().wait(0.2)  # slower than a round: the next round must wait for it
        real_save(self, ckpt)

    monkeypatch.setattr(CheckpointStore, "save", slow_save)

    def listener(entry: dict, done: bool) -> None:
        loaded = store.load()
        seen.append((entry["round"], done, loaded.round if loaded else -1))

    server = AggregationServer(create_strategy("FedAvg", min_available_clients=2),
                               ServerSettings(bind_port=0, num_rounds=3, round_timeout_s=20,
                                              checkpoint_dir=str(store.directory)),
                               initial_weights={"w": np.zeros(10, np.float32)}, on_round=listener)
    result = run_job(server, {"a": Handler(plus_one), "b": Handler(plus_one)})
    assert result.weights["w"].tolist() == [3.0] * 10
    assert [r for r, _ in writes] == [1, 2, 3, 3] and all(name == "fl-checkpoint" for _, name in writes)
    assert seen == [(1, False, 1), (2, False, 2), (3, False, 3), (3, True, 3)]  # told once it is on disk
    final = store.load()
    assert final is not None and final.round == 3 and final.done


def test_a_failed_background_checkpoint_stops_the_job(tmp_path, monkeypatch) -> None:
    from sedna.service.aggregation.checkpoint import CheckpointStore

    def broken(self: CheckpointStore, ckpt) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(CheckpointStore, "save", broken)
    server = AggregationServer(create_strategy("FedAvg", min_available_clients=1),
                               ServerSettings(bind_port=0, num_rounds=3, round_timeout_s=20,
                                              checkpoint_dir=str(tmp_path / "ckpt")),
                               initial_weights={"w": np.zeros(10, np.float32)})
    port = server.start()
    client = AggregationClient(ClientSettings(target=f"127.0.0.1:{port}", client_id="a", connect_timeout_s=5),
                               Handler(plus_one))
    errors: list[BaseException] = []

    def follow() -> None:
        try:
            client.run()
        except (ConnectionError, grpc.RpcError) as exc:  # the server went away mid-job
            errors.append(exc)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        with pytest.raises(OSError, match="disk full"):
            server.run()
        assert server.round == 1  # round 2 was not committed on top of an unsaved round 1
    finally:
        server.stop()
        client.close()
        thread.join(10)
