"""``sedna device ...``: tools for MQTT devices (``simulate`` a fleet against a gateway).

The heavy lifting lives in :mod:`sedna.service.mqtt.simulator`; this module parses
flags (the broker: ``--broker``, else ``$MQTT_BROKER``, else the one ``sedna local up`` started
for ``--state-dir``, else 127.0.0.1:1883; the credentials: ``--username``/``--password``, else
``$MQTT_USERNAME``/``$MQTT_PASSWORD``, else the devices' identity ``sedna local up`` keeps in
``--state-dir`` for its embedded broker, which refuses anonymous clients), maps errors to exit
codes (0 all answered without error, 1 some errors or unanswered requests, 2 bad flags, 3 broker
unreachable) and prints the report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from sedna.common.errors import ConfigError


def register(subparsers: Any) -> None:
    """Add the ``device`` command group to the ``sedna`` parser."""
    device = subparsers.add_parser("device", help="MQTT device tools", description=__doc__.split("\n")[0])
    commands = device.add_subparsers(dest="device_command", metavar="SUBCOMMAND")
    sim = commands.add_parser("simulate", help="play the digits test split against an inference service over MQTT")
    sim.add_argument("--service", required=True, help="the joint inference service to call")
    sim.add_argument("--namespace", default="default", help="its namespace (default: default)")
    sim.add_argument("--broker", default=None,
                     help="MQTT broker HOST:PORT (default: $MQTT_BROKER, else the broker of `sedna local up` "
                          "in --state-dir, else 127.0.0.1:1883)")
    sim.add_argument("--state-dir", default=os.environ.get("SEDNA_STATE_DIR", ".sedna"),
                     help="state directory of `sedna local up` (default ./.sedna, env SEDNA_STATE_DIR)")
    sim.add_argument("--rate", type=float, default=0.0, help="requests per second (default 0: keep --window in flight)")
    sim.add_argument("--window", type=int, default=32, help="requests in flight when no --rate is given (default 32)")
    sim.add_argument("--count", type=int, default=None,
                     help="how many test digits to send (default: all 540; more cycle through the split)")
    sim.add_argument("--qos", type=int, choices=(0, 1, 2), default=1, help="MQTT QoS of requests (default 1)")
    sim.add_argument("--username", default=os.environ.get("MQTT_USERNAME", ""), help="broker user ($MQTT_USERNAME)")
    sim.add_argument("--password", default=os.environ.get("MQTT_PASSWORD", ""),
                     help="broker password (prefer $MQTT_PASSWORD: flags show in ps)")
    sim.add_argument("--tls-ca", default=os.environ.get("MQTT_TLS_CA", ""), help="CA file: connect with TLS")
    sim.add_argument("--protocol", choices=("auto", "5", "3.1.1"), default="auto", help="MQTT version (default auto)")
    sim.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the last answers (default 30)")
    sim.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    sim.set_defaults(handler=run_simulate)
    device.set_defaults(handler=lambda args: (device.print_help(), 2)[1])


def run_simulate(args: argparse.Namespace) -> int:
    """Handler of ``sedna device simulate``."""
    from sedna.cli._client import read_ready
    from sedna.service.mqtt.settings import MqttSettings, parse_broker
    from sedna.service.mqtt.simulator import format_summary, simulate

    broker = args.broker or os.environ.get("MQTT_BROKER") or \
        (read_ready(Path(args.state_dir)) or {}).get("mqtt_broker") or "127.0.0.1:1883"
    username, password = args.username, args.password
    if not username:
        from sedna.cli._local_secrets import device_credentials

        username, password = device_credentials(Path(args.state_dir)) or ("", "")
    try:
        host, port = parse_broker(broker, "--broker")
        settings = MqttSettings(host=host, port=port, username=username, password=password,
                                tls_ca=args.tls_ca, protocol=args.protocol)
        summary = simulate(args.service, args.namespace, settings, count=args.count, rate=args.rate,
                           window=args.window, qos=args.qos, timeout=args.timeout, progress=sys.stderr)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ConnectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(json.dumps(summary) if args.json else format_summary(summary))
    return 0 if summary["errors"] == 0 and summary["unanswered"] == 0 else 1
