"""Issue 11 item 5: one participant cannot hijack a federated job (real processes on 127.0.0.1).

The aggregator is ``workers.federated.aggregator``; honest trainers run
``tests.federated.counting_trainer`` (each round adds 1, so after R rounds the honest global
model is exactly R); the attacker is ``tests.security.fl_attacker`` or a raw ``Join`` stream
opened by the test itself.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from sedna.proto import federated_pb2 as pb
from sedna.service.aggregation.admission import CREDENTIAL_METADATA, issue_credential
from sedna.service.aggregation.wire import join_method
from tests.federated.fl_processes import JOB, agg_env, finish, state, trainer, wait_round
from tests.support.procs import free_port, start_module, stop, wait_for_port

pytestmark = pytest.mark.slow


def _attacker(port: int, work: Path, name: str, **env: str) -> object:
    return start_module("tests.security.fl_attacker", {
        "JOB_NAME": JOB, "WORKER_NAME": name, "AGG_IP": "127.0.0.1", "AGG_PORT": str(port), **env},
        work / f"{name}.log")


def _join_as(port: int, client_id: str, credential: str = "") -> grpc.StatusCode:
    """Open a Join stream claiming ``client_id``; the status the server ends it with (OK if it admitted us)."""
    metadata = [(CREDENTIAL_METADATA, credential)] if credential else []
    hello = pb.ClientMessage(hello=pb.Hello(client_id=client_id, job_name=JOB, num_samples=10))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = join_method(channel)(iter([hello]), metadata=metadata, timeout=10)
        try:
            first = next(call)
        except grpc.RpcError as exc:
            return exc.code()
        call.cancel()
        assert first.WhichOneof("msg") == "welcome"
        return grpc.StatusCode.OK


def _stop_all(procs: list) -> None:
    for p in procs:
        if p is not None and p.poll() is None:
            stop(p)


def test_an_inflated_sample_count_no_longer_makes_the_global_model_the_attackers(tmp_path: Path) -> None:
    port = free_port()
    agg = start_module("workers.federated.aggregator", agg_env(
        port, tmp_path, PARTICIPANTS_COUNT="3", exit_round="3", MAX_SAMPLES_PER_CLIENT="100",
        ROUND_TIMEOUT_SECONDS="20"), tmp_path / "aggregator.log")
    procs = [agg, trainer(port, tmp_path, "t0", 0.1), trainer(port, tmp_path, "t1", 0.1),
             _attacker(port, tmp_path, "evil", HELLO_SAMPLES="10", CLAIMED_SAMPLES=str(2**62))]
    try:
        codes = finish(procs, 90)
    finally:
        _stop_all(procs)
    assert codes == [0, 0, 0, 0], (tmp_path / "aggregator.log").read_text()[-3000:]
    with np.load(tmp_path / "model" / "model.npz") as final:
        assert final["layer_0"].tolist() == [3.0] * 4  # the honest mean; the attacker's would be ~1000
    history = state(tmp_path)["history"]
    assert [h["clients"] for h in history] == [["t0", "t1"]] * 3
    reason = "num_samples=4611686018427387904 exceeds the cap of 100 from MAX_SAMPLES_PER_CLIENT"
    assert all(h["failures"] == {"evil": f"rejected: {reason}"} for h in history)
    assert f"refused in round 1: {reason}" in (tmp_path / "evil.log").read_text()


def test_the_dataset_count_given_to_the_aggregator_caps_each_client(tmp_path: Path) -> None:
    port = free_port()
    agg = start_module("workers.federated.aggregator", agg_env(
        port, tmp_path, PARTICIPANTS_COUNT="2", exit_round="2", ROUND_TIMEOUT_SECONDS="20",
        AGG_CLIENT_SAMPLES='{"t0": 10, "evil": 10}'), tmp_path / "aggregator.log")
    procs = [agg, trainer(port, tmp_path, "t0", 0.1), _attacker(port, tmp_path, "evil", CLAIMED_SAMPLES="11")]
    try:
        codes = finish(procs, 90)
    finally:
        _stop_all(procs)
    assert codes == [0, 0, 0], (tmp_path / "aggregator.log").read_text()[-3000:]
    with np.load(tmp_path / "model" / "model.npz") as final:
        assert final["layer_0"].tolist() == [2.0] * 4
    assert "exceeds the cap of 10 from the dataset count" in (tmp_path / "evil.log").read_text()


def test_a_reused_client_id_is_refused_while_the_real_client_stays_in(tmp_path: Path) -> None:
    port = free_port()
    agg = start_module("workers.federated.aggregator", agg_env(
        port, tmp_path, PARTICIPANTS_COUNT="2", exit_round="5", ROUND_TIMEOUT_SECONDS="20"),
        tmp_path / "aggregator.log")
    procs = [agg, trainer(port, tmp_path, "t0", 0.3), trainer(port, tmp_path, "t1", 0.3)]
    try:
        wait_round(tmp_path, 1, 60, procs)
        refusals = [_join_as(port, "t0") for _ in range(3)]
        codes = finish(procs, 90)
    finally:
        _stop_all(procs)
    assert refusals == [grpc.StatusCode.ALREADY_EXISTS] * 3
    assert codes == [0, 0, 0], (tmp_path / "aggregator.log").read_text()[-3000:]
    history = state(tmp_path)["history"]
    assert [h["clients"] for h in history] == [["t0", "t1"]] * 5  # the real t0 was never dropped
    assert np.load(tmp_path / "t0.npy").tolist() == [5.0] * 4
    assert "already connected" in (tmp_path / "aggregator.log").read_text()


def test_per_trainer_credentials_bind_the_client_id(tmp_path: Path) -> None:
    port = free_port()
    key = "job-signing-key-0123456789"
    agg = start_module("workers.federated.aggregator", agg_env(
        port, tmp_path, PARTICIPANTS_COUNT="2", exit_round="3", ROUND_TIMEOUT_SECONDS="20", AGG_CLIENT_KEY=key),
        tmp_path / "aggregator.log")
    own = {name: issue_credential(key, JOB, name) for name in ("t0", "t1")}
    procs = [agg]
    try:
        wait_for_port(port, 30, agg, tmp_path / "aggregator.log")
        before = {"no credential": _join_as(port, "t0"), "another's credential": _join_as(port, "t0", own["t1"]),
                  "unknown id": _join_as(port, "t9", own["t1"])}
        procs += [trainer(port, tmp_path, name, 0.2, AGG_CLIENT_TOKEN=own[name]) for name in ("t0", "t1")]
        wait_round(tmp_path, 1, 60, procs)
        during = _join_as(port, "t1", "0" * 64)
        codes = finish(procs, 90)
    finally:
        _stop_all(procs)
    assert set(before.values()) == {grpc.StatusCode.UNAUTHENTICATED} and during == grpc.StatusCode.UNAUTHENTICATED
    assert codes == [0, 0, 0], (tmp_path / "aggregator.log").read_text()[-3000:]
    assert [h["clients"] for h in state(tmp_path)["history"]] == [["t0", "t1"]] * 3
    assert "client id 't0' sent no credential" in (tmp_path / "aggregator.log").read_text()


def test_a_trainer_holding_a_wrong_credential_stops_at_once_with_the_reason(tmp_path: Path) -> None:
    port = free_port()
    agg = start_module("workers.federated.aggregator", agg_env(
        port, tmp_path, PARTICIPANTS_COUNT="1", exit_round="1", AGG_CLIENT_KEY="k" * 16),
        tmp_path / "aggregator.log")
    try:
        wait_for_port(port, 30, agg, tmp_path / "aggregator.log")
        started = time.monotonic()
        wrong = trainer(port, tmp_path, "t0", 0, AGG_CLIENT_TOKEN=issue_credential("k" * 16, JOB, "t1"))
        code = wrong.wait(60)
        elapsed = time.monotonic() - started
    finally:
        agg.send_signal(signal.SIGTERM)
        _stop_all([agg])
    assert code != 0 and elapsed < 30
    assert "UNAUTHENTICATED" in (tmp_path / "t0.log").read_text()
