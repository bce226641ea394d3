"""``sedna local up | down | status``: the embedded cluster on this machine.

``up`` writes bearer tokens into the state dir (mode 0600), starts the embedded MQTT
broker (``python -m sedna.service.mqtt.broker`` on a free 127.0.0.1 port) unless
``--mqtt-broker HOST:PORT`` names an external one, starts ``python -m gm`` detached (local
backend: SQLite store, process runtime, REST API, edge hub; edge workers get the broker as
``MQTT_BROKER``, and the GM's ready file records it for ``sedna device simulate``), waits for
its ready file, then starts one Local Controller per simulated node when the ``lc``
package is installed, and prints the addresses. It is idempotent: when the GM of that
state dir is already up it only prints them. ``down`` stops every process it started,
and every worker those started (found by process tree and by a marker in their
environment), so nothing is left running. The CLI never imports ``gm`` or ``lc``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sedna.cli import _procs
from sedna.cli._client import DEFAULT_STATE_DIR, READY_FILE, read_ready
from sedna.cli._errors import CliError, guarded

RECORD = "local.json"
MARKER = "SEDNA_LOCAL_STATE_DIR"


def register(subparsers: Any) -> None:
    """Add ``local up``, ``local down`` and ``local status``."""
    local = subparsers.add_parser("local", help="run the embedded cluster on this machine")
    sub = local.add_subparsers(dest="local_command", metavar="COMMAND", required=True)
    for name, fn, text in (("up", up, "start GM and one LC per node"), ("down", down, "stop everything"),
                           ("status", status, "show what is running")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--state-dir", default=os.environ.get("SEDNA_STATE_DIR", DEFAULT_STATE_DIR))
        if name == "up":
            p.add_argument("--nodes", default="cloud,edge-0,edge-1", help="simulated nodes, comma separated")
            p.add_argument("--mqtt-broker", default="",
                           help="external MQTT broker HOST:PORT for edge workers (MQTT_BROKER); default: start "
                                "the embedded one on a free 127.0.0.1 port")
            p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the GM")
        p.set_defaults(handler=guarded(fn))




def _record(state: Path) -> dict[str, Any]:
    try:
        return json.loads((state / RECORD).read_text())
    except (OSError, ValueError):
        return {}


def _gm_up(state: Path) -> dict[str, Any] | None:
    ready, record = read_ready(state), _record(state)
    if ready and record.get("gm") == ready.get("pid") and _procs.alive(int(ready["pid"])):
        return ready
    return None


def _secret_file(path: Path, content: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    os.chmod(path, 0o600)


def _tokens(state: Path, name: str, nodes: list[str]) -> dict[str, str]:
    """NODE=TOKEN lines in ``state/name``; missing nodes get a fresh token."""
    path, tokens = state / name, {}
    if path.exists():
        for line in path.read_text().splitlines():
            node, _, token = line.partition("=")
            if node and token:
                tokens[node] = token
    for node in nodes:
        tokens.setdefault(node, secrets.token_urlsafe(32))
    _secret_file(path, "".join(f"{n}={t}\n" for n, t in tokens.items()))
    return tokens


def _parse_nodes(text: str) -> list[str]:
    nodes = [n.strip() for n in text.split(",") if n.strip()]
    if not nodes:
        raise CliError("--nodes: give at least one node name, e.g. cloud,edge-0")
    for node in nodes:
        if not node.replace("-", "").isalnum() or node != node.lower():
            raise CliError(f"--nodes: {node!r} is not a valid node name (lowercase letters, digits, '-')")
    if "cloud" not in nodes:
        raise CliError(f"--nodes: the list must include 'cloud' (got {', '.join(nodes)})")
    return nodes


def up(args: argparse.Namespace) -> int:
    state = Path(args.state_dir).resolve()
    nodes = _parse_nodes(args.nodes)
    if args.mqtt_broker and ":" not in args.mqtt_broker:
        raise CliError(f"--mqtt-broker: expected HOST:PORT, got {args.mqtt_broker!r}")
    ready = _gm_up(state)
    if ready is not None:
        print(f"sedna local is already up (state dir {state})")
        _print_addresses(ready, _record(state))
        return 0
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    if not (state / "token").exists():
        _secret_file(state / "token", secrets.token_urlsafe(32) + "\n")
    hub_tokens = _tokens(state, "node-tokens", nodes)
    worker_tokens = _tokens(state, "worker-tokens", nodes)
    lc_ports = {node: _procs.free_port() for node in nodes} if _procs.module_available("lc") else {}
    (state / READY_FILE).unlink(missing_ok=True)
    env = {**os.environ, MARKER: str(state), "PYTHONUNBUFFERED": "1"}
    logs = state / "logs"
    logs.mkdir(exist_ok=True)
    record: dict[str, Any] = {"lc": {}, "nodes": nodes}
    broker = _start_broker(args.mqtt_broker, env, logs / "mqtt-broker.log", state, record)
    cmd = [sys.executable, "-m", "gm", "--backend", "local", "--state-dir", str(state), "--api-port", "0",
           "--hub-port", "0", "--nodes", ",".join(nodes), "--mqtt-broker", broker,
           "--lc-servers", ",".join(f"{n}=http://127.0.0.1:{p}" for n, p in lc_ports.items())]
    gm = _procs.spawn(cmd, env, logs / "gm.log")
    record["gm"] = gm.pid
    _secret_file(state / RECORD, json.dumps(record))
    try:  # the broker and the GM start side by side
        _wait_broker(record, logs / "mqtt-broker.log")
        ready = _wait_ready(state, gm, args.timeout)
    except CliError:
        _procs.terminate([gm.pid], 5.0)
        _stop_broker(record)
        raise
    for node, port in lc_ports.items():
        lc_state = state / "lc" / node
        lc_state.mkdir(parents=True, exist_ok=True)
        _secret_file(lc_state / "hub-token", hub_tokens[node] + "\n")
        lc_env = {**env, "LC_WORKER_TOKEN": worker_tokens[node]}
        proc = _procs.spawn([sys.executable, "-m", "lc", "--gm-address", ready["hub"], "--node", node,
                             "--token-file", str(lc_state / "hub-token"), "--state-dir", str(lc_state),
                             "--bind", f"127.0.0.1:{port}"], lc_env, logs / f"lc-{node}.log")
        record["lc"][node] = {"pid": proc.pid, "server": f"http://127.0.0.1:{port}"}
        _secret_file(state / RECORD, json.dumps(record))
    for node, port in lc_ports.items():
        if not _procs.wait_port(port, 30.0, record["lc"][node]["pid"]):
            raise CliError(f"the LC of node {node!r} did not listen on 127.0.0.1:{port}; see {logs / f'lc-{node}.log'}")
    print(f"sedna local is up (state dir {state})")
    _print_addresses(ready, record)
    return 0


def _start_broker(external: str, env: dict[str, str], log: Path, state: Path, record: dict[str, Any]) -> str:
    """The broker address for the workers: ``external``, or an embedded broker started (and recorded) now."""
    if external:
        record["mqtt_broker"] = {"address": external, "embedded": False}
        return external
    port = _procs.free_port()
    proc = _procs.spawn([sys.executable, "-m", "sedna.service.mqtt.broker", "--host", "127.0.0.1",
                         "--port", str(port)], env, log)
    address = f"127.0.0.1:{port}"
    record["mqtt_broker"] = {"address": address, "embedded": True, "pid": proc.pid, "port": port}
    _secret_file(state / RECORD, json.dumps(record))
    return address


def _wait_broker(record: dict[str, Any], log: Path) -> None:
    broker = record.get("mqtt_broker") or {}
    if broker.get("pid") and not _procs.wait_port(int(broker["port"]), 30.0, int(broker["pid"])):
        tail = log.read_text(errors="replace").strip().splitlines()[-10:] if log.exists() else []
        raise CliError("the embedded MQTT broker did not listen on {} (or use --mqtt-broker HOST:PORT for an "
                       "external one):\n{}".format(broker["address"], "\n".join(tail)))


def _stop_broker(record: dict[str, Any]) -> None:
    pid = (record.get("mqtt_broker") or {}).get("pid")
    if pid:
        _procs.terminate([int(pid)], 5.0)


def _wait_ready(state: Path, gm: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = read_ready(state)
        if ready and ready.get("pid") == gm.pid:
            return ready
        if gm.poll() is not None:
            tail = (state / "logs" / "gm.log").read_text(errors="replace").strip().splitlines()[-15:]
            raise CliError("the Global Manager exited with code {} before it was ready:\n{}".format(
                gm.returncode, "\n".join(tail)))
        time.sleep(0.1)
    _procs.terminate([gm.pid], 5.0)
    raise CliError(f"the Global Manager was not ready within {timeout:.0f}s; see {state / 'logs' / 'gm.log'}")


def _print_addresses(ready: dict[str, Any], record: dict[str, Any]) -> None:
    print(f"  API:      {ready.get('api')}")
    print(f"  hub:      {ready.get('hub', '<not running: gm.hub not installed>')}")
    print(f"  metrics:  {ready.get('metrics')}")
    if ready.get("dashboard"):
        print(f"  dashboard: {ready['dashboard']} (sign in with the token in {ready.get('state_dir', '.sedna')}/token)")
    broker = record.get("mqtt_broker") or {}
    if broker:
        print(f"  MQTT:     {broker['address']} ({'embedded' if broker.get('embedded') else 'external'})")
    for node in ready.get("nodes", []):
        lc = (record.get("lc") or {}).get(node)
        print(f"  node {node}: LC {lc['server'] if lc else '<not running>'}")


def down(args: argparse.Namespace) -> int:
    state = Path(args.state_dir).resolve()
    record = _record(state)
    pids = [int(v["pid"]) for v in (record.get("lc") or {}).values()]
    if record.get("gm"):
        pids.append(int(record["gm"]))
    if (record.get("mqtt_broker") or {}).get("pid"):
        pids.append(int(record["mqtt_broker"]["pid"]))
    stopped = _procs.stop_all(pids, marker=(MARKER, str(state)), pid_file=state / "pids.json")
    (state / READY_FILE).unlink(missing_ok=True)
    (state / RECORD).unlink(missing_ok=True)
    print(f"sedna local is down ({stopped} processes stopped)" if stopped else "sedna local was not running")
    return 0


def status(args: argparse.Namespace) -> int:
    state = Path(args.state_dir).resolve()
    ready = _gm_up(state)
    if ready is None:
        print(f"sedna local is not running (state dir {state})")
        return 1
    record = _record(state)
    print(f"sedna local is up (state dir {state}, GM pid {ready['pid']})")
    _print_addresses(ready, record)
    for node, lc in (record.get("lc") or {}).items():
        print(f"  LC {node}: pid {lc['pid']} {'running' if _procs.alive(int(lc['pid'])) else 'NOT running'}")
    broker = record.get("mqtt_broker") or {}
    if broker.get("pid"):
        print(f"  MQTT broker: pid {broker['pid']} {'running' if _procs.alive(int(broker['pid'])) else 'NOT running'}")
    return 0
