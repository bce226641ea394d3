"""The MQTT device gateway: devices publish requests, the edge worker answers them.

Topics (see :class:`~sedna.service.mqtt.settings.Topics`), for service ``S`` in namespace ``N``:

* ``sedna/N/S/request/{device}``: requests (binary frame or JSON, :mod:`.codec`), QoS 1.
* ``sedna/N/S/result/{device}``: answers, unless the request carries an MQTT 5 response
  topic; then the answer goes there, with the request's correlation data echoed.
* ``sedna/N/S/status``: retained ``{"state": "online"|"offline", "since", ...}``; the Last
  Will (retained) says ``offline`` when the gateway dies without a goodbye.
* ``sedna/N/S/hard_examples``: one announcement per hard example (metadata, no tensor).
* with ``kubeedge_devices``: the KubeEdge mapper topics ``$ke/events/device/+/data/update``
  and ``$hw/events/device/+/twin/update``, answered on ``sedna/N/S/result/{device}``
  (:mod:`.kubeedge`).

The gateway keeps a persistent session under a stable client id, so requests sent
while it or the broker was away are delivered when it is back; paho reconnects with
back-off, and every (re)connect resubscribes and republishes ``online``. Each (device, id)
pair is answered exactly once (:mod:`.dedup`).

A device's message can fail only its own request (DESIGN §7). paho's network thread only
hands each message to :mod:`.dispatch` and returns, so paho acks it once; decoding
(bounded: :mod:`.codec`), inference and publishing run on worker threads, and every
exception there becomes an ``{"ok": false, "code", "error"}`` answer to that request (the
model's internals stay in the log). Beyond ``max_in_flight`` accepted messages a request is
answered ``busy`` at once. An MQTT 5 response topic is used only when the device owns it
(``.../result/{device}`` or ``.../response/{device}``, or a topic under them); any other
is refused as ``forbidden_response_topic`` on the device's own result topic. A watchdog
replaces a dead network loop with a new connection, and :meth:`DeviceGateway.healthy` (the
edge worker's readiness) says whether the loop runs and is subscribed.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, NamedTuple

import numpy as np

from sedna.common.errors import ConfigError, InvalidInputError
from sedna.common.log import get_logger
from sedna.common.outcome import JointOutcome
from sedna.service.mqtt import connection, kubeedge
from sedna.service.mqtt.codec import (
    Limits,
    PayloadError,
    Request,
    RequestId,
    decode_request,
    error_payload,
    peek_id,
    result_payload,
)
from sedna.service.mqtt.dedup import SeenCache
from sedna.service.mqtt.dispatch import Dispatcher
from sedna.service.mqtt.metrics import GatewayMetrics
from sedna.service.mqtt.settings import MqttSettings, Topics

log = get_logger(__name__)
InferFn = Callable[[np.ndarray], JointOutcome]


def utc_now() -> str:
    """The current time as ISO 8601 UTC, as status and announcements carry it."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Reply(NamedTuple):
    """Where the answer to one request goes (``forbidden``: a response topic the device may not use)."""

    topic: str
    device: str
    correlation: bytes | None = None
    forbidden: str | None = None


