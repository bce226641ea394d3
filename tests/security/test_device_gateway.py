"""Issue 11 item 1: a device's message can fail only its own request (real mosquitto, real gateway).

Each test is an attack a hostile device can mount with nothing but publish rights on its own
request topic; the gateway must answer it with an error, keep serving everyone else, keep its
MQTT session alive and say truthfully whether it is ready.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from sedna.common.outcome import JointOutcome
from sedna.service.mqtt import DeviceGateway, MqttSettings
from sedna.service.mqtt.codec import encode_frame, encode_image_frame
from sedna.service.mqtt.testing import Mosquitto, argmax_infer
from tests.mqtt.devices import Device
from tests.security.conftest import eventually
from tests.support.procs import free_port, running

pytestmark = [pytest.mark.mqtt, pytest.mark.processes]
GOOD = np.array([0.0, 1.0], np.float32)


@pytest.fixture
def service(request: pytest.FixtureRequest) -> str:
    return "sec-" + request.node.name.replace("_", "-").replace("[", "-").replace("]", "")[-40:]


@pytest.fixture
def start(mosquitto: Mosquitto, service: str) -> Iterator[Callable[..., DeviceGateway]]:
    started: list[DeviceGateway] = []

    def make(infer: Callable[[np.ndarray], JointOutcome] | None = None, **settings: object) -> DeviceGateway:
        values: dict[str, object] = {"port": mosquitto.port, "protocol": "5", "worker_name": "w0", **settings}
        gateway = DeviceGateway(infer or argmax_infer(), MqttSettings(**values), "default", service)  # type: ignore[arg-type]
        started.append(gateway)
        assert gateway.start(10.0), f"gateway did not subscribe: {gateway.last_error}"
        return gateway

    yield make
    for gateway in started:
        gateway.stop()


@pytest.fixture
def device(mosquitto: Mosquitto, service: str) -> Iterator[Device]:
    with Device(mosquitto.port, "default", service, "mallory") as dev:
        yield dev


def by_id(answers: list[dict]) -> dict:
    return {answer.get("id"): answer for answer in answers}


def test_overflowing_numbers_and_json_200000_deep_fail_only_their_own_request(start, device: Device) -> None:
    gateway = start()
    device.send(json.dumps({"id": "huge", "data": [[10**30, 1]], "dtype": "INT64"}).encode())
    device.send(json.dumps({"id": "int8", "data": [[300, 1]], "dtype": "INT8"}).encode())
    device.send(b'{"id": "deep", "data": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")
    device.send(encode_frame(GOOD, "good"))

    answers = by_id(device.results(4, timeout=15))

    assert answers["huge"]["ok"] is False and answers["huge"]["code"] == "bad_data"
    assert "integer overflow" in answers["huge"]["error"] and "data" in answers["huge"]["error"]
    assert answers["int8"]["code"] == "bad_data" and "300 is out of the range of INT8" in answers["int8"]["error"]
    assert answers["deep"]["code"] == "bad_data" and "nested deeper than 32 levels" in answers["deep"]["error"]
    assert answers["good"] == {**answers["good"], "ok": True, "result": [1]}
    assert gateway.healthy()


def test_a_poison_message_is_acked_once_and_not_redelivered_after_a_restart(start, device: Device) -> None:
    first = start()
    device.send(json.dumps({"id": "poison", "data": [[10**30]], "dtype": "INT64"}).encode())
    [answer] = device.results(1, timeout=10)
    first.stop()

    second = start()  # same client id and persistent session: un-acked messages would come back now

    assert answer["id"] == "poison" and answer["code"] == "bad_data"
    assert device.quiet(device.topics.result("mallory"), 1.5) == []
    assert second.stats()["requests"] == 0 and second.healthy()


def test_a_slow_request_never_stalls_the_keepalive(start, mosquitto: Mosquitto, service: str) -> None:
    def slow(tensor: np.ndarray) -> JointOutcome:
        time.sleep(3.5)
        return argmax_infer()(tensor)

    gateway = start(slow, keepalive=1, workers=1)
    with Device(mosquitto.port, "default", service, "slowpoke") as dev:
        dev.collect(dev.topics.status, 1, timeout=2)  # the retained "online"
        dev.send(encode_frame(GOOD, "slow"))

        statuses = dev.collect(dev.topics.status, 10, timeout=3.0)  # a stalled loop misses 2 keepalives here
        [answer] = dev.results(1, timeout=5)

    assert [json.loads(m.payload)["state"] for m in statuses] == [], "the broker declared the gateway dead"
    assert answer["id"] == "slow" and answer["ok"] is True and gateway.healthy()


def test_a_small_png_declaring_4000x4000_pixels_is_refused_in_milliseconds(start, device: Device) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4000, 4000)).save(buffer, "PNG")
    png = buffer.getvalue()
    gateway = start()

    sent = time.monotonic()
    device.send(encode_image_frame(png, "bomb"))
    [answer] = device.results(1, timeout=10)
    took = time.monotonic() - sent
    device.send(encode_frame(GOOD, "after"))
    [after] = device.results(1, timeout=10)

    assert len(png) < 100_000
    assert answer["code"] == "too_large" and "4000x4000 pixels exceeds the limit" in answer["error"]
    assert took < 1.0, f"refusing the image took {took:.2f}s"
    assert after["ok"] is True and gateway.healthy()


@pytest.mark.parametrize("target", ["victim", "other-namespace", "status", "hard-examples", "wildcard"])
def test_answers_never_go_to_a_topic_the_device_does_not_own(start, mosquitto: Mosquitto, device: Device,
                                                             service: str, target: str) -> None:
    base = device.topics.base
    topic = {"victim": f"{base}/result/alice", "other-namespace": f"sedna/other/{service}/result/mallory",
             "status": f"{base}/status", "hard-examples": f"{base}/hard_examples",
             "wildcard": f"{base}/response/mallory/#"}[target]
    gateway = start()
    with Device(mosquitto.port, "default", service, "watcher", subscribe="sedna/#") as watcher:
        watcher.quiet(f"{base}/status", 0.5)  # drain the retained status
        device.send(encode_frame(GOOD, "hijack"), response_topic=topic, correlation=b"c-1")

        [answer] = device.results(1, timeout=10)
        leaked = [m.topic for m in watcher.quiet(topic, 1.0)]

    assert answer["code"] == "forbidden_response_topic" and answer["id"] == "hijack"
    assert topic in answer["error"] and f"{base}/response/mallory" in answer["error"]
    assert leaked == [] and gateway.healthy()


def test_an_owned_response_topic_is_still_served(start, device: Device) -> None:
    start()
    own = f"{device.topics.response('mallory')}/inbox"
    device.send(encode_frame(GOOD, "mine"), response_topic=own, correlation=b"c-2")

    [message] = device.collect(own, 1, timeout=10)

    assert json.loads(message.payload)["ok"] is True and message.properties.CorrelationData == b"c-2"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the killed loop's exception
def test_a_dead_network_loop_shows_in_readiness_and_is_restarted(start, device: Device) -> None:
    gateway = start(watchdog_interval=2.0)

    def boom(*args: object) -> None:
        raise RuntimeError("a bug in a callback")

    gateway._client.on_message = boom  # what any exception escaping a paho callback does: the loop ends
    device.send(encode_frame(GOOD, "lost"))

    assert eventually(lambda: not gateway.healthy(), timeout=5), "readiness still says healthy"
    assert eventually(gateway.healthy, timeout=15), "the watchdog did not restart the loop"
    device.send(encode_frame(GOOD, "back"))
    answers = by_id(device.results(2, timeout=10))
    assert answers["back"]["ok"] is True and gateway.stats()["loop_restarts"] == 1


def test_the_edge_workers_readiness_follows_its_mqtt_gateway(digits_models, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker")
    rest, grpc = free_port(), free_port()
    env = {"NAMESPACE": "default", "SERVICE_NAME": "ready-check", "WORKER_NAME": "edge-0", "LOG_LEVEL": "WARNING",
           "MODEL_URL": str(digits_models["edge"]), "BIG_MODEL_IP": "127.0.0.1",
           "BIG_MODEL_GRPC_PORT": str(free_port()),
           "EDGE_BIND_PORT": str(rest), "EDGE_GRPC_PORT": str(grpc), "INTRA_OP_THREADS": "1",
           "STATE_DIR": str(tmp_path / "state"), "MQTT_BROKER": broker.address}
    broker.start()
    try:
        with running("workers.joint_inference.edge", env, tmp_path / "edge.log", port=rest):
            def ready() -> int:
                return httpx.get(f"http://127.0.0.1:{rest}/v2/health/ready", timeout=5, trust_env=False).status_code

            assert eventually(lambda: ready() == 200, timeout=20), "never ready with the broker up"
            broker.stop()
            assert eventually(lambda: ready() == 503, timeout=20), "still ready with the broker gone"
            broker.start()
            assert eventually(lambda: ready() == 200, timeout=40), "not ready again after the broker came back"
    finally:
        broker.stop()
