"""Building paho-mqtt 2.x clients the same way for the gateway, devices and adapters.

One function turns :class:`~sedna.service.mqtt.settings.MqttSettings` into a
configured ``paho.mqtt.client.Client`` (callback API version 2): protocol, a
persistent session (MQTT 5 ``clean_start=False`` with a session expiry interval, or
3.1.1 ``clean_session=False``), user name and password, TLS with a CA and optional
client certificate, and the reconnect back-off. paho is imported here, inside the
functions, so ``import sedna`` stays cheap.
"""

from __future__ import annotations

import binascii
import contextlib
from typing import Any

from sedna.service.mqtt.settings import MqttSettings

UNSUPPORTED_PROTOCOL = (1, 132)
"""CONNACK codes meaning "this broker does not speak that MQTT version" (3.1.1 and 5 spellings)."""


def new_client(settings: MqttSettings, client_id: str, protocol: str, *, persistent: bool = True) -> Any:
    """A configured, not yet connected client; ``protocol`` is ``"5"`` or ``"3.1.1"``."""
    import paho.mqtt.client as mqtt

    version = mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311
    kwargs: dict[str, Any] = {} if version == mqtt.MQTTv5 else {"clean_session": not persistent}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version, **kwargs)
    if settings.username:
        client.username_pw_set(settings.username, settings.password or None)
    if settings.tls_ca:
        client.tls_set_context(_tls_context(settings))
        client.tls_insecure_set(False)
    client.reconnect_delay_set(settings.reconnect_min_delay, settings.reconnect_max_delay)
    client.max_inflight_messages_set(1000)
    client.on_socket_open = _no_delay
    return client


def _tls_context(settings: MqttSettings) -> Any:
    """What paho's ``tls_set`` builds (TLS client, certificate and host name verified), minus its socket leak.

    paho 2.x drops the TLS socket unclosed when the handshake fails (a broker certificate from
    another CA, say), so every retry leaked a socket until garbage collection; this context's
    sockets close themselves when their handshake fails.
    """
    import ssl

    class ClosingSSLSocket(ssl.SSLSocket):
        def do_handshake(self, block: bool = False) -> None:
            try:
                super().do_handshake(block)
            except BaseException:
                self.close()
                raise

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if settings.tls_cert:
        context.load_cert_chain(settings.tls_cert, settings.tls_key or None)
    context.load_verify_locations(settings.tls_ca)
    context.sslsocket_class = ClosingSSLSocket
    return context


def _no_delay(client: Any, userdata: Any, sock: Any) -> None:
    """Disable Nagle: small MQTT packets (PUBACKs, answers) would otherwise wait for delayed ACKs (~40 ms)."""
    import socket

    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def connect(client: Any, settings: MqttSettings, protocol: str, *, persistent: bool = True) -> None:
    """Start connecting in the background (retrying with back-off) and run the network loop thread."""
    import paho.mqtt.client as mqtt

    properties = None
    clean_start: Any = mqtt.MQTT_CLEAN_START_FIRST_ONLY
    if protocol == "5":
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.CONNECT)
        if persistent:
            properties.SessionExpiryInterval = settings.session_expiry
        clean_start = not persistent
    client.connect_async(settings.host, settings.port, keepalive=settings.keepalive, clean_start=clean_start,
                         properties=properties)
    client.loop_start()


class PublishProperties:
    """MQTT 5 PUBLISH properties (response topic, correlation data), encoded once.

    paho only calls ``pack()`` on the properties it is given; its own ``Properties``
    class validates every attribute through a list comprehension over all property
    names and costs more than the rest of an answer's encoding (``bench.mqtt``), so
    the two properties devices and the gateway use are written here, byte for byte
    as ``Properties.pack()`` writes them (a test compares both).
    """

    __slots__ = ("_packed", "correlation", "response_topic")

    def __init__(self, response_topic: str | None = None, correlation: bytes | None = None) -> None:
        self.response_topic = response_topic
        self.correlation = correlation
        body = b""
        if response_topic is not None:
            topic = response_topic.encode("utf-8")
            body += b"\x08" + len(topic).to_bytes(2, "big") + topic
        if correlation is not None:
            body += b"\x09" + len(correlation).to_bytes(2, "big") + correlation
        self._packed = _variable_byte_integer(len(body)) + body

    def pack(self) -> bytes:
        """The properties as they go on the wire (length prefix included)."""
        return self._packed

    def __repr__(self) -> str:
        return f"PublishProperties(response_topic={self.response_topic!r}, correlation={self.correlation!r})"


