"""MQTT for devices: the gateway in front of an edge worker, an embedded broker, a simulator.

Devices publish requests to ``sedna/{namespace}/{service}/request/{device}`` and get
answers on ``.../result/{device}`` or their MQTT 5 response topic. Modules:

* :mod:`.gateway`: :class:`DeviceGateway`, serving an ``infer(ndarray) -> JointOutcome``.
* :mod:`.dispatch`: decoding and inference on worker threads, never on paho's network thread.
* :mod:`.connection`: paho clients built from settings; connection errors explained.
* :mod:`.codec` / :mod:`.images`: bounded request frames and result JSON; images through Pillow.
* :mod:`.settings`: :class:`MqttSettings` (from the worker contract) and :class:`Topics`.
* :mod:`.broker`: :class:`EmbeddedBroker` (amqtt) for the local backend.
* :mod:`.simulator`: a digits-playing device fleet (``sedna device simulate``).
* :mod:`.kubeedge`: KubeEdge device-twin mapper topics as inference input.
* :mod:`.testing` / :mod:`.certs`: a real mosquitto launcher (password file, TLS), throwaway
  TLS certificates and a fake model, for tests and benchmarks.

paho-mqtt and amqtt are imported inside the functions that use them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sedna.service.mqtt.broker import EmbeddedBroker
    from sedna.service.mqtt.codec import PayloadError, decode_request, encode_frame, encode_image_frame
    from sedna.service.mqtt.gateway import DeviceGateway
    from sedna.service.mqtt.settings import MqttSettings, Topics

_EXPORTS = {"EmbeddedBroker": "broker", "PayloadError": "codec", "decode_request": "codec",
            "encode_frame": "codec", "encode_image_frame": "codec", "DeviceGateway": "gateway",
            "MqttSettings": "settings", "Topics": "settings"}

__all__ = ["DeviceGateway", "EmbeddedBroker", "MqttSettings", "PayloadError", "Topics", "decode_request",
           "encode_frame", "encode_image_frame"]


def __getattr__(name: str) -> Any:
    """Import the exported names lazily, so ``python -m sedna.service.mqtt.broker`` does not
    find its own module already imported (runpy's RuntimeWarning)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
