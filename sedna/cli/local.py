"""``sedna local up | down | status | restart``: the embedded cluster on this machine.

``up`` keeps the credentials in the state dir (mode 0600, :mod:`._local_secrets`; an LC joins the GM
with a single-use bootstrap token and keeps the node credential it is issued in its own state dir,
``docs/identity.md``), starts the
embedded MQTT broker (``python -m sedna.service.mqtt.broker`` on a free 127.0.0.1 port, username and
password required) unless ``--mqtt-broker HOST:PORT`` names an external one, starts ``python -m gm``
detached (local backend: SQLite store, process runtime, REST API, edge hub; edge workers get the
broker as ``MQTT_BROKER``, every worker the inference tokens and broker credentials; the GM's ready
file records the broker for ``sedna device simulate``), waits for its ready file, then starts one
Local Controller per simulated node when the ``lc`` package is installed, and prints the addresses
(the cluster's loopback block for Pods and Services too: the GM records it in ``loopback.json``;
``--loopback-block`` pins it, recorded in ``local.json`` and passed to every GM started).
Every component's ports are recorded in ``local.json`` and kept: ``up`` starts only what is not
running (a GM killed with ``kill -9`` comes back on its ports and adopts the workers still running;
an LC or the broker that died comes back with its port and credentials), and ``restart COMPONENT``
(``gm``, ``broker`` or a node name for its LC) stops one component and starts it again the same way.
``down`` stops every process it started, and every worker those started (found by process tree,
by the runtime's ``pids.json`` and by a marker in their environment), so nothing is left running,
even when the GM died first. The CLI never imports ``gm`` or ``lc``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sedna.cli import _local_secrets as creds
from sedna.cli import _procs
from sedna.cli._client import DEFAULT_STATE_DIR, READY_FILE, read_ready
from sedna.cli._errors import CliError, guarded

RECORD = "local.json"
MARKER = "SEDNA_LOCAL_STATE_DIR"
DEFAULT_NODES = "cloud,edge-0,edge-1"


def register(subparsers: Any) -> None:
    """Add ``local up``, ``local down``, ``local status`` and ``local restart``."""
    local = subparsers.add_parser("local", help="run the embedded cluster on this machine")
    sub = local.add_subparsers(dest="local_command", metavar="COMMAND", required=True)
    for name, fn, text in (("up", up, "start GM, broker and one LC per node (what is not running)"),
                           ("down", down, "stop everything"), ("status", status, "show what is running"),
                           ("restart", restart, "restart one component, keeping its ports and credentials")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--state-dir", default=os.environ.get("SEDNA_STATE_DIR", DEFAULT_STATE_DIR))
        if name == "up":
            p.add_argument("--nodes", default=None, help=f"simulated nodes, comma separated (default {DEFAULT_NODES}"
                                                         ", or those of the cluster already in --state-dir)")
            p.add_argument("--mqtt-broker", default="",
                           help="external MQTT broker HOST:PORT for edge workers (MQTT_BROKER); default: start "
                                "the embedded one on a free 127.0.0.1 port")
            p.add_argument("--image-catalog", default="",
                           help="YAML file telling what each image runs for containers without a command "
                                "('images: {IMAGE: {command: [...], workingDir: DIR}}'; default: "
                                "<state-dir>/images.yaml)")
            p.add_argument("--loopback-block", default="",
                           help="Pod and Service IPs from this 127.B.0.0/16 (default: the block the state dir "
                                "recorded at its first `up`, else a free one; docs/operations.md)")
        if name == "restart":
            p.add_argument("component", help="gm, broker, or a node name (its Local Controller)")
        if name in ("up", "restart"):
            p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the GM")
        p.set_defaults(handler=guarded(fn))


# -- the record ------------------------------------------------------------------------------------
def _record(state: Path) -> dict[str, Any]:
    try:
        body = json.loads((state / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _save(state: Path, record: dict[str, Any]) -> None:
    creds.secret_file(state / RECORD, json.dumps(record))


def _gm_up(state: Path) -> dict[str, Any] | None:
    ready, record = read_ready(state), _record(state)
    if ready and record.get("gm") == ready.get("pid") and _procs.alive(int(ready["pid"])):
        return ready
    return None


def _running(entry: dict[str, Any] | None) -> bool:
    return bool(entry and entry.get("pid")) and _procs.alive(int(entry["pid"]))  # type: ignore[index]


def _port(address: str | None) -> int:
    """The port of ``http://host:port/...`` or ``host:port`` (0 when there is none)."""
    if not address:
        return 0
    netloc = urlsplit(address if "://" in address else f"//{address}").netloc
    return int(netloc.rpartition(":")[2] or 0)


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


