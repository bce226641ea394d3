"""KubeEdge devices as inference input: mapper data and twin updates become requests.

Devices that KubeEdge already manages report through a *mapper*, which publishes on
the edge node's MQTT broker:

* ``$ke/events/device/{id}/data/update``, a ``DeviceData`` message::

      {"event_id": "", "timestamp": 1700000000000,
       "data": {"temperature": {"value": "21.5", "metadata": {"type": "float", "timestamp": ...}}}}

* ``$hw/events/device/{id}/twin/update``, a ``DeviceTwinUpdate`` message::

      {"event_id": "", "timestamp": 1700000000000,
       "twin": {"temperature": {"actual": {"value": "21.5"}, "metadata": {"type": "Updated"}}}}

With ``MqttSettings.kubeedge_devices`` (env ``MQTT_KUBEEDGE_DEVICES=true``) the gateway
subscribes to both and turns the values of the configured properties
(``kubeedge_properties``, env ``MQTT_KUBEEDGE_PROPERTIES=a,b,c``) into one input row:

* **one property**: its value is a number or a JSON list of numbers (nested lists for
  more dimensions), e.g. ``"[0.0, 0.25, ...]"``; a flat list becomes a ``[1, n]`` batch;
* **several properties**: each value is one number and the row is ``[1, k]`` in the
  configured order (``temperature,humidity`` -> ``[[t, h]]``).

Values travel as strings in KubeEdge and are parsed as JSON numbers, never evaluated.
Twin updates use the ``actual`` (reported) value; a twin update carrying only
``expected`` values (a desired state set by an application) is not a reading and is
ignored, as is any message that has none of the configured properties. A message
with some but not all of them, or with a value that is not a number, is answered with
an error naming the property. The answer goes to ``sedna/{namespace}/{service}/result/{id}``
in the gateway's result format; its ``id`` is the message's ``event_id``, or
``{id}@{timestamp}`` when the mapper leaves ``event_id`` empty, so a QoS 1
re-delivery is answered once.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from sedna.common import bounded_json
from sedna.common.errors import InvalidInputError
from sedna.service.mqtt.codec import MAX_DEPTH, PayloadError, Request, RequestId, parse_dtype

DATA_TOPIC = "$ke/events/device/+/data/update"
TWIN_TOPIC = "$hw/events/device/+/twin/update"
TOPICS = (DATA_TOPIC, TWIN_TOPIC)
CONTENT_TYPE = "application/vnd.kubeedge+json"


def is_kubeedge_topic(topic: str) -> bool:
    """Whether ``topic`` is a mapper data or twin update topic."""
    parts = topic.split("/")
    return len(parts) == 6 and ((parts[0] == "$ke" and parts[4:] == ["data", "update"])
                                or (parts[0] == "$hw" and parts[4:] == ["twin", "update"]))


def device_of(topic: str) -> str:
    """The KubeEdge device id of a mapper topic (its fourth level)."""
    return topic.split("/")[3]


class KubeEdgeDecoder:
    """Turns mapper messages into :class:`~sedna.service.mqtt.codec.Request` s (see the module docstring)."""

    def __init__(self, properties: tuple[str, ...], dtype: str = "FP32", max_bytes: int = 1 << 20) -> None:
        if not properties:
            raise ValueError("KubeEdgeDecoder needs at least one property name")
        self.properties = properties
        self.dtype = parse_dtype(dtype)
        self.max_bytes = max_bytes
        self._sequence = itertools.count()

    def decode(self, topic: str, payload: bytes) -> Request | None:
        """The request in a mapper message, ``None`` when it carries no configured reading."""
        if len(payload) > self.max_bytes:
            raise PayloadError("oversize", f"payload: {len(payload)} bytes exceeds the limit of {self.max_bytes} bytes")
        try:
            body = bounded_json.loads(payload, what="KubeEdge message", max_depth=MAX_DEPTH)
        except InvalidInputError as exc:
            raise PayloadError("bad_header", str(exc)) from None
        if not isinstance(body, dict):
            raise PayloadError("bad_header", f"KubeEdge message: must be a JSON object, got {type(body).__name__}")
        device = device_of(topic)
        values = self._readings(body, "twin" if topic.startswith("$hw/") else "data")
        found = {name: values[name] for name in self.properties if name in values}
        if not found:
            return None
        rid = self._request_id(body, device)
        missing = [name for name in self.properties if name not in found]
        if missing:
            raise PayloadError("bad_data", f"property {missing[0]!r}: missing from the update of device {device!r} "
                               f"(the input needs {', '.join(self.properties)})", rid)
        return Request(rid, self._tensor(found, rid), CONTENT_TYPE)

    @staticmethod
    def _readings(body: dict[str, Any], section: str) -> dict[str, Any]:
        entries = body.get(section)
        if not isinstance(entries, dict):
            return {}
        out: dict[str, Any] = {}
        for name, entry in entries.items():
            holder = entry.get("actual") if section == "twin" and isinstance(entry, dict) else entry
            if isinstance(holder, dict) and holder.get("value") is not None:
                out[name] = holder["value"]
        return out

    def _request_id(self, body: dict[str, Any], device: str) -> RequestId:
        event_id = body.get("event_id")
        if isinstance(event_id, str) and event_id:
            return event_id
        stamp = body.get("timestamp")
        if isinstance(stamp, int) and not isinstance(stamp, bool):
            return f"{device}@{stamp}"
        return f"{device}#{next(self._sequence)}"  # nothing to de-duplicate on: every delivery is served

    def _tensor(self, found: dict[str, Any], rid: RequestId) -> np.ndarray:
        parsed = {name: self._parse(name, value, rid) for name, value in found.items()}
        if len(self.properties) == 1:
            (value,) = parsed.values()
            try:
                array = np.asarray(value, dtype=self.dtype)
            except (TypeError, ValueError, OverflowError) as exc:
                raise PayloadError("bad_data", f"property {self.properties[0]!r}: not a number or a rectangular "
                                   f"list of numbers ({exc})", rid) from None
            return array.reshape(1, -1) if array.ndim <= 1 else array
        row = []
        for name in self.properties:
            value = parsed[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise PayloadError("bad_data", f"property {name!r}: {found[name]!r} is not a number (with several "
                                   "input properties each holds one number)", rid)
            row.append(value)
        try:
            return np.asarray([row], dtype=self.dtype)
        except OverflowError as exc:
            raise PayloadError("bad_data", f"properties {', '.join(self.properties)}: a value does not fit "
                               f"{self.dtype} ({exc})", rid) from None

    @staticmethod
    def _parse(name: str, value: Any, rid: RequestId) -> Any:
        if isinstance(value, (int, float, list)) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                parsed = bounded_json.loads(value, what=f"property {name!r}", max_depth=MAX_DEPTH)
            except InvalidInputError:
                parsed = None
            if isinstance(parsed, (int, float, list)) and not isinstance(parsed, bool):
                return parsed
        raise PayloadError("bad_data", f"property {name!r}: {value!r} is not a number or a JSON list of numbers", rid)
