"""The embedded amqtt broker: a paho round trip, the gateway over it (MQTT 3.1.1), and its runnable form."""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest

from sedna.service.mqtt import DeviceGateway, EmbeddedBroker, MqttSettings, encode_frame
from sedna.service.mqtt.testing import argmax_infer
from tests.support.procs import free_port, running


def connect_311(port: int, client_id: str, inbox: queue.Queue) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    subscribed: queue.Queue[int] = queue.Queue()
    client.on_subscribe = lambda c, u, mid, codes, p: subscribed.put(mid)
    client.on_message = lambda c, u, m: inbox.put((m.topic, m.payload))
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe("sedna/#", qos=1)
    subscribed.get(timeout=10)
    return client


def test_paho_publish_reaches_a_paho_subscriber() -> None:
    inbox: queue.Queue = queue.Queue()
    with EmbeddedBroker(port=0) as broker:
        client = connect_311(broker.port, "rt", inbox)
        client.publish("sedna/x/y", b"hello", qos=1)
        topic, payload = inbox.get(timeout=10)
        client.disconnect()
        client.loop_stop()

    assert broker.host == "127.0.0.1" and broker.port > 0
    assert (topic, payload) == ("sedna/x/y", b"hello")


def test_gateway_falls_back_to_mqtt_311_and_answers_on_the_result_topic() -> None:
    inbox: queue.Queue = queue.Queue()
    with EmbeddedBroker(port=0) as broker:
        gateway = DeviceGateway(argmax_infer(), MqttSettings(port=broker.port), "default", "emb")
        try:
            assert gateway.start(10.0)
            client = connect_311(broker.port, "dev-emb", inbox)
            client.publish("sedna/default/emb/request/d9", encode_frame(np.array([0.0, 0.0, 4.0], np.float32), "q"), 1)
            deadline, answer = time.monotonic() + 10, None
            while answer is None and time.monotonic() < deadline:
                topic, payload = inbox.get(timeout=10)
                if topic == "sedna/default/emb/result/d9":
                    answer = json.loads(payload)
            client.disconnect()
            client.loop_stop()
        finally:
            gateway.stop()

    assert gateway.protocol == "3.1.1"
    assert answer is not None and answer["id"] == "q" and answer["result"] == [2]


@pytest.mark.processes
def test_module_form_serves_on_the_given_port(tmp_path: Path) -> None:
    port = free_port()
    inbox: queue.Queue = queue.Queue()
    with running("sedna.service.mqtt.broker", {}, tmp_path / "broker.log", port=port, args=["--port", str(port)]):
        client = connect_311(port, "mod", inbox)
        client.publish("sedna/a", b"1", qos=1)
        assert inbox.get(timeout=10) == ("sedna/a", b"1")
        client.disconnect()
        client.loop_stop()