def _variable_byte_integer(value: int) -> bytes:
    out = bytearray()
    while True:
        value, digit = divmod(value, 128)
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


def publish_properties(protocol: str, *, response_topic: str | None = None,
                       correlation: bytes | None = None) -> PublishProperties | None:
    """MQTT 5 PUBLISH properties (response topic, correlation data), ``None`` for 3.1.1 or when empty."""
    if protocol != "5" or (response_topic is None and correlation is None):
        return None
    return PublishProperties(response_topic, correlation)


def correlation_text(data: bytes | None) -> str | None:
    """Correlation data as a request id: its UTF-8 text, else its hex digits."""
    if not data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return binascii.hexlify(data).decode()


BAD_CREDENTIALS = (4, 5, 134, 135)
"""CONNACK codes for refused credentials: 3.1.1 "bad user name or password", "not authorized"; the same in 5."""


def describe_refusal(reason_code: Any, settings: MqttSettings) -> str:
    """Why the broker refused a CONNECT, and what to check."""
    where = f"MQTT broker {settings.host}:{settings.port}"
    if reason_value(reason_code) in BAD_CREDENTIALS:
        who = f"user {settings.username!r}" if settings.username else "anonymous clients"
        return (f"{where} refused {who}: {reason_code} (check MQTT_USERNAME and MQTT_PASSWORD, "
                "and the broker's password file and ACL)")
    return f"{where} refused the connection: {reason_code}"


def describe_failure(exc: BaseException | None, settings: MqttSettings) -> str:
    """Why a TCP or TLS connection to the broker failed, and what to check."""
    import ssl

    where = f"MQTT broker {settings.host}:{settings.port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"TLS: the certificate of {where} does not verify against MQTT_TLS_CA={settings.tls_ca!r}: "
                f"{exc.verify_message or exc} (use the CA that signed the broker's certificate)")
    if isinstance(exc, ssl.SSLError):
        hint = "" if settings.tls_ca else " (is it a TLS listener? then set MQTT_TLS_CA)"
        return f"TLS handshake with {where} failed: {exc}{hint}"
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing listens on {where} (check MQTT_BROKER)"
    if exc is None:
        return f"cannot connect to {where}"
    return f"cannot connect to {where}: {type(exc).__name__}: {exc}"


def reason_value(reason_code: Any) -> int:
    """The integer of a paho ``ReasonCode`` (or a plain int)."""
    return int(getattr(reason_code, "value", reason_code))


def detect_protocol(settings: MqttSettings, timeout: float = 5.0, failures: list[str] | None = None) -> str | None:
    """Ask the broker which MQTT version it speaks: ``"5"``, ``"3.1.1"``, or ``None`` if unreachable.

    When unreachable, :func:`describe_failure` of the error is appended to ``failures``.

    A bare MQTT 5 CONNECT (no will, no properties) is answered "unsupported protocol
    version" by 3.1.1-only brokers such as amqtt, which would hang on a full one.
    """
    import os
    import time

    import paho.mqtt.client as mqtt

    answer: list[int] = []
    probe = new_client(settings, f"sedna-probe-{os.getpid()}-{time.monotonic_ns() % 10**9}", "5", persistent=False)
    probe.on_connect = lambda client, userdata, flags, reason_code, properties: answer.append(reason_value(reason_code))
    try:
        probe.connect(settings.host, settings.port, keepalive=max(5, int(timeout) + 1), clean_start=True)
    except (OSError, ValueError) as exc:
        if failures is not None:
            failures.append(describe_failure(exc, settings))
        return None
    deadline = time.monotonic() + timeout
    try:
        while not answer and time.monotonic() < deadline:
            if probe.loop(timeout=0.1) not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
                break
    finally:
        probe.disconnect()
        probe.loop(timeout=0.05)
    if not answer:
        return None
    return "3.1.1" if answer[0] in UNSUPPORTED_PROTOCOL else "5"