def _state_dir(path: str) -> Path:
    """The state dir, created with mode 0700 if missing (an existing directory keeps its mode)."""
    state = Path(path).resolve()
    if not state.exists():
        state.mkdir(parents=True, mode=0o700)
        os.chmod(state, 0o700)
    elif not state.is_dir():
        raise CliError(f"--state-dir: {str(state)!r} exists and is not a directory")
    (state / "logs").mkdir(exist_ok=True, mode=0o700)
    return state


def _env(state: Path) -> dict[str, str]:
    return {**os.environ, MARKER: str(state), "PYTHONUNBUFFERED": "1"}


# -- up -------------------------------------------------------------------------------------------
def up(args: argparse.Namespace) -> int:
    if args.mqtt_broker and ":" not in args.mqtt_broker:
        raise CliError(f"--mqtt-broker: expected HOST:PORT, got {args.mqtt_broker!r}")
    state = _state_dir(args.state_dir)
    record = _record(state)
    nodes = _parse_nodes(args.nodes or ",".join(record.get("nodes") or []) or DEFAULT_NODES)
    if record.get("nodes") and nodes != record["nodes"] and (_gm_up(state) or _running_lcs(record)):
        raise CliError(f"--nodes: the cluster in {state} runs nodes {','.join(record['nodes'])}; "
                       "run `sedna local down` first to change them")
    external = args.mqtt_broker or ("" if (record.get("mqtt_broker") or {}).get("embedded", True)
                                    else record["mqtt_broker"]["address"])
    record["nodes"] = nodes
    record.setdefault("lc", {})
    if args.image_catalog:
        record["image_catalog"] = str(Path(args.image_catalog).resolve())
    if args.loopback_block:
        record["loopback_block"] = args.loopback_block.strip()
    started = _ensure(state, record, external, args.timeout)
    ready = read_ready(state) or {}
    print(f"sedna local is up (state dir {state}; started: {', '.join(started)})" if started else
          f"sedna local is already up (state dir {state})")
    _print_addresses(ready, record)
    return 0


def _running_lcs(record: dict[str, Any]) -> list[str]:
    return [node for node, lc in (record.get("lc") or {}).items() if _running(lc)]


def _ensure(state: Path, record: dict[str, Any], external: str, timeout: float) -> list[str]:
    """Start whatever of broker, GM and LCs is not running; return what was started."""
    creds.ensure(state, record["nodes"], embedded_broker=not external)
    started = []
    if _ensure_broker(state, record, external):
        started.append("MQTT broker")
    if _gm_up(state) is None:
        _start_gm(state, record, timeout)
        started.append("GM")
    ready = read_ready(state) or {}
    for node in record["nodes"] if _procs.module_available("lc") else []:
        if not _running(record["lc"].get(node)):
            _start_lc(state, record, node, ready["hub"])
            started.append(f"LC {node}")
    for node in record["nodes"] if _procs.module_available("lc") else []:
        lc = record["lc"][node]
        if not _procs.wait_port(_port(lc["server"]), 30.0, int(lc["pid"])):
            raise CliError(f"the LC of node {node!r} did not listen on {lc['server']}; "
                           f"see {state / 'logs' / f'lc-{node}.log'}")
    return started


