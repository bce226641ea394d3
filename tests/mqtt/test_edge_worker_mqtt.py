"""End to end: real cloud and edge joint-inference workers serve simulated devices through mosquitto.

The edge worker (``workers.joint_inference.edge`` with ``MQTT_BROKER`` set) runs the
shallow digits model and offloads hard examples (CrossEntropy, threshold 0.6) to the
cloud worker over gRPC; the device simulator plays the whole digits test split. Then
the edge worker is killed with SIGKILL and its Last Will marks the service offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sedna.service.mqtt import MqttSettings
from sedna.service.mqtt.simulator import simulate
from sedna.service.mqtt.testing import Mosquitto
from tests.mqtt.devices import Device
from tests.support.procs import free_port, running

pytestmark = [pytest.mark.mqtt, pytest.mark.processes]
SERVICE = "digits-mqtt"


def test_edge_worker_serves_devices_over_mqtt_and_its_last_will_reports_it_killed(
        mosquitto: Mosquitto, digits_models: dict[str, Any], tmp_path: Path) -> None:
    rest, grpc, edge_rest, edge_grpc = free_port(), free_port(), free_port(), free_port()
    common = {"NAMESPACE": "default", "SERVICE_NAME": SERVICE, "INTRA_OP_THREADS": "1", "LOG_LEVEL": "WARNING"}
    cloud_env = {**common, "WORKER_NAME": "cloud-0", "MODEL_URL": str(digits_models["cloud"]),
                 "BIG_MODEL_BIND_PORT": str(rest), "BIG_MODEL_GRPC_PORT": str(grpc)}
    edge_env = {**common, "WORKER_NAME": "edge-0", "MODEL_URL": str(digits_models["edge"]),
                "BIG_MODEL_IP": "127.0.0.1", "BIG_MODEL_PORT": str(rest), "BIG_MODEL_GRPC_PORT": str(grpc),
                "EDGE_BIND_PORT": str(edge_rest), "EDGE_GRPC_PORT": str(edge_grpc), "HEM_NAME": "CrossEntropy",
                "HEM_PARAMETERS": '[{"key": "threshold_cross_entropy", "value": "0.6"}]',
                "BIG_MODEL_TIMEOUT": "5", "STATE_DIR": str(tmp_path / "edge-state"), "MQTT_BROKER": mosquitto.address}
    with running("workers.joint_inference.cloud", cloud_env, tmp_path / "cloud.log", port=grpc), \
            running("workers.joint_inference.edge", edge_env, tmp_path / "edge.log", port=edge_grpc) as edge, \
            Device(mosquitto.port, "default", SERVICE, "watcher", subscribe=f"sedna/default/{SERVICE}/+") as watcher:
        [online] = watcher.collect(watcher.topics.status, 1, timeout=10.0)

        summary = simulate(SERVICE, "default", MqttSettings(port=mosquitto.port), window=16, timeout=30.0)
        announced = watcher.collect(watcher.topics.hard_examples, summary["hard_examples"], timeout=10.0)
        edge.kill()
        edge.wait(10)
        [offline] = watcher.collect(watcher.topics.status, 1, timeout=15.0)
        log = (tmp_path / "edge.log").read_text(errors="replace")
    with Device(mosquitto.port, "default", SERVICE, "late", subscribe=f"sedna/default/{SERVICE}/status") as late:
        [retained] = late.collect(late.topics.status, 1, timeout=5.0)

    assert summary["sent"] == summary["answered"] == summary["ok"] == 540, log[-3000:]
    assert summary["errors"] == 0 and summary["unanswered"] == 0
    assert summary["accuracy"] >= 0.95
    assert 0 < summary["offload_share"] < 1  # some answers computed in the cloud, most at the edge
    assert summary["hard_examples"] == round(summary["offload_share"] * 540)  # every hard one reached the cloud
    assert len(announced) == summary["hard_examples"]
    note = json.loads(announced[0].payload)
    assert note["computed_at"] == "cloud" and note["shape"] == [1, 64] and "data" not in note
    assert json.loads(online.payload)["state"] == "online" and online.retain
    will = json.loads(offline.payload)
    assert will["state"] == "offline" and will["reason"] == "connection lost"
    assert retained.retain and json.loads(retained.payload)["state"] == "offline"
