"""Issue 11 item 5, GM side: the FL controller gives each trainer its own credential.

The real FederatedLearningJob controller (with the GM's :class:`~gm.workloads.credentials.WorkerCredentials`)
builds the job's Pods on a local store. The aggregation Pod's env starts a real
``workers.federated.aggregator``; a client holding trainer 0's ``AGG_CLIENT_TOKEN`` is admitted as
trainer 0 but refused as trainer 1 (and a trainer's Pod holds no other trainer's credential).
(Before: no ``AGG_CLIENT_KEY``/``AGG_CLIENT_TOKEN`` reached the Pods, so any holder of the job's
address could join under any trainer's client id.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from gm.cluster.interface import POD
from gm.cluster.local.store import LocalStore
from gm.identity import NodeIdentity
from gm.workloads.credentials import WorkerCredentials
from sedna.proto import federated_pb2 as pb
from sedna.service.aggregation.admission import CREDENTIAL_METADATA
from sedna.service.aggregation.wire import join_method
from tests.federated.fl_fixtures import SETTINGS, Harness, dataset, env_of, job, model
from tests.support.procs import free_port, start_module, stop, wait_for_port

pytestmark = pytest.mark.processes


@pytest.fixture
def pods(tmp_path: Path) -> Iterator[dict[str, dict[str, str]]]:
    """The env of each Pod the FL controller made for job ``fl`` (two trainers), credentials on."""
    store = LocalStore(tmp_path / "gm.db")
    try:
        identity = NodeIdentity(store)
        identity.load_key()
        settings = dataclasses.replace(SETTINGS, credentials=WorkerCredentials(identity))
        store.create(model())
        store.create(dataset("ds-0", "edge-0"))
        store.create(dataset("ds-1", "edge-1"))
        store.create(job())
        harness = Harness(store, settings)
        harness.reconcile()
        harness.allocate_cluster_ip()
        harness.reconcile()
        yield {p["metadata"]["name"]: env_of(p) for p in store.list(POD, "default")}
    finally:
        store.close()


def join_as(port: int, job_name: str, client_id: str, credential: str) -> grpc.StatusCode:
    """Open a Join stream as ``client_id`` with ``credential``: OK if welcomed, else the refusal's code."""
    hello = pb.ClientMessage(hello=pb.Hello(client_id=client_id, job_name=job_name, num_samples=10))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = join_method(channel)(iter([hello]), metadata=[(CREDENTIAL_METADATA, credential)], timeout=10)
        try:
            first = next(call)
        except grpc.RpcError as exc:
            return exc.code()
        call.cancel()
        assert first.WhichOneof("msg") == "welcome"
        return grpc.StatusCode.OK


def test_each_trainer_gets_only_its_own_credential(pods: dict[str, dict[str, str]]) -> None:
    assert set(pods) == {"fl-aggregation", "fl-train-0", "fl-train-1"}
    tokens = {name: pods[name]["AGG_CLIENT_TOKEN"] for name in ("fl-train-0", "fl-train-1")}
    assert len(set(tokens.values())) == 2 and all(len(t) == 64 for t in tokens.values())
    assert "AGG_CLIENT_KEY" in pods["fl-aggregation"] and "AGG_CLIENT_TOKEN" not in pods["fl-aggregation"]
    assert tokens["fl-train-0"] not in str(pods["fl-train-1"]) and tokens["fl-train-1"] not in str(pods["fl-train-0"])
    for name in tokens:
        assert "AGG_CLIENT_KEY" not in pods[name]
        assert pods[name]["WORKER_NAME"] == name  # the client id the credential is bound to


def test_a_trainer_cannot_join_under_another_trainers_client_id(pods: dict[str, dict[str, str]],
                                                                 tmp_path: Path) -> None:
    port = free_port()
    agg_env = pods["fl-aggregation"]
    env = {"JOB_NAME": agg_env["JOB_NAME"], "AGG_CLIENT_KEY": agg_env["AGG_CLIENT_KEY"], "AGG_BIND_IP": "127.0.0.1",
           "AGG_BIND_PORT": str(port), "MODEL_URL": str(tmp_path / "model"), "aggregation": "FedAvg",
           "PARTICIPANTS_COUNT": "2", "exit_round": "1", "CHECKPOINT_KEEP": "0", "LC_SERVER": "http://127.0.0.1:9"}
    log = tmp_path / "aggregator.log"
    agg = start_module("workers.federated.aggregator", env, log)
    try:
        wait_for_port(port, 30, agg, log)
        job_name = agg_env["JOB_NAME"]
        mine = pods["fl-train-0"]["AGG_CLIENT_TOKEN"]
        assert join_as(port, job_name, "fl-train-1", mine) == grpc.StatusCode.UNAUTHENTICATED
        assert join_as(port, job_name, "fl-train-9", mine) == grpc.StatusCode.UNAUTHENTICATED
        assert join_as(port, job_name, "fl-train-0", mine) == grpc.StatusCode.OK
    finally:
        stop(agg)
    assert "client id 'fl-train-1' sent a credential that is not its own" in log.read_text()
