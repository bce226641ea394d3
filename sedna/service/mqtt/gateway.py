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
back-off, and every (re)connect resubscribes and republishes ``online``. Decoding
happens on paho's network thread (cheap); :mod:`.dispatch` runs inference inline
there while it is cheap (recent mean below ``inline_max_ms``) and nothing is queued,
else on ``workers`` threads; a request beyond ``max_in_flight`` is answered ``busy``
at once. Each (device, id) pair is answered exactly once (:mod:`.dedup`).
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
from sedna.service.mqtt.codec import PayloadError, Request, RequestId, decode_request, error_payload, result_payload
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
    """Where the answer to one request goes."""

    topic: str
    device: str
    correlation: bytes | None = None


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
        self._dispatcher: Dispatcher | None = None
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

    def start(self, timeout: float | None = None) -> bool:
        """Connect in the background; wait up to ``timeout`` (default ``connect_timeout``) until subscribed.

        Returns whether it is serving; when not, it keeps retrying with back-off.
        """
        if self._dispatcher is not None:
            raise RuntimeError("DeviceGateway.start() called twice")
        self._stopping = False
        self._dispatcher = Dispatcher(self.settings.workers, self.settings.max_in_flight,
                                      self.settings.inline_max_ms / 1000.0, f"mqtt-infer-{self.topics.service}")
        self._dispatcher.start()
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
        self._dispatcher.stop(timeout)
        self._dispatcher = None
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
                   inline_runs=dispatcher.inline_runs if dispatcher else 0,
                   pooled_runs=dispatcher.pooled_runs if dispatcher else 0)
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
        received = time.perf_counter()
        topic = message.topic
        if topic.startswith("$"):
            self._on_kubeedge(topic, message.payload, received)
            return
        device = self.topics.device_of(topic)
        props = getattr(message, "properties", None)
        response_topic = getattr(props, "ResponseTopic", None) or None
        correlation = getattr(props, "CorrelationData", None) or None
        reply = Reply(response_topic or self.topics.result(device), device, correlation)
        self.metrics.request()
        try:
            request = decode_request(message.payload, self.settings.max_payload_bytes,
                                     connection.correlation_text(correlation))
        except PayloadError as exc:
            self._answer_error(reply, exc.request_id, exc.code, str(exc))
            return
        self._accept(request, reply, device, received)

    def _on_kubeedge(self, topic: str, payload: bytes, received: float) -> None:
        """A mapper data or twin update: served when it carries the configured properties."""
        if self._kubeedge is None or not kubeedge.is_kubeedge_topic(topic):
            return
        device = kubeedge.device_of(topic)
        reply = Reply(self.topics.result(device), device)
        try:
            request = self._kubeedge.decode(topic, payload)
        except PayloadError as exc:
            self.metrics.request()
            self._answer_error(reply, exc.request_id, exc.code, str(exc))
            return
        if request is None:
            self.metrics.ignore()
            return
        self.metrics.request()
        self._accept(request, reply, "$ke/" + device, received)

    def _accept(self, request: Request, reply: Reply, device: str, received: float) -> None:
        """De-duplicate, then serve ``request`` (inline or on a worker), or answer why not."""
        if self._stopping:
            self._answer_error(reply, request.id, "unavailable", "gateway is stopping; retry later")
            return
        key = (device, str(request.id))
        if not self._seen.first(key):
            self.metrics.duplicate()
            return
        dispatcher = self._dispatcher
        if dispatcher is None or not dispatcher.submit(self._serve, request, reply, received):
            self._seen.forget(key)
            if dispatcher is None or self._stopping:
                self._answer_error(reply, request.id, "unavailable", "gateway is stopping; retry later")
            else:
                self._answer_error(reply, request.id, "busy",
                                   f"busy: {self.settings.max_in_flight} requests in flight; retry later")

    def _serve(self, request: Request, reply: Reply, received: float) -> None:
        try:
            outcome = self._infer(request.tensor)
        except InvalidInputError as exc:
            self._answer_error(reply, request.id, "invalid_input", f"data: {exc}")
            return
        except Exception as exc:  # the model failed: answered as an error, counted and logged
            log.exception("inference failed for %s from %s", request.id, reply.device)
            self._answer_error(reply, request.id, "infer_failed", f"inference failed: {type(exc).__name__}: {exc}")
            return
        latency = time.perf_counter() - received
        self._publish(reply, result_payload(request.id, outcome, latency * 1000.0))
        self.metrics.answer(latency, outcome.is_hard_example)
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
