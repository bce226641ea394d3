"""Settings of the Global Manager, built once in ``main()`` and passed down.

:class:`GMSettings` is what ``python -m gm`` reads from flags and env
(:func:`from_args`); :class:`ControllerSettings` is the part controllers need. Every
error names the flag or env var, the bad value and the expected form.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gm.errors import SettingsError

__all__ = ["DEFAULT_LC_SERVER", "ControllerSettings", "GMSettings", "SettingsError", "add_arguments", "from_args"]

DEFAULT_LC_SERVER = "http://127.0.0.1:9100"


@dataclass(frozen=True)
class ControllerSettings:
    """What controllers need to know about the cluster they run on."""

    lc_servers: Mapping[str, str] = field(default_factory=dict)
    """``LC_SERVER`` per node name (the URL of that node's Local Controller)."""
    default_lc_server: str = DEFAULT_LC_SERVER
    """``LC_SERVER`` for nodes not in ``lc_servers`` (a hostNetwork LC on Kubernetes)."""
    lc_tokens: Mapping[str, str] = field(default_factory=dict)
    """``LC_TOKEN`` per node, injected into workers on that node (empty: not injected)."""
    default_cloud_node: str | None = None
    """Node of cloud workers whose template names none (``cloud`` in the local backend)."""
    nodes: tuple[str, ...] = ()
    """Known node names; an edge worker on another node is reported. Empty: not checked."""
    mqtt_broker: str = ""
    """``host:port`` injected as ``MQTT_BROKER`` into edge workers (empty: not injected)."""
    wait_for_cluster_ip: bool = False
    """Create an edge worker only once its cloud Service has a clusterIP (the local backend allocates
    them asynchronously; Kubernetes does it in the create call)."""
    workers: int = 4
    """Worker threads per controller."""
    resync_period: float = 300.0
    """Seconds between full resyncs of every informer cache."""
    pod_log_dir: str = ""
    """Where the local runtime writes Pod logs (``<dir>/<namespace>_<pod>_<container>.log``), so a
    failure condition can name the file; empty on Kubernetes (``kubectl logs``)."""

    def lc_server(self, node: str) -> str:
        """The LC URL for workers on ``node``."""
        return self.lc_servers.get(node, self.default_lc_server)


@dataclass(frozen=True)
class GMSettings:
    """Everything ``python -m gm`` is configured with."""

    backend: str = "local"
    """``local`` (SQLite store + process runtime) or ``kube`` (a Kubernetes API server)."""
    state_dir: Path = Path(".sedna")
    """Where the local store, logs and the ready file live."""
    api_host: str = "127.0.0.1"
    """Bind address of the local backend's REST API."""
    api_port: int = 7070
    """Port of the REST API (0: any free port; the ready file tells which)."""
    hub_host: str = "127.0.0.1"
    """Bind address of the edge hub (gRPC server for LCs)."""
    hub_port: int = 9000
    """Port of the edge hub (0: any free port; the ready file tells which)."""
    metrics_port: int = 0
    """Port of ``/metrics`` and ``/healthz`` on ``api_host`` (0: any free port)."""
    token: str = ""
    """Bearer token of the REST API and ``/metrics``."""
    node_tokens: Mapping[str, str] = field(default_factory=dict)
    """Hub token of every node's LC."""
    nodes: tuple[str, ...] = ("cloud", "edge-0", "edge-1")
    kubeconfig: str = ""
    dry_run: bool = False
    """Local backend: record Pods as running without starting processes (benchmarks)."""
    controllers: ControllerSettings = field(default_factory=ControllerSettings)

    @property
    def ready_file(self) -> Path:
        """The JSON file written once every server listens."""
        return self.state_dir / "gm.ready.json"


def _parse_pairs(raw: str, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name or not value:
            raise SettingsError(f"{flag}: expected NODE=VALUE[,NODE=VALUE...], got {part!r}")
        out[name] = value
    return out


def _read_token_file(path: str, flag: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise SettingsError(f"{flag}: cannot read {path!r}: {exc.strerror}") from None


def _read_node_tokens(path: str, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    text = _read_token_file(path, flag)
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        node, sep, token = line.partition("=")
        if not sep or not node.strip() or not token.strip():
            raise SettingsError(f"{flag}: {path}:{lineno}: expected NODE=TOKEN, got {line!r}")
        out[node.strip()] = token.strip()
    return out


def add_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Declare every flag; defaults come from ``SEDNA_GM_*`` env vars."""
    env = environ.get
    parser.add_argument("--backend", choices=("local", "kube"), default=env("SEDNA_GM_BACKEND", "local"))
    parser.add_argument("--state-dir", default=env("SEDNA_GM_STATE_DIR", ".sedna"))
    parser.add_argument("--api-host", default=env("SEDNA_GM_API_HOST", "127.0.0.1"))
    parser.add_argument("--api-port", default=env("SEDNA_GM_API_PORT", "7070"))
    parser.add_argument("--hub-host", default=env("SEDNA_GM_HUB_HOST", "127.0.0.1"))
    parser.add_argument("--hub-port", default=env("SEDNA_GM_HUB_PORT", "9000"))
    parser.add_argument("--metrics-port", default=env("SEDNA_GM_METRICS_PORT", "0"))
    parser.add_argument("--token-file", default=env("SEDNA_GM_TOKEN_FILE", ""),
                        help="file holding the API bearer token (default: <state-dir>/token)")
    parser.add_argument("--node-tokens-file", default=env("SEDNA_GM_NODE_TOKENS_FILE", ""),
                        help="NODE=TOKEN lines, one per LC (default: <state-dir>/node-tokens)")
    parser.add_argument("--worker-tokens-file", default=env("SEDNA_GM_WORKER_TOKENS_FILE", ""),
                        help="NODE=TOKEN lines: the LC_TOKEN workers on each node present to their LC "
                             "(default: <state-dir>/worker-tokens)")
    parser.add_argument("--nodes", default=env("SEDNA_GM_NODES", "cloud,edge-0,edge-1"))
    parser.add_argument("--lc-servers", default=env("SEDNA_GM_LC_SERVERS", ""),
                        help="NODE=URL,... LC_SERVER per node")
    parser.add_argument("--default-lc-server", default=env("SEDNA_GM_DEFAULT_LC_SERVER", DEFAULT_LC_SERVER))
    parser.add_argument("--mqtt-broker", default=env("SEDNA_GM_MQTT_BROKER", ""))
    parser.add_argument("--kubeconfig", default=env("KUBECONFIG", ""))
    parser.add_argument("--workers", default=env("SEDNA_GM_WORKERS", "4"))
    parser.add_argument("--resync-seconds", default=env("SEDNA_GM_RESYNC_SECONDS", "300"))
    parser.add_argument("--dry-run", action="store_true", default=env("SEDNA_GM_DRY_RUN", "") == "1")


def _int(value: str, flag: str, low: int = 0, high: int = 65535) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{flag}: expected an integer, got {value!r}") from None
    if not low <= number <= high:
        raise SettingsError(f"{flag}: expected {low}..{high}, got {number}")
    return number


def from_args(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> GMSettings:
    """Parse flags (and ``SEDNA_GM_*`` env) into :class:`GMSettings`; raise :class:`SettingsError`."""
    env = dict(os.environ if environ is None else environ)
    parser = argparse.ArgumentParser(prog="python -m gm", description="Sedna-py Global Manager")
    add_arguments(parser, env)
    args = parser.parse_args(argv)
    state_dir = Path(args.state_dir).resolve()
    token_file = args.token_file or str(state_dir / "token")
    token = _read_token_file(token_file, "--token-file")
    if not token:
        raise SettingsError(f"--token-file: {token_file!r} is empty; put a bearer token in it")
    tokens_file = args.node_tokens_file or str(state_dir / "node-tokens")
    node_tokens = _read_node_tokens(tokens_file, "--node-tokens-file") if Path(tokens_file).exists() else {}
    worker_file = args.worker_tokens_file or str(state_dir / "worker-tokens")
    worker_tokens = _read_node_tokens(worker_file, "--worker-tokens-file") if Path(worker_file).exists() else {}
    nodes = tuple(n.strip() for n in args.nodes.split(",") if n.strip())
    if args.backend == "local" and not nodes:
        raise SettingsError("--nodes: the local backend needs at least one node, e.g. cloud,edge-0")
    resync = float(_int(args.resync_seconds, "--resync-seconds", 1, 86400))
    controllers = ControllerSettings(
        lc_servers=_parse_pairs(args.lc_servers, "--lc-servers"), default_lc_server=args.default_lc_server,
        lc_tokens=worker_tokens,
        default_cloud_node="cloud" if args.backend == "local" else None,
        nodes=nodes if args.backend == "local" else (), mqtt_broker=args.mqtt_broker,
        wait_for_cluster_ip=args.backend == "local",
        workers=_int(args.workers, "--workers", 1, 64), resync_period=resync,
        pod_log_dir=str(state_dir / "logs") if args.backend == "local" else "")
    return GMSettings(
        backend=args.backend, state_dir=state_dir, api_host=args.api_host,
        api_port=_int(args.api_port, "--api-port"), hub_host=args.hub_host,
        hub_port=_int(args.hub_port, "--hub-port"), metrics_port=_int(args.metrics_port, "--metrics-port"),
        token=token, node_tokens=node_tokens, nodes=nodes, kubeconfig=args.kubeconfig, dry_run=args.dry_run,
        controllers=controllers)
