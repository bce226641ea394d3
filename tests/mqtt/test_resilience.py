"""The gateway survives a broker restart, and its Last Will reports a killed gateway offline."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from sedna.service.mqtt import DeviceGateway, MqttSettings, encode_frame
from sedna.service.mqtt.testing import Mosquitto, argmax_infer
from tests.mqtt.conftest import tmp_mosquitto
from tests.mqtt.devices import Device
from tests.support.procs import start_module, stop
from tests.support.waiting import eventually

pytestmark = [pytest.mark.mqtt, pytest.mark.processes]
REPO = Path(__file__).resolve().parents[2]


def test_requests_queued_during_a_broker_restart_are_all_answered(tmp_path: Path) -> None:
    broker: Mosquitto = tmp_mosquitto(tmp_path / "broker").start()
    settings = MqttSettings(port=broker.port, protocol="5", reconnect_min_delay=0.2, reconnect_max_delay=1.0)
    gateway = DeviceGateway(argmax_infer(), settings, "default", "restart")
    device = Device(broker.port, "default", "restart", "dev-r", client_id="dev-r-persistent", persistent=True,
                    subscribe="sedna/default/restart/result/dev-r")
    try:
        assert gateway.start(10.0)
        with device:
            for i in range(5):
                device.send(encode_frame(np.eye(4, dtype=np.float32)[i % 4], f"before-{i}"))
            before = device.results(5)

            broker.stop()
            eventually(lambda: not gateway.connected, message="the gateway to notice the broker going away")
            for i in range(10):
                device.send(encode_frame(np.eye(4, dtype=np.float32)[i % 4], f"during-{i}"))
            broker.start()
            wanted = {f"during-{i}" for i in range(10)}
            during: dict[str, dict] = {}
            deadline = time.monotonic() + 30.0
            while not wanted <= during.keys() and time.monotonic() < deadline:
                # QoS 1 is at least once on the way back too: a result may arrive twice around a restart
                during.update((a["id"], a) for a in device.results(1, timeout=1.0))

        assert [a["id"] for a in before] == [f"before-{i}" for i in range(5)]
        assert wanted <= during.keys()
        assert all(during[k]["ok"] and during[k]["result"] == [int(k.rsplit("-", 1)[1]) % 4] for k in wanted)
        assert gateway.connected and gateway.stats()["answered"] == 15
    finally:
        gateway.stop()
        broker.stop()


def test_last_will_marks_a_killed_gateway_offline(mosquitto: Mosquitto, tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = start_module("tests.mqtt.gateway_entry", env, tmp_path / "gateway.log", [str(mosquitto.port), "lastwill"])
    try:
        status = "sedna/default/lastwill/status"
        with Device(mosquitto.port, "default", "lastwill", "watcher", subscribe=status) as watcher:
            online = watcher.collect(watcher.topics.status, 1, timeout=20.0)
            assert online and json.loads(online[0].payload)["state"] == "online", (tmp_path / "gateway.log").read_text()
            proc.kill()
            proc.wait(10)
            [offline] = watcher.collect(watcher.topics.status, 1, timeout=15.0)
        with Device(mosquitto.port, "default", "lastwill", "late", subscribe=status) as late:
            [retained] = late.collect(late.topics.status, 1, timeout=5.0)
    finally:
        stop(proc)

    will = json.loads(offline.payload)
    assert will["state"] == "offline" and will["reason"] == "connection lost" and will["since"] is None
    assert retained.retain and json.loads(retained.payload)["state"] == "offline"
