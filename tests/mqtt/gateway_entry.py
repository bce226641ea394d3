"""A gateway in its own process, for the Last Will test: ``python -m tests.mqtt.gateway_entry PORT SERVICE``."""

from __future__ import annotations

import sys
import threading

from sedna.service.mqtt import DeviceGateway, MqttSettings
from sedna.service.mqtt.testing import argmax_infer


def main() -> None:
    port, service = int(sys.argv[1]), sys.argv[2]
    gateway = DeviceGateway(argmax_infer(), MqttSettings(port=port, protocol="5", keepalive=5), "default", service)
    if not gateway.start(10.0):
        sys.exit("gateway did not connect")
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