def _ensure_broker(state: Path, record: dict[str, Any], external: str) -> bool:
    """The broker the workers get: ``external``, or the embedded one (started on its recorded port if it is
    not running); True when it was started now."""
    if external:
        record["mqtt_broker"] = {"address": external, "embedded": False}
        _save(state, record)
        return False
    broker = record.get("mqtt_broker") or {}
    if broker.get("embedded") and _running(broker):
        return False
    port = int(broker.get("port") or 0) or _procs.free_port()
    log = state / "logs" / "mqtt-broker.log"
    proc = _procs.spawn([sys.executable, "-m", "sedna.service.mqtt.broker", "--host", "127.0.0.1", "--port",
                         str(port), "--password-file", str(state / creds.MQTT_PASSWORDS)], _env(state), log)
    record["mqtt_broker"] = {"address": f"127.0.0.1:{port}", "embedded": True, "pid": proc.pid, "port": port}
    _save(state, record)
    if not _procs.wait_port(port, 30.0, proc.pid):
        tail = log.read_text(errors="replace").strip().splitlines()[-10:] if log.exists() else []
        raise CliError("the embedded MQTT broker did not listen on 127.0.0.1:{} (or use --mqtt-broker HOST:PORT for "
                       "an external one):\n{}".format(port, "\n".join(tail)))
    return True


