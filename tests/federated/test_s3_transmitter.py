"""TRANSMITTER=s3: models through a real S3-wire server (moto on 127.0.0.1), references through the channel."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sedna.algorithms.aggregation import create_strategy
from sedna.algorithms.aggregation.records import FitRes
from sedna.common.errors import ConfigError
from sedna.common.s3 import S3Settings
from sedna.service.aggregation.s3_server import S3Strategy
from sedna.service.aggregation.transmit import (
    REF_BYTES,
    REF_TENSOR,
    ObjectRef,
    S3Transmitter,
    TransmitError,
    TransmitSettings,
)
from tests.federated.fl_processes import agg_env, finish, state, trainer
from tests.support.procs import free_port, start_module, stop
from tests.support.s3 import moto_s3

pytest.importorskip("moto")
JOB = "fl-test"
BASE = "s3://sedna/fl/aggregation_data"


@pytest.fixture
def s3_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Sedna's S3 env and the transmitter env for a moto server on 127.0.0.1 with the bucket ``sedna``."""
    with moto_s3(tmp_path, ("sedna",)) as s3_settings:
        yield {**s3_settings, "TRANSMITTER": "s3", "AGG_DATA_PATH": BASE, "JOB_NAME": JOB}


def _keys(env: dict[str, str]) -> list[str]:
    listing = S3Settings.from_env(env).client().list_objects_v2(Bucket="sedna", Prefix="fl/")
    return sorted(item["Key"] for item in listing.get("Contents", []))


def _put(env: dict[str, str], key: str, body: bytes) -> None:
    S3Settings.from_env(env).client().put_object(Bucket="sedna", Key=key, Body=body)


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def test_a_reference_is_one_fixed_size_uint8_tensor_and_reads_back() -> None:
    ref = ObjectRef(f"{BASE}/{JOB}/round-3/t0.npz", 1234, "ab" * 32)
    weights = ref.to_weights()
    assert list(weights) == [REF_TENSOR] and weights[REF_TENSOR].shape == (REF_BYTES,)
    assert weights[REF_TENSOR].dtype == np.uint8
    assert ObjectRef.from_weights(weights) == ref
    assert ObjectRef.from_weights({"w": np.zeros(3)}) is None
    with pytest.raises(TransmitError, match="not a valid S3 object reference"):
        ObjectRef.from_weights({REF_TENSOR: np.zeros(REF_BYTES, np.uint8)})


def test_the_environment_chooses_the_transmitter_and_bad_values_name_the_variable() -> None:
    assert S3Transmitter.from_env({}) is None and S3Transmitter.from_env({"TRANSMITTER": "ws"}) is None
    with pytest.raises(ConfigError, match="TRANSMITTER='kafka' must be 'ws' or 's3'"):
        S3Transmitter.from_env({"TRANSMITTER": "kafka"})
    with pytest.raises(ConfigError, match="AGG_DATA_PATH='/data/agg' must be an s3://bucket/prefix URL"):
        S3Transmitter.from_env({"TRANSMITTER": "s3", "AGG_DATA_PATH": "/data/agg", "JOB_NAME": JOB})
    found = S3Transmitter.from_env({"TRANSMITTER": "s3", "AGG_DATA_PATH": BASE + "/", "JOB_NAME": JOB})
    assert found is not None and found.url_for(2, "t0") == f"{BASE}/{JOB}/round-2/t0.npz"


@pytest.mark.processes
def test_an_object_is_sent_checked_and_a_changed_or_missing_one_refused_naming_it(s3_env: dict[str, str]) -> None:
    sender, receiver = S3Transmitter.from_env(s3_env), S3Transmitter.from_env(s3_env)
    assert sender is not None and receiver is not None
    model = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, 2], np.int64)}

    ref = sender.send(model, 1, "t0")

    url = f"{BASE}/{JOB}/round-1/t0.npz"
    assert _keys(s3_env) == [f"fl/aggregation_data/{JOB}/round-1/t0.npz"]
    announced = ObjectRef.from_weights(ref)
    assert announced is not None and announced.url == url and announced.size > 0
    got = receiver.receive(ref)
    assert list(got) == ["w", "b"] and all(np.array_equal(got[k], model[k]) for k in model)
    # someone rewrites the object in the bucket: the sha256 the channel carried no longer matches
    _put(s3_env, f"fl/aggregation_data/{JOB}/round-1/t0.npz", _npz(w=np.zeros((2, 3), np.float32)))
    with pytest.raises(TransmitError, match=f"{url}: the object changed after it was sent"):
        S3Transmitter.from_env(s3_env).receive(ref)  # type: ignore[union-attr]
    missing = ObjectRef(f"{BASE}/{JOB}/round-9/t0.npz", 1, "0" * 64).to_weights()
    with pytest.raises(TransmitError, match=f"{BASE}/{JOB}/round-9/t0.npz: no such object"):
        receiver.receive(missing)
    elsewhere = ObjectRef("s3://sedna/other-job/round-1/t0.npz", 1, "0" * 64).to_weights()
    with pytest.raises(TransmitError, match="not below the job's"):
        receiver.receive(elsewhere)


