"""The gateway against a real mosquitto: round trips, response topics, duplicates, bad input, busy."""

from __future__ import annotations

import json
import struct
import threading

import numpy as np
import pytest

from sedna.common.outcome import JointOutcome
from sedna.service.mqtt import encode_frame, encode_image_frame
from sedna.service.mqtt.png import encode_png
from sedna.service.mqtt.testing import argmax_infer
from tests.mqtt.devices import Device

pytestmark = [pytest.mark.mqtt, pytest.mark.processes]


def frame(header: dict[str, object], body: bytes) -> bytes:
    head = json.dumps(header).encode()
    return struct.pack(">I", len(head)) + head + body


class TestRoundTrip:
    def test_binary_frame_is_answered_on_the_device_result_topic(self, start_gateway, device: Device) -> None:
        start_gateway()
        device.send(encode_frame(np.array([[0.1, 0.9, 0.3], [5.0, 1.0, 2.0]], np.float32), "r1"))

        [answer] = device.results(1)

        assert answer["id"] == "r1" and answer["ok"] is True
        assert answer["result"] == [1, 0]
        assert answer["hard_example"] is False and answer["computed_at"] == "edge"
        assert "example_id" not in answer and answer["latency_ms"] >= 0

    def test_json_request_uses_its_dtype(self, start_gateway, device: Device) -> None:
        seen: list[np.ndarray] = []

        def infer(tensor: np.ndarray) -> JointOutcome:
            seen.append(tensor)
            return argmax_infer()(tensor)

        start_gateway(infer)
        device.send(json.dumps({"id": 7, "data": [[1, 2, 9, 4]], "dtype": "INT32"}).encode())

        [answer] = device.results(1)

        assert answer == {**answer, "id": 7, "ok": True, "result": [2]}
        assert seen[0].dtype == np.int32 and seen[0].shape == (1, 4)

    def test_response_topic_and_correlation_data_are_honoured(self, start_gateway, device: Device) -> None:
        start_gateway()
        reply_to = f"{device.topics.base}/replies/me"
        device.send(encode_frame(np.array([3, 1, 2], np.uint8), "c-42"), response_topic=reply_to,
                    correlation=b"\x00corr")

        [message] = device.collect(reply_to, 1)

        assert json.loads(message.payload)["id"] == "c-42"
        assert message.properties.CorrelationData == b"\x00corr"
        assert device.quiet(device.topics.result(device.device_id), 0.3) == []

    def test_correlation_data_is_the_id_when_the_header_has_none(self, start_gateway, device: Device) -> None:
        start_gateway()
        reply_to = f"{device.topics.base}/replies/me"
        device.send(json.dumps({"data": [0, 0, 1]}).encode(), response_topic=reply_to, correlation=b"corr-9")

        [message] = device.collect(reply_to, 1)

        assert json.loads(message.payload)["id"] == "corr-9"

    def test_png_image_is_decoded_to_uint8_pixels(self, start_gateway, device: Device) -> None:
        image = np.zeros((4, 5), np.uint8)
        image[2, 3] = 200
        start_gateway()
        device.send(encode_image_frame(encode_png(image), "img", shape=[1, 20]))

        [answer] = device.results(1)

        assert answer["ok"] is True and answer["result"] == [13]

    def test_hard_example_is_answered_from_the_cloud_and_announced(self, start_gateway, device: Device) -> None:
        start_gateway(argmax_infer(hard_threshold=10.0))
        device.send(encode_frame(np.array([[0.0, 2.0]], np.float32), "h1"))

        [answer] = device.results(1)
        [note] = device.collect(device.topics.hard_examples, 1)

        assert answer["hard_example"] is True and answer["computed_at"] == "cloud" and answer["example_id"] == "ex-1"
        announced = json.loads(note.payload)
        assert {k: announced[k] for k in ("id", "device", "correlation_id", "shape", "dtype")} == {
            "id": "ex-1", "device": "dev1", "correlation_id": "h1", "shape": [1, 2], "dtype": "FP32"}
        assert "data" not in announced and announced["timestamp"]


class TestExactlyOnce:
    def test_the_same_id_from_one_device_is_answered_once(self, start_gateway, device: Device) -> None:
        gateway = start_gateway()
        payload = encode_frame(np.array([1.0, 0.0], np.float32), "dup")
        device.send(payload)
        device.send(payload)

        answers = device.results(1) + device.quiet(device.topics.result(device.device_id), 0.5)

        assert len(answers) == 1 and answers[0]["id"] == "dup"
        assert gateway.stats()["duplicates"] == 1 and gateway.stats()["answered"] == 1

    def test_the_same_id_from_two_devices_is_answered_twice(self, start_gateway, device: Device) -> None:
        start_gateway()
        payload = encode_frame(np.array([1.0, 0.0], np.float32), "same")
        device.send(payload)
        device.send(payload, device_id="dev2")

        assert len(device.results(1)) == 1
        assert len(device.results(1, topic=device.topics.result("dev2"))) == 1