def _start_gm(state: Path, record: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Start the GM on its recorded ports (any free ones the first time) and wait for its ready file."""
    ports = record.get("gm_ports") or {}
    lc_ports = {node: _port((record["lc"].get(node) or {}).get("server")) or _procs.free_port()
                for node in record["nodes"]} if _procs.module_available("lc") else {}
    for node, port in lc_ports.items():
        record["lc"].setdefault(node, {})["server"] = f"http://127.0.0.1:{port}"
    (state / READY_FILE).unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "gm", "--backend", "local", "--state-dir", str(state),
           "--api-port", str(ports.get("api", 0)), "--hub-port", str(ports.get("hub", 0)),
           "--metrics-port", str(ports.get("metrics", 0)), "--nodes", ",".join(record["nodes"]),
           "--mqtt-broker", record["mqtt_broker"]["address"],
           "--lc-servers", ",".join(f"{n}=http://127.0.0.1:{p}" for n, p in lc_ports.items())]
    if record.get("image_catalog"):
        cmd += ["--image-catalog", record["image_catalog"]]
    if record.get("loopback_block"):
        cmd += ["--loopback-block", record["loopback_block"]]
    gm = _procs.spawn(cmd, _env(state), state / "logs" / "gm.log")
    record["gm"] = gm.pid
    _save(state, record)
    ready = _wait_ready(state, gm, timeout)
    record["gm_ports"] = {"api": _port(ready.get("api")), "hub": _port(ready.get("hub")),
                          "metrics": _port(ready.get("metrics"))}
    _save(state, record)
    return ready


def _start_lc(state: Path, record: dict[str, Any], node: str, hub: str) -> None:
    """Start the LC of ``node`` on its recorded port with the node's credentials from the state dir."""
    port = _port((record["lc"].get(node) or {}).get("server")) or _procs.free_port()
    lc_state = state / "lc" / node
    lc_state.mkdir(parents=True, exist_ok=True)
    join: list[str] = []
    if not (lc_state / "node-credential.json").exists():  # not joined yet (or its credential was removed)
        creds.secret_file(lc_state / "bootstrap-token", creds.bootstrap_token(state, node) + "\n")
        join = ["--bootstrap-token-file", str(lc_state / "bootstrap-token")]
    (lc_state / "hub-token").unlink(missing_ok=True)  # an older `up`'s shared token
    lc_env = {**_env(state), "LC_WORKER_TOKEN": creds.read_pairs(state / "worker-tokens")[node]}
    proc = _procs.spawn([sys.executable, "-m", "lc", "--gm-address", hub, "--node", node, *join,
                         "--state-dir", str(lc_state), "--bind", f"127.0.0.1:{port}"], lc_env,
                        state / "logs" / f"lc-{node}.log")
    record["lc"][node] = {"pid": proc.pid, "server": f"http://127.0.0.1:{port}"}
    _save(state, record)


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
    if ready.get("loopback"):
        print(f"  Pods and Services: loopback block {ready['loopback']} (its own, kept in loopback.json)")
    if ready.get("dashboard"):
        print(f"  dashboard: {ready['dashboard']} (sign in with the token in {ready.get('state_dir', '.sedna')}/token)")
    broker = record.get("mqtt_broker") or {}
    if broker:
        kind = "embedded, username and password required" if broker.get("embedded") else "external"
        print(f"  MQTT:     {broker['address']} ({kind})")
    for node in ready.get("nodes", []):
        lc = (record.get("lc") or {}).get(node)
        print(f"  node {node}: LC {lc['server'] if lc else '<not running>'}")


# -- restart, down, status -------------------------------------------------------------------------
def restart(args: argparse.Namespace) -> int:
    state = Path(args.state_dir).resolve()
    record = _record(state)
    if not record.get("nodes"):
        raise CliError(f"no cluster recorded in {state}: start one with `sedna local up`")
    what = args.component
    nodes = record["nodes"]
    if what not in ("gm", "broker", *nodes):
        raise CliError(f"component: expected gm, broker or a node name ({', '.join(nodes)}), got {what!r}")
    broker = record.get("mqtt_broker") or {}
    if what == "broker" and not broker.get("embedded"):
        raise CliError(f"the MQTT broker of {state} is external ({broker.get('address')}): restart it yourself")
    if what == "gm" and record.get("gm") and _procs.alive(int(record["gm"])):
        _stop_gm_keeping_workers(int(record["gm"]))
    elif what == "broker" and broker.get("pid"):
        _procs.terminate([int(broker["pid"])], 10.0)
    elif what in nodes and (record["lc"].get(what) or {}).get("pid"):
        _procs.terminate([int(record["lc"][what]["pid"])], 10.0)
    external = "" if broker.get("embedded", True) else str(broker.get("address", ""))
    started = _ensure(state, record, external, args.timeout)
    print(f"restarted {what} (state dir {state}; started: {', '.join(started) or 'nothing'})")
    return 0


def _stop_gm_keeping_workers(pid: int, timeout: float = 30.0) -> None:
    """SIGUSR2: the GM stops and leaves its workers running for the next GM to adopt."""
    try:
        os.kill(pid, signal.SIGUSR2)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while _procs.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _procs.alive(pid):
        os.kill(pid, signal.SIGKILL)  # the next GM adopts the workers all the same


def down(args: argparse.Namespace) -> int:
    state = Path(args.state_dir).resolve()
    record = _record(state)
    pids = [int(v["pid"]) for v in (record.get("lc") or {}).values() if v.get("pid")]
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
    record = _record(state)
    if ready is None:
        print(f"sedna local is not running (state dir {state})" if not record else
              f"sedna local is partly running: the GM is NOT running (state dir {state}; "
              "`sedna local up` starts what is missing)")
    else:
        print(f"sedna local is up (state dir {state}, GM pid {ready['pid']})")
        _print_addresses(ready, record)
    for node, lc in (record.get("lc") or {}).items():
        if lc.get("pid"):
            print(f"  LC {node}: pid {lc['pid']} {'running' if _running(lc) else 'NOT running'}")
    broker = record.get("mqtt_broker") or {}
    if broker.get("pid"):
        print(f"  MQTT broker: pid {broker['pid']} {'running' if _running(broker) else 'NOT running'}")
    return 0 if ready is not None else 1
