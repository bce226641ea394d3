"""Real aggregator and trainer processes on 127.0.0.1: failures, restarts, late starts.

Trainers run ``tests.federated.counting_trainer``: every round adds 1 to the model, so the
global model after ``R`` rounds is exactly ``R`` and the history in ``state.json`` tells
which clients delivered in which round.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support.procs import free_port, start_module, stop, wait_for_port
from tests.support.waiting import eventually

pytestmark = pytest.mark.processes

JOB = "fl-test"


def _agg_env(port: int, work: Path, **extra: str) -> dict[str, str]:
    return {"JOB_NAME": JOB, "AGG_BIND_IP": "127.0.0.1", "AGG_BIND_PORT": str(port), "MODEL_URL": str(work / "model"),
            "aggregation": "FedAvg", "CHECKPOINT_KEEP": "0", "LC_SERVER": "http://127.0.0.1:9", **extra}


def _trainer(port: int, work: Path, name: str, sleep: float) -> subprocess.Popen[bytes]:
    env = {"JOB_NAME": JOB, "WORKER_NAME": name, "AGG_IP": "127.0.0.1", "AGG_PORT": str(port),
           "TRAIN_SLEEP": str(sleep), "RESULT_FILE": str(work / f"{name}.npy"), "LC_SERVER": "http://127.0.0.1:9"}
    return start_module("tests.federated.counting_trainer", env, work / f"{name}.log")


def _state(work: Path) -> dict:
    path = work / "model" / "checkpoints" / "state.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {"round": 0, "history": []}


def _wait_round(work: Path, number: int, timeout: float, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    while _state(work)["round"] < number:
        if time.monotonic() > deadline:
            raise TimeoutError(f"round {number} not reached; logs in {work}")
        time.sleep(0.02)


def _finish(procs: list[subprocess.Popen[bytes]], timeout: float = 60) -> list[int | None]:
    deadline = time.monotonic() + timeout
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            stop(p)
            codes.append(None)
    return codes


@pytest.mark.slow
def test_killed_and_frozen_clients_are_dropped_from_their_round_only(tmp_path: Path) -> None:
    port = free_port()
    agg = start_module("workers.federated.aggregator", _agg_env(
        port, tmp_path, PARTICIPANTS_COUNT="5", exit_round="4", ROUND_TIMEOUT_SECONDS="3", MIN_COMPLETION_RATE="0.6",
        REJOIN_GRACE_SECONDS="0.5"), tmp_path / "aggregator.log")
    trainers = [_trainer(port, tmp_path, f"t{i}", sleep=0.6) for i in range(5)]
    try:
        _wait_round(tmp_path, 1, 60, [agg])
        time.sleep(0.2)  # round 2 is training now
        trainers[0].send_signal(signal.SIGKILL)
        _wait_round(tmp_path, 2, 30, [agg])
        os.kill(trainers[1].pid, signal.SIGSTOP)  # a straggler in round 3
        _wait_round(tmp_path, 3, 30, [agg])
        os.kill(trainers[1].pid, signal.SIGCONT)
        codes = _finish([agg, *trainers[1:]])
    finally:
        for p in [agg, *trainers]:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGCONT)
                stop(p)
    assert codes == [0, 0, 0, 0, 0], (tmp_path / "aggregator.log").read_text()[-3000:]
    history = _state(tmp_path)["history"]
    assert [h["round"] for h in history] == [1, 2, 3, 4]
    assert history[0]["clients"] == ["t0", "t1", "t2", "t3", "t4"]
    assert history[1]["clients"] == ["t1", "t2", "t3", "t4"]
    assert list(history[1]["failures"]) == ["t0"] and history[1]["duration_s"] < 3.0  # not waiting for the deadline
    assert history[2]["clients"] == ["t2", "t3", "t4"]
    assert history[2]["failures"] == {"t1": "no answer within the 3s deadline"}
    assert 3.0 <= history[2]["duration_s"] < 6.0
    assert "t1" in history[3]["clients"]  # back in the job after its stale update was refused
    assert "not expected now" in (tmp_path / "t1.log").read_text()
    for name in ("t1", "t2", "t3", "t4"):
        assert np.load(tmp_path / f"{name}.npy").tolist() == [4.0] * 4


@pytest.mark.slow
def test_aggregator_killed_and_restarted_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    port = free_port()
    env = _agg_env(port, tmp_path, PARTICIPANTS_COUNT="2", exit_round="6", ROUND_TIMEOUT_SECONDS="10")
    trainers = [_trainer(port, tmp_path, f"t{i}", sleep=0.25) for i in range(2)]  # started before the aggregator
    eventually(lambda: all("unreachable" in (tmp_path / f"t{i}.log").read_text() for i in range(2)),
               ignoring=(FileNotFoundError,), message="both trainers to find no aggregator yet")
    first = start_module("workers.federated.aggregator", env, tmp_path / "aggregator-1.log")
    second = None
    try:
        _wait_round(tmp_path, 2, 60, [first])
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_at = _state(tmp_path)["round"]
        second = start_module("workers.federated.aggregator", env, tmp_path / "aggregator-2.log")
        codes = _finish([second, *trainers])
    finally:
        for p in [first, second, *trainers]:
            if p is not None and p.poll() is None:
                stop(p)
    log2 = (tmp_path / "aggregator-2.log").read_text()
    assert codes == [0, 0, 0], log2[-3000:]
    assert 2 <= killed_at < 6
    assert f"round {killed_at} completed" in log2 and f"round {killed_at + 1}/6 done" in log2
    assert "round 1/6 done" not in log2
    history = _state(tmp_path)["history"]
    assert [h["round"] for h in history] == [1, 2, 3, 4, 5, 6]
    with np.load(tmp_path / "model" / "model.npz") as final:
        assert final["layer_0"].tolist() == [6.0] * 4  # no round lost or repeated
    for name in ("t0", "t1"):
        assert np.load(tmp_path / f"{name}.npy").tolist() == [6.0] * 4
    assert "unreachable" in (tmp_path / "t0.log").read_text()  # it waited for the aggregator, twice


@pytest.mark.slow
def test_restarting_a_finished_aggregator_serves_the_final_model(tmp_path: Path) -> None:
    port = free_port()
    env = _agg_env(port, tmp_path, PARTICIPANTS_COUNT="1", exit_round="2")
    agg = start_module("workers.federated.aggregator", env, tmp_path / "aggregator-1.log")
    trainer = _trainer(port, tmp_path, "t0", sleep=0)
    assert _finish([agg, trainer], 60) == [0, 0]
    again = start_module("workers.federated.aggregator", env, tmp_path / "aggregator-2.log")
    wait_for_port(port, 30, again, tmp_path / "aggregator-2.log")
    late = _trainer(port, tmp_path, "late", sleep=0)
    assert _finish([late, again], 60) == [0, 0]
    assert np.load(tmp_path / "late.npy").tolist() == [2.0] * 4
    assert "job already finished" in (tmp_path / "aggregator-2.log").read_text()