def test_an_unreachable_endpoint_is_retried_with_back_off_then_named() -> None:
    port = free_port()  # nothing listens there
    naps: list[float] = []
    settings = TransmitSettings(BASE, JOB, S3Settings(f"http://127.0.0.1:{port}", "k", "s"), attempts=4,
                                backoff_initial_s=0.5, backoff_max_s=1.5, connect_timeout_s=1.0)

    with pytest.raises(TransmitError) as caught:
        S3Transmitter(settings, sleep=naps.append).send({"w": np.ones(2)}, 1, "t0")

    assert naps == [0.5, 1.0, 1.5]
    assert f"S3 endpoint http://127.0.0.1:{port} unreachable for {BASE}/{JOB}/round-1/t0.npz after 4 attempts" in str(
        caught.value)


@pytest.mark.processes
def test_the_aggregator_refuses_a_changed_or_misplaced_update_and_aggregates_the_rest(s3_env: dict[str, str]) -> None:
    trainers = {name: S3Transmitter.from_env(s3_env) for name in ("t0", "t1", "t2")}
    agg = S3Transmitter.from_env(s3_env)
    assert agg is not None and all(trainers.values())
    start = agg.send({"w": np.zeros(2, np.float32)}, 0, "global")
    refs = {name: t.send({"w": np.full(2, i + 1, np.float32)}, 1, name)  # type: ignore[union-attr]
            for i, (name, t) in enumerate(trainers.items())}
    _put(s3_env, f"fl/aggregation_data/{JOB}/round-1/t1.npz", _npz(w=np.full(2, 99, np.float32)))
    results = [FitRes("t0", 10, refs["t0"]), FitRes("t1", 10, refs["t1"]),
               FitRes("t2", 10, refs["t0"])]  # t2 hands in t0's object as its own
    strategy = S3Strategy(create_strategy("FedAvg"), agg)

    new, metrics = strategy.aggregate_fit(1, start, results, [])

    assert new is not None and list(new) == [REF_TENSOR]
    model = S3Transmitter.from_env(s3_env).receive(new)  # type: ignore[union-attr]
    assert model["w"].tolist() == [1.0, 1.0]  # t0's update alone
    refused = str(metrics["s3_refused"])
    assert f"t1: {BASE}/{JOB}/round-1/t1.npz: the object changed after it was sent" in refused
    assert f"t2: reference to {BASE}/{JOB}/round-1/t0.npz refused: this sender writes to " \
           f"{BASE}/{JOB}/round-1/t2.npz" in refused
    assert f"fl/aggregation_data/{JOB}/round-1/global.npz" in _keys(s3_env)
    with pytest.raises(TransmitError, match="round 1: every update was refused"):
        strategy.aggregate_fit(1, start, results[1:], [])


@pytest.mark.processes
@pytest.mark.parametrize("keep, first_left", [(2, 3), (0, 0)])
def test_the_aggregator_deletes_rounds_no_kept_checkpoint_names(s3_env: dict[str, str], keep: int,
                                                                first_left: int) -> None:
    agg = S3Transmitter.from_env(s3_env)
    trainer_side = S3Transmitter.from_env(s3_env)
    assert agg is not None and trainer_side is not None
    for n in range(5):  # rounds 0-4 done: a global model and a trainer's update each
        current = agg.send({"w": np.full(2, n, np.float32)}, n, "global")
        trainer_side.send({"w": np.full(2, n, np.float32)}, n, "t0")
    _put(s3_env, f"fl/aggregation_data/{JOB}/notes.txt", b"not a round")  # not ours to delete
    update = trainer_side.send({"w": np.full(2, 5, np.float32)}, 5, "t0")

    new, _ = S3Strategy(create_strategy("FedAvg"), agg, keep_rounds=keep).aggregate_fit(
        5, current, [FitRes("t0", 10, update)], [])

    assert new is not None
    prefix = f"fl/aggregation_data/{JOB}"
    rounds_left = [f"{prefix}/round-{n}/{name}.npz" for n in range(first_left, 6) for name in ("global", "t0")]
    assert _keys(s3_env) == sorted([f"{prefix}/notes.txt", *rounds_left])


