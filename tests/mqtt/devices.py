"""A test device: a paho MQTT 5 client that publishes requests and collects what comes back."""

from __future__ import annotations

import json
import queue
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sedna.service.mqtt.settings import Topics


class Device:
    """Publishes to ``sedna/{ns}/{service}/request/{device_id}``; every message under the service lands in a queue."""

    def __init__(self, port: int, namespace: str, service: str, device_id: str = "dev1", *,
                 client_id: str | None = None, persistent: bool = False, subscribe: str | None = None) -> None:
        self.topics = Topics(namespace, service)
        self.device_id = device_id
        self.port = port
        self.messages: queue.Queue[Any] = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"test-{device_id}",
                                  protocol=mqtt.MQTTv5)
        self.client.reconnect_delay_set(0.2, 1.0)
        self._persistent = persistent
        self._filter = subscribe or f"{self.topics.base}/#"
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(self._filter, qos=1)
        self.client.on_message = lambda c, u, m: self.messages.put(m)

    def __enter__(self) -> Device:
        props = Properties(PacketTypes.CONNECT)
        if self._persistent:
            props.SessionExpiryInterval = 3600
        subscribed = queue.Queue[int]()
        self.client.on_subscribe = lambda c, u, mid, codes, p: subscribed.put(mid)
        self.client.connect("127.0.0.1", self.port, clean_start=not self._persistent, properties=props)
        self.client.loop_start()
        subscribed.get(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def send(self, payload: bytes, *, response_topic: str | None = None, correlation: bytes | None = None,
             device_id: str | None = None) -> None:
        props = None
        if response_topic or correlation:
            props = Properties(PacketTypes.PUBLISH)
            if response_topic:
                props.ResponseTopic = response_topic
            if correlation:
                props.CorrelationData = correlation
        self.client.publish(self.topics.request(device_id or self.device_id), payload, qos=1, properties=props)

    def collect(self, topic: str, count: int, timeout: float = 10.0) -> list[Any]:
        """The next ``count`` messages on ``topic`` (others are dropped), within ``timeout``."""
        found: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(found) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                message = self.messages.get(timeout=remaining)
            except queue.Empty:
                break
            if message.topic == topic:
                found.append(message)
        return found

    def results(self, count: int, timeout: float = 10.0, topic: str | None = None) -> list[dict[str, Any]]:
        """The next ``count`` JSON answers on this device's result topic (or ``topic``)."""
        messages = self.collect(topic or self.topics.result(self.device_id), count, timeout)
        return [json.loads(m.payload) for m in messages]

    def quiet(self, topic: str, seconds: float) -> list[Any]:
        """Messages on ``topic`` within ``seconds`` (to prove that nothing more arrives)."""
        return self.collect(topic, 10**6, seconds)
