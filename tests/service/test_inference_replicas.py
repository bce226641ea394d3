"""Serving across cores: replicas of one server on the same ports, as real processes on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from sedna.common.errors import CloudUnavailableError
from sedna.service.inference import GrpcInferenceClient, RestInferenceClient
from sedna.service.inference.replicas import ReplicaSet, parse_count, usable_cores
from tests.support.waiting import eventually

pytestmark = pytest.mark.processes

COMMAND = [sys.executable, "-m", "tests.service.replica_server"]
PORTS = {"REPLICA_TEST_REST_PORT": 0, "REPLICA_TEST_GRPC_PORT": 0}
X = np.array([[1.0, 2.0]], np.float32)


@pytest.fixture
def replicas() -> Iterator[ReplicaSet]:
    with ReplicaSet(COMMAND, 2, dict(os.environ), "127.0.0.1", PORTS) as started:
        yield started


def grpc_pids(replicas: ReplicaSet, connections: int) -> list[int]:
    """The pid that answered each of ``connections`` fresh connections."""
    pids = []
    for _ in range(connections):
        with GrpcInferenceClient("127.0.0.1", replicas.ports["REPLICA_TEST_GRPC_PORT"]) as client:
            result = client.infer("pid", {"x": X})
            assert result.outputs["y"].tolist() == [[2.0, 4.0]]
            pids.append(int(result.parameters["pid"]))
    return pids


def test_connections_spread_over_the_replicas_and_metrics_add_up(replicas: ReplicaSet) -> None:
    pids = grpc_pids(replicas, 30)
    rest = f"http://127.0.0.1:{replicas.ports['REPLICA_TEST_REST_PORT']}"
    for _ in range(10):
        with RestInferenceClient(rest) as client:
            pids.append(int(client.infer("pid", {"x": X}).parameters["pid"]))
    assert len(set(pids)) == 2, f"every connection went to one replica: {set(pids)}"
    assert os.getpid() not in pids
    metrics = httpx.get(f"{rest}/metrics", trust_env=False).text  # any replica answers for all of them
    counts = {line.split("protocol=")[1][1:5]: float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
              if line.startswith("sedna_inference_requests_total{")}
    assert counts == {"grpc": 30.0, "rest": 10.0}


def test_a_replica_that_dies_is_started_again(replicas: ReplicaSet) -> None:
    import threading

    watcher = threading.Thread(target=replicas.watch, kwargs={"interval": 0.1}, daemon=True)
    watcher.start()
    before = set(grpc_pids(replicas, 20))
    os.kill(before.pop(), signal.SIGKILL)
    eventually(lambda: all(code is None for code in replicas.exit_codes()), 60, 0.1,
               "the killed replica to be started again")
    eventually(lambda: len(set(grpc_pids(replicas, 20))) == 2, 60, 0.5, "both replicas to answer again",
               ignoring=(CloudUnavailableError,))
    assert all(code is None for code in replicas.exit_codes())
    assert len(set(grpc_pids(replicas, 20))) == 2
    replicas.stop()
    watcher.join(10)
    assert not watcher.is_alive()


def test_a_replica_that_cannot_start_fails_the_start_and_leaves_nothing_running() -> None:
    failing = ReplicaSet(COMMAND, 2, {**os.environ, "REPLICA_TEST_FAIL": "1"}, "127.0.0.1", PORTS)
    with pytest.raises(RuntimeError, match=r"serving replica 0 .* exited with code 3 before it listened"):
        failing.start(timeout=60)
    assert failing.exit_codes() == [3, None]  # replica 1 was never started


def test_replica_counts_parse_or_name_the_setting() -> None:
    assert parse_count("") == parse_count("1") == 1
    assert parse_count("3") == 3
    assert parse_count("auto") == usable_cores()
    with pytest.raises(ValueError, match="SERVING_REPLICAS='0' must be a positive integer or 'auto'"):
        parse_count("0")
    with pytest.raises(ValueError, match="SERVING_REPLICAS='many'"):
        parse_count("many")