@pytest.mark.processes
def test_a_failed_clean_up_is_logged_and_the_round_goes_on(s3_env: dict[str, str],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    agg = S3Transmitter.from_env(s3_env)
    assert agg is not None
    current = agg.send({"w": np.zeros(2, np.float32)}, 2, "global")
    update = agg.send({"w": np.ones(2, np.float32)}, 3, "t0")

    def unreachable(before_round: int) -> int:
        raise TransmitError(f"S3 endpoint unreachable (rounds before {before_round})")

    agg.prune = unreachable  # type: ignore[method-assign]
    new, _ = S3Strategy(create_strategy("FedAvg"), agg).aggregate_fit(3, current, [FitRes("t0", 10, update)], [])

    assert new is not None and agg.receive(new)["w"].tolist() == [1.0, 1.0]
    assert f"round 3: could not delete the objects of older rounds under {BASE}/{JOB}/: S3 endpoint unreachable " \
           "(rounds before 1)" in caplog.text


@pytest.mark.processes
@pytest.mark.slow
def test_a_federated_job_runs_its_rounds_with_models_only_in_the_bucket(tmp_path: Path,
                                                                     s3_env: dict[str, str]) -> None:
    port = free_port()
    rounds = 3
    agg = start_module("workers.federated.aggregator", agg_env(port, tmp_path, PARTICIPANTS_COUNT="2",
                                                               exit_round=str(rounds), **s3_env,
                                                               CHECKPOINT_KEEP="2"),
                       tmp_path / "aggregator.log")
    trainers = [trainer(port, tmp_path, f"t{i}", sleep=0.0, **s3_env) for i in range(2)]
    try:
        codes = finish([agg, *trainers], timeout=120)
    finally:
        for p in (agg, *trainers):
            stop(p)
    assert codes == [0, 0, 0], (tmp_path / "aggregator.log").read_text()[-3000:]
    # every trainer ends with the exact global model: each round added 1
    for name in ("t0", "t1"):
        assert np.load(tmp_path / f"{name}.npy").tolist() == [float(rounds)] * 4
    prefix = f"fl/aggregation_data/{JOB}"
    # the rounds the kept checkpoints (CHECKPOINT_KEEP=2) may name stay; round 0 (the initial model) was deleted
    assert _keys(s3_env) == sorted(f"{prefix}/round-{n}/{name}.npz" for n in range(1, rounds + 1)
                                   for name in ("t0", "t1", "global"))
    assert "round 3: deleted 1 object(s) of rounds before 1" in (tmp_path / "aggregator.log").read_text()
    # the channel and the checkpoints carried references; the final model file holds the model
    assert [h["round"] for h in state(tmp_path)["history"]] == list(range(1, rounds + 1))
    with np.load(tmp_path / "model" / "model.npz", allow_pickle=False) as final:
        assert final.files == ["layer_0"] and final["layer_0"].tolist() == [float(rounds)] * 4
    checkpoints = [p for p in (tmp_path / "model" / "checkpoints").rglob("*.npz")]
    assert checkpoints and all(REF_TENSOR in np.load(p, allow_pickle=False).files for p in checkpoints)
    for path in checkpoints:  # every kept checkpoint still resolves
        with np.load(path, allow_pickle=False) as ckpt:
            ref = ObjectRef.from_weights({REF_TENSOR: ckpt[REF_TENSOR]})
        assert ref is not None and ref.url.removeprefix("s3://sedna/") in _keys(s3_env)


def test_every_aggregator_built_from_the_environment_honours_transmitter(tmp_path: Path) -> None:
    from sedna.service.aggregation.environment import build_server
    from sedna.service.aggregation.s3_server import S3AggregationServer, S3Strategy

    env = agg_env(free_port(), tmp_path, TRANSMITTER="s3", AGG_DATA_PATH="s3://fl/agg",
                  S3_ENDPOINT_URL="127.0.0.1:9", S3_USE_HTTPS="0", ACCESS_KEY_ID="k", SECRET_ACCESS_KEY="s")
    s3_server = build_server(env, aggregation="FedProx", participants_count=2)  # what Sedna's AggregationServer calls
    ws_server = build_server({**env, "TRANSMITTER": "ws"})

    assert isinstance(s3_server, S3AggregationServer)
    assert isinstance(s3_server.strategy, S3Strategy)
    assert type(s3_server.strategy.inner).__name__ == "FedProx"
    assert not isinstance(ws_server, S3AggregationServer)
