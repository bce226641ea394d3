"""Connection settings and topic names of the MQTT device gateway.

:class:`MqttSettings` is data that is passed in (STYLE §2.11): the edge worker builds
it once with :meth:`MqttSettings.from_config` from the worker contract
(``MQTT_BROKER=host:port``, ``MQTT_USERNAME``, ``MQTT_PASSWORD``, ``MQTT_TLS_CA``,
``MQTT_KUBEEDGE_DEVICES``, ``MQTT_KUBEEDGE_PROPERTIES``, ``MQTT_KUBEEDGE_DTYPE``) and
hands it to :class:`~sedna.service.mqtt.gateway.DeviceGateway`; the device simulator
and the benchmark build it directly. :class:`Topics` is the one place that spells
the topic layout ``sedna/{namespace}/{service}/...``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sedna.common.errors import ConfigError

if TYPE_CHECKING:
    from sedna.common.config import WorkerConfig

Protocol = Literal["5", "3.1.1", "auto"]
_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")


def parse_broker(address: str, field_name: str = "MQTT_BROKER") -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` too); the error names ``field_name`` and the value."""
    text = address.strip()
    if text.startswith("mqtt://") or text.startswith("tcp://"):
        text = text.split("://", 1)[1]
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{field_name}={address!r} is not a broker address (expected host:port, e.g. 127.0.0.1:1883)")
    return host, int(port_text)


def parse_flag(value: str, field_name: str) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off; empty is false); the error names ``field_name``."""
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise ConfigError(f"{field_name}={value!r} is not a boolean (use true or false)")


def check_name(value: str, field_name: str) -> str:
    """A topic level must not be empty nor contain ``/``, ``+``, ``#`` or spaces."""
    if not value or not _NAME.match(value):
        raise ConfigError(f"{field_name}={value!r} cannot be used in an MQTT topic "
                          "(use letters, digits, '-', '_', '.', ':')")
    return value


