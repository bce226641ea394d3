"""``sedna local up`` is secure by default: its inference servers and its MQTT broker refuse strangers.

Issue 11.6: the embedded cluster used to start the joint-inference workers without tokens (any local
process could use, or flood, the cloud model and the edge service) and a broker that accepted
anonymous clients (any local process could read device frames or answer as the service). Now ``up``
generates ``BIG_MODEL_TOKEN`` and ``EDGE_TOKEN`` and broker passwords into the state dir (0600), the
GM gives them to every Pod, and ``sedna device simulate`` and the examples read them there. Real
processes: the CLI, GM, LCs, the embedded broker and both workers, over 127.0.0.1.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from examples.joint_inference.digits import run_local
from sedna.cli import _local_secrets as creds
from sedna.common.errors import InferenceError
from sedna.service.inference import GrpcInferenceClient
from sedna.service.inference.rest_client import RestInferenceClient
from tests.e2e.local_cluster import apply_digits, pod_ip, sedna
from tests.security.test_local_broker_auth import connack

pytestmark = [pytest.mark.slow, pytest.mark.processes]
BODY = {"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP32", "data": [1.0] * 64}]}


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("secure-local")
    state = root / "state"
    up = sedna(state, "local", "up", "--nodes", "cloud,edge-0")
    assert up.returncode == 0, up.stderr
    try:
        assert "username and password required" in up.stdout
        apply_digits(state, root)
        yield state
    finally:
        sedna(state, "local", "down")


def test_the_credentials_are_kept_private_in_the_state_dir(state: Path) -> None:
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name in ("token", "worker-tokens", "bootstrap-tokens", "worker-secrets", "mqtt-passwords", "local.json",
                 "lc/edge-0/node-credential.json"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
    secrets = creds.read_pairs(state / "worker-secrets")
    assert {"BIG_MODEL_TOKEN", "EDGE_TOKEN", "MQTT_USERNAME", "MQTT_PASSWORD"} <= set(secrets)
    assert len({secrets["BIG_MODEL_TOKEN"], secrets["EDGE_TOKEN"], secrets["MQTT_PASSWORD"]}) == 3


@pytest.mark.parametrize("worker", ["edge", "cloud"])
def test_the_inference_rest_apis_refuse_requests_without_the_token(state: Path, worker: str) -> None:
    port = 5100 if worker == "edge" else 5000
    token = creds.read_pairs(state / "worker-secrets")["EDGE_TOKEN" if worker == "edge" else "BIG_MODEL_TOKEN"]
    url = f"http://{pod_ip(state, worker)}:{port}/v2/models/digits/infer"

    assert httpx.post(url, json=BODY, timeout=10).status_code == 401
    assert httpx.post(url, json=BODY, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
    with RestInferenceClient(url.split("/v2")[0], token=token, timeout=30) as client:
        result = client.infer("digits", {"x": np.ones((1, 64), np.float32)})
    assert np.asarray(result.outputs["probabilities"]).shape == (1, 10)


def test_the_edge_grpc_api_refuses_requests_without_the_token(state: Path) -> None:
    host, x = run_local.edge_pod_ip(state), {"x": np.ones((1, 64), np.float32)}
    with GrpcInferenceClient(host, run_local.EDGE_GRPC_PORT, timeout=10.0) as client, \
            pytest.raises(InferenceError, match="UNAUTHENTICATED"):
        client.infer("digits", x)
    with GrpcInferenceClient(host, run_local.EDGE_GRPC_PORT, token=creds.edge_token(state), timeout=10.0) as client:
        assert np.asarray(client.infer("digits", x).outputs["probabilities"]).shape[-1] == 10


def test_the_broker_refuses_anonymous_clients_and_devices_use_the_state_dirs_identity(state: Path) -> None:
    broker = run_local.mqtt_broker(state)
    port = int(broker.rsplit(":", 1)[1])
    assert connack(port, None, None) != 0
    assert connack(port, creds.DEVICES_MQTT_USER, "guess") != 0
    device = creds.device_credentials(state)
    assert device is not None and connack(port, *device) == 0

    # the edge worker got the workers' identity: its gateway is online and answers devices
    run_local.wait_gateway_online(broker, timeout=60, credentials=device)
    done = sedna(state, "device", "simulate", "--service", "digits", "--count", "10", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert (summary["sent"], summary["answered"], summary["errors"]) == (10, 10, 0)
