"""Fixtures for the MQTT tests: a real mosquitto on 127.0.0.1, gateways and device clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from sedna.common.outcome import JointOutcome
from sedna.service.mqtt import DeviceGateway, MqttSettings
from sedna.service.mqtt.testing import Mosquitto, argmax_infer, find_mosquitto
from tests.mqtt.devices import Device

needs_mosquitto = pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto binary not installed")


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One mosquitto for the session (listener 127.0.0.1:<free port>, anonymous, persistence in tmp)."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto binary not installed (apt-get install mosquitto)")
    with Mosquitto(tmp_path_factory.mktemp("mosquitto")) as broker:
        yield broker


@pytest.fixture
def service(request: pytest.FixtureRequest) -> str:
    """A service name unique to the test, so retained status and sessions do not leak between tests."""
    return "svc-" + request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[-40:]


@pytest.fixture
def start_gateway(mosquitto: Mosquitto, service: str) -> Iterator[Callable[..., DeviceGateway]]:
    """Factory: a started gateway for ``service`` on the session broker; stopped after the test."""
    started: list[DeviceGateway] = []

    def start(infer: Callable[[np.ndarray], JointOutcome] | None = None, registry: object = None,
              **settings: object) -> DeviceGateway:
        values: dict[str, object] = {"port": mosquitto.port, "protocol": "5", "worker_name": "w0"}
        values.update(settings)
        gateway = DeviceGateway(infer or argmax_infer(), MqttSettings(**values), "default", service,  # type: ignore[arg-type]
                                registry=registry)
        started.append(gateway)
        assert gateway.start(10.0), "gateway did not subscribe within 10 s"
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture
def device(mosquitto: Mosquitto, service: str) -> Iterator[Device]:
    """A connected MQTT 5 device listening to every topic of ``service``."""
    with Device(mosquitto.port, "default", service) as dev:
        yield dev


def tmp_mosquitto(path: Path) -> Mosquitto:
    """A private mosquitto (for tests that stop or restart the broker)."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto binary not installed (apt-get install mosquitto)")
    return Mosquitto(path)
