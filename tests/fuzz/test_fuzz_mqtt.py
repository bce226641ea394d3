"""Fuzz the MQTT device gateway: the frame decoder alone, then a live gateway behind mosquitto."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given

from sedna.service.mqtt import DeviceGateway, MqttSettings
from sedna.service.mqtt.codec import PayloadError, decode_request, encode_frame
from sedna.service.mqtt.testing import Mosquitto, argmax_infer, find_mosquitto
from tests.fuzz.conftest import FUZZ, FUZZ_DECODER
from tests.fuzz.strategies import mqtt_payloads
from tests.mqtt.devices import Device

SERVICE = "fuzz-mqtt"


@FUZZ_DECODER
@given(payload=mqtt_payloads())
def test_the_decoder_raises_only_payload_errors(payload: bytes) -> None:
    try:
        request = decode_request(payload, 1 << 20, "corr")
    except PayloadError as exc:
        assert exc.code and str(exc)
    else:
        assert isinstance(request.tensor, np.ndarray) and request.tensor.dtype != object


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DeviceGateway, Device]]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto binary not installed")
    with Mosquitto(tmp_path_factory.mktemp("fuzz-broker")) as broker:
        gateway = DeviceGateway(argmax_infer(), MqttSettings(port=broker.port, protocol="5", max_in_flight=4096),
                                "default", SERVICE)
        assert gateway.start(10.0)
        try:
            with Device(broker.port, "default", SERVICE, "fuzzer") as device:
                yield gateway, device
        finally:
            gateway.stop()


@pytest.mark.processes
@FUZZ
@given(payload=mqtt_payloads())
def test_a_live_gateway_answers_or_refuses_every_message_and_stays_healthy(live, payload: bytes) -> None:
    gateway, device = live
    device.send(payload, correlation=b"fuzz")
    assert gateway.healthy()


@pytest.mark.processes
def test_after_the_fuzz_every_message_is_accounted_for_and_a_good_request_is_served(live) -> None:
    gateway, device = live
    device.send(encode_frame(np.array([0.0, 1.0], np.float32), "final-good-request"))
    deadline = time.monotonic() + 30
    answer = None
    while time.monotonic() < deadline and answer is None:
        for message in device.collect(device.topics.result("fuzzer"), 1, timeout=1.0):
            body = json.loads(message.payload)
            if body.get("id") == "final-good-request":
                answer = body
    stats = gateway.stats()
    assert answer is not None and answer["ok"] is True
    assert gateway.healthy() and stats["handler_failures"] == 0 and stats["loop_restarts"] == 0
    assert stats["errors"].get("internal", 0) == 0, stats["errors"]