BAD_PAYLOADS = {
    "bad_header": (struct.pack(">I", 5) + b"{nope" + b"\x00" * 4, None, "header"),
    "bad_size": (frame({"id": "s1", "dtype": "FP32", "shape": [2, 2]}, b"\x00" * 12), "s1", "'shape'"),
    "bad_dtype": (frame({"id": "d1", "dtype": "COMPLEX64", "shape": [1]}, b"\x00" * 8), "d1", "'dtype'"),
    "unsupported_content_type": (frame({"id": "t1", "content_type": "image/jpeg"}, b"\xff\xd8"), "t1",
                                 "unsupported content type"),
    "oversize": (frame({"id": "o1", "dtype": "UINT8", "shape": [5000]}, b"\x00" * 5000), None, "payload"),
    "bad_id": (json.dumps({"data": [1]}).encode(), None, "'id'"),
    "bad_data": (json.dumps({"id": "j1", "data": [[1, 2], [3]]}).encode(), "j1", "'data'"),
    "bad_image": (frame({"id": "p1", "content_type": "image/png"}, b"not a png"), "p1", "image/png"),
}


@pytest.mark.parametrize("code", sorted(BAD_PAYLOADS))
def test_bad_payload_gets_an_error_naming_the_field_and_serving_goes_on(start_gateway, device: Device,
                                                                       code: str) -> None:
    payload, request_id, field = BAD_PAYLOADS[code]
    gateway = start_gateway(max_payload_bytes=4096)
    device.send(payload)
    device.send(encode_frame(np.array([0.0, 1.0], np.float32), "after"))

    error, good = device.results(2)

    assert error["ok"] is False and error["code"] == code and field in error["error"]
    assert error.get("id") == request_id
    assert good == {**good, "id": "after", "ok": True, "result": [1]}
    assert gateway.stats()["errors"] == {code: 1}


class TestOverload:
    def test_a_request_beyond_max_in_flight_is_answered_busy_at_once(self, start_gateway, device: Device) -> None:
        release = threading.Event()

        def slow(tensor: np.ndarray) -> JointOutcome:
            release.wait(10)
            return argmax_infer()(tensor)

        start_gateway(slow, workers=1, max_in_flight=1, inline_max_ms=0)
        device.send(encode_frame(np.array([1.0, 0.0], np.float32), "first"))
        device.send(encode_frame(np.array([1.0, 0.0], np.float32), "second"))

        [busy] = device.results(1)
        release.set()
        [first] = device.results(1)

        assert busy["id"] == "second" and busy["code"] == "busy" and "retry" in busy["error"]
        assert first["id"] == "first" and first["ok"] is True

    def test_a_failing_model_is_answered_with_its_error(self, start_gateway, device: Device) -> None:
        def broken(tensor: np.ndarray) -> JointOutcome:
            raise RuntimeError("model file vanished")

        gateway = start_gateway(broken)
        device.send(encode_frame(np.array([1.0], np.float32), "x"))

        [answer] = device.results(1)

        assert answer["code"] == "infer_failed" and "model file vanished" in answer["error"]
        assert gateway.stats()["errors"] == {"infer_failed": 1}


class TestStatusAndMetrics:
    def test_status_is_retained_online_then_offline_after_stop(self, start_gateway, mosquitto, service) -> None:
        gateway = start_gateway()
        with Device(mosquitto.port, "default", service, "watcher") as watcher:
            [online] = watcher.collect(watcher.topics.status, 1)
            gateway.stop()
            [offline] = watcher.collect(watcher.topics.status, 1)

        assert online.retain and json.loads(online.payload)["state"] == "online"
        body = json.loads(offline.payload)
        assert body["state"] == "offline" and body["reason"] == "stopped" and body["since"]

    def test_counters_reach_the_prometheus_registry(self, start_gateway, device: Device, service: str) -> None:
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry()
        start_gateway(registry=registry)
        device.send(encode_frame(np.array([1.0], np.float32), "a"))
        device.send(b"\x00")
        device.results(2)

        labels = {"namespace": "default", "service": service}
        assert registry.get_sample_value("sedna_mqtt_requests_total", labels) == 2
        assert registry.get_sample_value("sedna_mqtt_errors_total", {**labels, "reason": "bad_header"}) == 1
        assert registry.get_sample_value("sedna_mqtt_latency_seconds_count", labels) == 1