@dataclass(frozen=True)
class MqttSettings:
    """How to reach the broker and how the gateway behaves."""

    host: str = "127.0.0.1"
    """Broker host name or address."""
    port: int = 1883
    """Broker TCP port."""
    username: str = ""
    """User name for the broker's password check; empty sends none."""
    password: str = ""
    """Password sent with ``username``."""
    tls_ca: str = ""
    """CA bundle file; when set the connection uses TLS and verifies the broker against it."""
    tls_cert: str = ""
    """Client certificate file for mutual TLS (optional, needs ``tls_key``)."""
    tls_key: str = ""
    """Private key file of ``tls_cert``."""
    protocol: Protocol = "auto"
    """``5``, ``3.1.1`` or ``auto`` (MQTT 5, falling back to 3.1.1 when the broker refuses 5,
    as the embedded amqtt broker does; 3.1.1 has no response topic nor correlation data)."""
    worker_name: str = ""
    """Part of the stable client id, so two replicas of one service keep separate sessions."""
    client_id: str = ""
    """Explicit client id; empty derives ``sedna-gw-<namespace>-<service>-<worker>``."""
    keepalive: int = 30
    """Seconds between keep-alive pings; the Last Will fires after 1.5x this without traffic."""
    session_expiry: int = 3600
    """Seconds the broker keeps the persistent session (subscription, queued requests) offline."""
    qos: int = 1
    """QoS of the subscription and of every message the gateway publishes."""
    workers: int = 2
    """Threads that decode requests, run inference and publish answers (never paho's network thread)."""
    max_in_flight: int = 64
    """Requests accepted but not yet answered (queued or running); beyond this a request is answered ``busy``."""
    max_payload_bytes: int = 8 * 1024 * 1024
    """Largest request accepted; a larger one is answered ``oversize``."""
    max_elements: int = 1 << 22
    """Most tensor elements in one request (JSON numbers, a frame's shape, an image's values); beyond: ``too_large``."""
    max_image_pixels: int = 2048 * 2048
    """Most pixels (width x height) of an image, read from its header before decoding; beyond: ``too_large``."""
    watchdog_interval: float = 1.0
    """Seconds between checks that paho's network loop runs; a dead loop is replaced by a new connection."""
    dedup_ttl: float = 600.0
    """Seconds a (device, correlation id) pair is remembered to drop QoS 1 re-deliveries."""
    dedup_size: int = 100_000
    """Most pairs remembered; the oldest are forgotten first."""
    reconnect_min_delay: float = 0.5
    """First back-off delay after a lost connection, doubled up to ``reconnect_max_delay``."""
    reconnect_max_delay: float = 30.0
    """Longest back-off delay between reconnect attempts."""
    connect_timeout: float = 10.0
    """How long :meth:`DeviceGateway.start` waits for the first subscription."""
    kubeedge_devices: bool = False
    """Also serve KubeEdge-managed devices: subscribe to the mapper topics
    ``$ke/events/device/+/data/update`` and ``$hw/events/device/+/twin/update``
    (env ``MQTT_KUBEEDGE_DEVICES=true``; see :mod:`sedna.service.mqtt.kubeedge`)."""
    kubeedge_properties: tuple[str, ...] = ()
    """The device properties that form the input: one property holding a number or a JSON list,
    or several numeric ones in this order (env ``MQTT_KUBEEDGE_PROPERTIES=a,b,c``)."""
    kubeedge_dtype: str = "FP32"
    """The dtype of the input built from KubeEdge values (env ``MQTT_KUBEEDGE_DTYPE``)."""

    def __post_init__(self) -> None:
        if self.qos not in (0, 1, 2):
            raise ConfigError(f"MqttSettings.qos={self.qos!r} must be 0, 1 or 2")
        if self.protocol not in ("5", "3.1.1", "auto"):
            raise ConfigError(f"MqttSettings.protocol={self.protocol!r} must be '5', '3.1.1' or 'auto'")
        if self.workers < 1 or self.max_in_flight < self.workers:
            raise ConfigError(
                f"MqttSettings.workers={self.workers!r} must be >= 1 "
                f"and max_in_flight={self.max_in_flight!r} >= workers"
            )
        for name in ("max_payload_bytes", "max_elements", "max_image_pixels"):
            if getattr(self, name) < 1:
                raise ConfigError(f"MqttSettings.{name}={getattr(self, name)!r} must be >= 1")
        if not self.watchdog_interval > 0:
            raise ConfigError(f"MqttSettings.watchdog_interval={self.watchdog_interval!r} must be > 0")
        if self.kubeedge_devices and not self.kubeedge_properties:
            raise ConfigError("MQTT_KUBEEDGE_DEVICES is on but MQTT_KUBEEDGE_PROPERTIES is empty: name the device "
                              "properties that form the input (one holding a JSON list, or several numbers: a,b,c)")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("MqttSettings.tls_cert and tls_key must be given together "
                              "(client certificate and its key)")

    @classmethod
    def from_config(cls, config: WorkerConfig, **overrides: object) -> MqttSettings:
        """Settings from the worker contract; ``MQTT_BROKER`` must be set (``host:port``)."""
        if not config.mqtt_broker:
            raise ConfigError("MQTT_BROKER is empty: set it to host:port of the broker devices use")
        host, port = parse_broker(config.mqtt_broker)
        env = config.environ
        values: dict[str, object] = {
            "host": host, "port": port, "username": config.mqtt_username, "password": config.mqtt_password,
            "tls_ca": config.mqtt_tls_ca, "worker_name": config.worker_name,
            "kubeedge_devices": parse_flag(env.get("MQTT_KUBEEDGE_DEVICES", ""), "MQTT_KUBEEDGE_DEVICES"),
            "kubeedge_properties": tuple(p.strip() for p in env.get("MQTT_KUBEEDGE_PROPERTIES", "").split(",")
                                         if p.strip()),
            "kubeedge_dtype": env.get("MQTT_KUBEEDGE_DTYPE", "") or "FP32",
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def gateway_client_id(self, namespace: str, service: str) -> str:
        """The stable client id of a gateway (MQTT 3.1.1 brokers may cap ids at 23 chars: hashed beyond)."""
        if self.client_id:
            return self.client_id
        raw = "-".join(part for part in ("sedna-gw", namespace, service, self.worker_name) if part)
        if len(raw) <= 64:
            return raw
        return "sedna-gw-" + hashlib.sha256(raw.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Topics:
    """The topics of one inference service: ``sedna/{namespace}/{service}/...``."""

    namespace: str
    service: str

    def __post_init__(self) -> None:
        check_name(self.namespace, "namespace")
        check_name(self.service, "service")

    @property
    def base(self) -> str:
        return f"sedna/{self.namespace}/{self.service}"

    @property
    def request_filter(self) -> str:
        """What the gateway subscribes to: every device's requests."""
        return f"{self.base}/request/+"

    def request(self, device_id: str) -> str:
        return f"{self.base}/request/{device_id}"

    def result(self, device_id: str) -> str:
        return f"{self.base}/result/{device_id}"

    @property
    def status(self) -> str:
        """Retained ``{"state": "online"|"offline", ...}``; the Last Will sets ``offline``."""
        return f"{self.base}/status"

    @property
    def hard_examples(self) -> str:
        """One announcement per hard example (metadata only, never the tensor)."""
        return f"{self.base}/hard_examples"

    def device_of(self, topic: str) -> str:
        """The device id of a request topic (its last level)."""
        return topic.rsplit("/", 1)[-1]

    def response(self, device_id: str) -> str:
        """The MQTT 5 response topic a device of this service may name (it or a topic under it)."""
        return f"{self.base}/response/{device_id}"

    def owned_by(self, device_id: str, topic: str) -> bool:
        """Whether ``device_id`` may have its answers sent to ``topic``: its result or response topic, or under them.

        Never another device's topics, another service's or namespace's, the status or
        hard-example topics, nor anything with wildcards or empty levels.
        """
        if not any(topic == own or topic.startswith(own + "/")
                   for own in (self.result(device_id), self.response(device_id))):
            return False
        return not any(ch in topic for ch in "+#\0") and "//" not in topic and not topic.endswith("/")