class DeviceGateway:
    """Serve ``infer`` to MQTT devices of ``service`` in ``namespace``; see the module docstring for topics."""

    def __init__(self, infer: InferFn, settings: MqttSettings, namespace: str, service: str, *,
                 registry: Any | None = None) -> None:
        self.settings = settings
        self.topics = Topics(namespace, service)
        self.client_id = settings.gateway_client_id(namespace, service)
        self.metrics = GatewayMetrics(namespace, service, registry)
        self._infer = infer
        self._protocol = "3.1.1" if settings.protocol == "3.1.1" else "5"
        self._seen = SeenCache(settings.dedup_ttl, settings.dedup_size)
        self._limits = Limits(settings.max_payload_bytes, settings.max_elements, settings.max_image_pixels)
        self._dispatcher: Dispatcher | None = None
        self._watchdog: threading.Thread | None = None
        self._wake = threading.Event()
        self.loop_restarts = 0
        """How often the watchdog replaced a dead network loop."""
        self._kubeedge: kubeedge.KubeEdgeDecoder | None = None
        if settings.kubeedge_devices:
            try:
                self._kubeedge = kubeedge.KubeEdgeDecoder(settings.kubeedge_properties, settings.kubeedge_dtype,
                                                          settings.max_payload_bytes)
            except PayloadError as exc:
                raise ConfigError(f"MQTT_KUBEEDGE_DTYPE: {exc}") from None
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._ready = threading.Event()
        self._stopping = False
        self.last_error: str | None = None
        """Why the last connection attempt failed (refused credentials, TLS, unreachable), until one succeeds."""

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def protocol(self) -> str:
        """The MQTT version in use: ``"5"``, or ``"3.1.1"`` after falling back (or when configured)."""
        return self._protocol

    @property
    def connected(self) -> bool:
        """Whether the gateway is connected and subscribed."""
        return self._ready.is_set()

    def healthy(self) -> bool:
        """Whether devices are served: connected, subscribed, the network loop and the workers running."""
        with self._client_lock:
            client = self._client
        dispatcher = self._dispatcher
        return (self._ready.is_set() and client is not None and connection.loop_alive(client)
                and dispatcher is not None and dispatcher.alive())

    def start(self, timeout: float | None = None) -> bool:
        """Connect in the background; wait up to ``timeout`` (default ``connect_timeout``) until subscribed.

        Returns whether it is serving; when not, it keeps retrying with back-off.
        """
        if self._dispatcher is not None:
            raise RuntimeError("DeviceGateway.start() called twice")
        self._stopping = False
        self._dispatcher = Dispatcher(self.settings.workers, self.settings.max_in_flight,
                                      f"mqtt-infer-{self.topics.service}")
        self._dispatcher.start()
        self._wake.clear()
        self._watchdog = threading.Thread(target=self._watch_loop, name="mqtt-watchdog", daemon=True)
        self._watchdog.start()
        if self.settings.protocol == "auto":
            threading.Thread(target=self._detect_then_connect, name="mqtt-protocol-probe", daemon=True).start()
        else:
            self._connect()
        ready = self._ready.wait(self.settings.connect_timeout if timeout is None else timeout)
        if not ready:
            log.warning("MQTT gateway %s not connected to %s:%s yet (%s); retrying in the background",
                        self.client_id, self.settings.host, self.settings.port, self.last_error or "no answer yet")
        return ready

    def wait_ready(self, timeout: float) -> bool:
        """Block until connected and subscribed (after a start or a reconnect)."""
        return self._ready.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Answer what is in flight, publish ``offline`` (retained), disconnect cleanly (no Last Will)."""
        if self._dispatcher is None:
            return
        self._stopping = True
        self._wake.set()
        self._dispatcher.stop(timeout)
        self._dispatcher = None
        if self._watchdog is not None:
            self._watchdog.join(timeout)
            self._watchdog = None
        with self._client_lock:
            client, self._client = self._client, None
        if client is None:
            return
        if self._ready.is_set():
            info = client.publish(self.topics.status, self._status("offline", utc_now(), reason="stopped"),
                                  qos=self.settings.qos, retain=True)
            if info.rc == 0:
                info.wait_for_publish(timeout)
        client.disconnect()
        client.loop_stop()
        self._ready.clear()

    def __enter__(self) -> DeviceGateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> dict[str, Any]:
        """Counters (requests, answered, errors by code, duplicates, hard examples, latency) and state."""
        out = self.metrics.stats()
        dispatcher = self._dispatcher
        out.update(in_flight=dispatcher.in_flight if dispatcher else 0, connected=self.connected,
                   protocol=self._protocol, client_id=self.client_id, last_error=self.last_error,
                   handler_failures=dispatcher.failures if dispatcher else 0, loop_restarts=self.loop_restarts)
        return out

    @property
    def subscriptions(self) -> list[str]:
        """The topic filters the gateway subscribes to (requests, and the KubeEdge mapper topics when enabled)."""
        return [self.topics.request_filter, *(kubeedge.TOPICS if self._kubeedge is not None else ())]

    # -- connection ------------------------------------------------------------------------
    def _connect(self) -> None:
        client = connection.new_client(self.settings, self.client_id, self._protocol)
        client.will_set(self.topics.status, self._status("offline", None, reason="connection lost"),
                        qos=self.settings.qos, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        with self._client_lock:
            self._client = client
        connection.connect(client, self.settings, self._protocol)

    def _watch_loop(self) -> None:
        """Replace a network loop that died (an exception escaped a paho callback) with a new connection."""
        while not self._wake.wait(self.settings.watchdog_interval):
            with self._client_lock:
                client = self._client
            if self._stopping or client is None or connection.loop_alive(client):
                continue
            self._ready.clear()
            self.loop_restarts += 1
            log.error("MQTT gateway %s: the network loop died; reconnecting with a new client", self.client_id)
            connection.abandon(client)
            try:
                self._connect()
            except Exception:  # e.g. the TLS files vanished: keep trying, say why
                log.exception("MQTT gateway %s: reconnecting failed; retrying", self.client_id)

    def _detect_then_connect(self) -> None:
        delay = self.settings.reconnect_min_delay
        while not self._stopping:
            failures: list[str] = []
            found = connection.detect_protocol(self.settings, failures=failures)
            if failures:
                self._failed(failures[-1])
            if found is not None:
                if found != self._protocol:
                    log.info("broker %s:%s speaks MQTT %s only: results go to result topics (no response topics)",
                             self.settings.host, self.settings.port, found)
                self._protocol = found
                self._connect()
                return
            time.sleep(delay)
            delay = min(delay * 2, self.settings.reconnect_max_delay)

    def _status(self, state: str, since: str | None, **extra: Any) -> bytes:
        body = {"state": state, "since": since, "namespace": self.topics.namespace, "service": self.topics.service,
                "client_id": self.client_id, "protocol": self._protocol, **extra}
        return json.dumps(body, separators=(",", ":")).encode()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        code = connection.reason_value(reason_code)
        if code != 0:
            if code in connection.UNSUPPORTED_PROTOCOL and self.settings.protocol == "auto" and self._protocol == "5":
                log.info("broker %s:%s does not speak MQTT 5; falling back to 3.1.1 (no response topics)",
                         self.settings.host, self.settings.port)
                threading.Thread(target=self._fall_back, args=(client,), daemon=True).start()
            else:
                self._failed(connection.describe_refusal(reason_code, self.settings))
            return
        self.last_error = None
        log.info("MQTT gateway %s connected (session present: %s)", self.client_id,
                 getattr(flags, "session_present", None))
        client.subscribe([(topic, self.settings.qos) for topic in self.subscriptions])
        client.publish(self.topics.status, self._status("online", utc_now(), request_topic=self.topics.request_filter),
                       qos=self.settings.qos, retain=True)

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        # paho calls this while handling the OSError (or ssl.SSLError) of the attempt: exc_info names it
        self._failed(connection.describe_failure(sys.exc_info()[1], self.settings))

    def _failed(self, reason: str) -> None:
        """Record why connecting failed; logged once per distinct reason, not at every back-off retry."""
        if reason != self.last_error:
            log.error("MQTT gateway %s: %s; retrying with back-off", self.client_id, reason)
        self.last_error = reason

    def _fall_back(self, old: Any) -> None:
        old.loop_stop()
        old.disconnect()
        self._protocol = "3.1.1"
        if not self._stopping:
            self._connect()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        if all(connection.reason_value(rc) < 128 for rc in reason_codes):
            self._ready.set()
        else:
            log.error("broker refused the subscription to %s: %s", self.subscriptions, reason_codes)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._ready.clear()
        if not self._stopping:
            log.warning("MQTT gateway %s lost the broker (%s); reconnecting with back-off", self.client_id, reason_code)

    # -- requests --------------------------------------------------------------------------
    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        """On paho's network thread: hand the message to a worker, or answer ``busy``; never raise."""
        received = time.perf_counter()
        try:
            topic, payload = message.topic, message.payload
            props = getattr(message, "properties", None)
            dispatcher = self._dispatcher
            if dispatcher is not None and dispatcher.submit(self._handle, topic, payload, props, received, key=topic):
                return
            self._refuse(topic, payload, props)
        except Exception:  # nothing a message carries may stop the network loop
            log.exception("MQTT gateway %s: could not take a message on %r", self.client_id,
                          getattr(message, "topic", "?"))

    def _refuse(self, topic: str, payload: bytes, props: Any) -> None:
        """Answer a message that no worker can take: ``busy``, or ``unavailable`` while stopping."""
        self.metrics.request()
        reply = self._reply_for(topic, props)
        if reply is None:
            return
        request_id = peek_id(payload, connection.correlation_text(reply.correlation))
        if self._stopping or self._dispatcher is None:
            self._answer_error(reply, request_id, "unavailable", "gateway is stopping; retry later")
        else:
            self._answer_error(reply, request_id, "busy",
                               f"busy: {self.settings.max_in_flight} requests in flight; retry later")

    def _reply_for(self, topic: str, props: Any) -> Reply | None:
        """Where answers to a message on ``topic`` go; the response topic only if the device owns it."""
        if topic.startswith("$"):
            if self._kubeedge is None or not kubeedge.is_kubeedge_topic(topic):
                return None
            device = kubeedge.device_of(topic)
            return Reply(self.topics.result(device), device)
        device = self.topics.device_of(topic)
        response_topic = getattr(props, "ResponseTopic", None) or None
        correlation = getattr(props, "CorrelationData", None) or None
        if response_topic is not None and not self.topics.owned_by(device, response_topic):
            return Reply(self.topics.result(device), device, correlation, forbidden=response_topic)
        return Reply(response_topic or self.topics.result(device), device, correlation)

    def _handle(self, topic: str, payload: bytes, props: Any, received: float) -> None:
        """On a worker: decode, de-duplicate, infer and answer one message; every failure is answered."""
        reply = self._reply_for(topic, props)
        if reply is None:
            return
        request_id: RequestId | None = connection.correlation_text(reply.correlation)
        try:
            if reply.forbidden is not None:
                self.metrics.request()
                self._answer_error(reply, peek_id(payload, request_id), "forbidden_response_topic",
                                   f"response topic {reply.forbidden!r} is not this device's: use "
                                   f"{self.topics.response(reply.device)!r} or a topic under it")
                return
            if topic.startswith("$"):
                request = self._kubeedge_request(topic, payload)
                if request is None:
                    self.metrics.ignore()
                    return
                device = "$ke/" + reply.device
            else:
                request = decode_request(payload, self._limits, request_id)
                device = reply.device
            self.metrics.request()
            request_id = request.id
            self._serve(request, reply, device, received)
        except PayloadError as exc:
            self.metrics.request()
            self._answer_error(reply, exc.request_id, exc.code, str(exc))
        except Exception:  # a bug on our side: the device gets a clean error, the log gets the details
            log.exception("MQTT gateway %s: request %r from %s failed", self.client_id, request_id, reply.device)
            self._answer_error(reply, request_id, "internal", "the gateway failed on this request; see its log")

    def _kubeedge_request(self, topic: str, payload: bytes) -> Request | None:
        assert self._kubeedge is not None
        return self._kubeedge.decode(topic, payload)

    def _serve(self, request: Request, reply: Reply, device: str, received: float) -> None:
        """De-duplicate, infer, answer; announce a hard example."""
        if self._stopping:
            self._answer_error(reply, request.id, "unavailable", "gateway is stopping; retry later")
            return
        if not self._seen.first((device, str(request.id))):
            self.metrics.duplicate()
            return
        try:
            outcome = self._infer(request.tensor)
        except InvalidInputError as exc:
            self._answer_error(reply, request.id, "invalid_input", f"data: {exc}")
            return
        except Exception as exc:  # the model failed: answered as an error, counted, details logged
            log.exception("inference failed for %r from %s", request.id, reply.device)
            self._answer_error(reply, request.id, "infer_failed", f"inference failed ({type(exc).__name__}); "
                               "see the edge worker's log")
            return
        latency = time.perf_counter() - received
        self.metrics.answer(latency, outcome.is_hard_example)  # counted before the device can see it, as errors are
        self._publish(reply, result_payload(request.id, outcome, latency * 1000.0))
        if outcome.is_hard_example:
            self._announce(request, reply, outcome)

    def _announce(self, request: Request, reply: Reply, outcome: JointOutcome) -> None:
        body = {"id": outcome.example_id, "device": reply.device, "correlation_id": request.id,
                "shape": list(request.tensor.shape), "dtype": request.datatype, "computed_at": outcome.computed_at,
                "timestamp": utc_now()}
        client = self._client
        if client is not None:
            client.publish(self.topics.hard_examples, json.dumps(body, separators=(",", ":")).encode(),
                           qos=self.settings.qos)

    def _answer_error(self, reply: Reply, request_id: RequestId | None, code: str, message: str) -> None:
        self.metrics.error(code)
        log.info("request %r from %s refused: %s", request_id, reply.device, message)
        self._publish(reply, error_payload(request_id, code, message))

    def _publish(self, reply: Reply, payload: bytes) -> None:
        client = self._client
        if client is None:
            log.error("answer to %s dropped: the gateway is stopped", reply.topic)
            return
        properties = connection.publish_properties(self._protocol, correlation=reply.correlation)
        client.publish(reply.topic, payload, qos=self.settings.qos, properties=properties)
