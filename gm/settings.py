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
from typing import TYPE_CHECKING

from gm.errors import SettingsError

if TYPE_CHECKING:
    from gm.workloads.credentials import WorkerCredentials

__all__ = ["DEFAULT_LC_SERVER", "ControllerSettings", "GMSettings", "SettingsError", "add_arguments", "from_args"]

DEFAULT_LC_SERVER = "http://127.0.0.1:9100"


@dataclass(frozen=True)
class ControllerSettings:
    """What controllers need to know about the cluster they run on."""

    lc_servers: Mapping[str, str] = field(default_factory=dict)
    """``LC_SERVER`` per node name (the URL of that node's Local Controller)."""
    default_lc_server: str = DEFAULT_LC_SERVER
    """``LC_SERVER`` for nodes not in ``lc_servers`` (a hostNetwork LC on Kubernetes)."""
    credentials: WorkerCredentials | None = None
    """Issues each worker its ``LC_TOKEN`` (and federated learning's credentials); the GM sets it
    once its node identity has started (:mod:`gm.workloads.credentials`)."""
    lc_tokens: Mapping[str, str] = field(default_factory=dict)
    """Legacy: one shared ``LC_TOKEN`` per node, used only without ``credentials`` (tests)."""
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
    storage_injection: bool = False
    """Rewrite ``http(s)://`` and ``s3://`` model URLs into storage-initializer downloads (both backends) and,
    with ``storage_host_paths``, local paths into hostPath mounts."""
    storage_host_paths: bool = True
    """Local model paths become hostPath mounts (the kube backend: workers run on other machines); False keeps
    them as they are (the local backend: one machine)."""
    edge_scheduling: bool = False
    """Edge workers tolerate KubeEdge's edge taint; the JI edge worker uses hostNetwork (the kube backend)."""
    storage_image: str = "sedna-py:0.1.0"
    """Image of the storage-initializer init container."""
    pod_log_dir: str = ""
    """Where the local runtime writes Pod logs (``<dir>/<namespace>_<pod>_<container>.log``), so a
    failure condition can name the file; empty on Kubernetes (``kubectl logs``)."""
    kb_server: str = ""
    """A shared knowledge-base server every LifelongLearningJob uses (empty: each job runs its own)."""
    kb_token: str = ""
    """The bearer token of ``kb_server``."""
    stage_retry_base: float = 10.0
    """Seconds a learning job waits after its first failed stage before the next round; doubles with
    each failure in a row (CrashLoopBackOff-style)."""
    stage_retry_cap: float = 300.0
    """The longest that wait gets."""

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
    """Pre-shared hub tokens (``NODE=TOKEN``), for nodes set up without a join (``docs/identity.md``)."""
    namespace: str = "sedna"
    """Namespace of the node credential Secrets and the identity key."""
    bootstrap_tokens_file: str = ""
    """Bootstrap tokens LCs join with, one per line (read again when it changes; missing: none)."""
    bootstrap_token: str = ""
    """One more bootstrap token, without limits."""
    node_credential_ttl: float = 30 * 86400.0
    """Seconds a node token is valid (the hub rotates it before)."""
    hub_tls_cert: str = ""
    """PEM certificate of the edge hub (with ``hub_tls_key``); empty serves plaintext."""
    hub_tls_key: str = ""
    hub_client_ca: str = ""
    """Require LC client certificates signed by this CA, naming their node (mutual TLS)."""
    nodes: tuple[str, ...] = ("cloud", "edge-0", "edge-1")
    kubeconfig: str = ""
    dry_run: bool = False
    """Local backend: record Pods as running without starting processes (benchmarks)."""
    image_catalog: Path | None = None
    """Local backend: the image catalog file (image -> command for containers without one;
    default ``<state_dir>/images.yaml``), see :mod:`gm.cluster.local.images`."""
    loopback_block: str = ""
    """Local backend: the loopback block of Pod and Service IPs, ``127.B.0.0/16`` (default: the one the state
    dir recorded, else a free one), see :mod:`gm.cluster.local.loopback`."""
    pod_env: Mapping[str, str] = field(default_factory=dict)
    """Local backend: env every Pod's containers get unless they set it (``sedna local up``'s inference
    tokens and broker credentials, from ``--worker-secrets-file``)."""
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


def _check_bootstrap(path: str, token: str) -> None:
    """Refuse a malformed bootstrap tokens file or a short ``--bootstrap-token`` at start."""
    from gm.identity import bootstrap

    if token and len(token) < bootstrap.MIN_LENGTH:
        raise SettingsError(f"--bootstrap-token: must be at least {bootstrap.MIN_LENGTH} characters")
    if Path(path).exists():
        bootstrap.parse(_read_token_file(path, "--bootstrap-tokens-file"), path)


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
    parser.add_argument("--bootstrap-tokens-file", default=env("SEDNA_GM_BOOTSTRAP_TOKENS_FILE", ""),
                        help="bootstrap tokens LCs join with: 'TOKEN [expires=WHEN] [nodes=A,B] [uses=N]' lines "
                             "(default: <state-dir>/bootstrap-tokens)")
    parser.add_argument("--bootstrap-token", default=env("SEDNA_GM_BOOTSTRAP_TOKEN", ""),
                        help="one more bootstrap token, without limits")
    parser.add_argument("--namespace", default=env("SEDNA_GM_NAMESPACE", env("POD_NAMESPACE", "sedna")),
                        help="namespace of the node credential Secrets (default: POD_NAMESPACE, else sedna)")
    parser.add_argument("--node-credential-ttl", default=env("SEDNA_GM_NODE_CREDENTIAL_TTL", str(30 * 86400)),
                        help="seconds a node token is valid (default 30 days)")
    parser.add_argument("--hub-tls-cert", default=env("SEDNA_GM_HUB_TLS_CERT", ""))
    parser.add_argument("--hub-tls-key", default=env("SEDNA_GM_HUB_TLS_KEY", ""))
    parser.add_argument("--hub-client-ca", default=env("SEDNA_GM_HUB_CLIENT_CA", ""),
                        help="require LC client certificates signed by this CA (mutual TLS)")
    parser.add_argument("--worker-secrets-file", default=env("SEDNA_GM_WORKER_SECRETS_FILE", ""),
                        help="NAME=VALUE lines the local runtime adds to every Pod's env unless it sets them "
                             "(default: <state-dir>/worker-secrets when it exists)")
    parser.add_argument("--nodes", default=env("SEDNA_GM_NODES", "cloud,edge-0,edge-1"))
    parser.add_argument("--lc-servers", default=env("SEDNA_GM_LC_SERVERS", ""),
                        help="NODE=URL,... LC_SERVER per node")
    parser.add_argument("--default-lc-server", default=env("SEDNA_GM_DEFAULT_LC_SERVER", DEFAULT_LC_SERVER))
    parser.add_argument("--mqtt-broker", default=env("SEDNA_GM_MQTT_BROKER", ""))
    parser.add_argument("--kb-server", default=env("SEDNA_GM_KB_SERVER", ""),
                        help="a shared knowledge-base server URL for every lifelong-learning job "
                             "(default: each job runs its own)")
    parser.add_argument("--kb-token-file", default=env("SEDNA_GM_KB_TOKEN_FILE", ""),
                        help="file holding the bearer token of --kb-server")
    parser.add_argument("--kubeconfig", default=env("KUBECONFIG", ""))
    parser.add_argument("--workers", default=env("SEDNA_GM_WORKERS", "4"))
    parser.add_argument("--resync-seconds", default=env("SEDNA_GM_RESYNC_SECONDS", "300"))
    parser.add_argument("--stage-retry-base-seconds", default=env("SEDNA_GM_STAGE_RETRY_BASE_SECONDS", "10"),
                        help="back-off after a learning job's first failed stage; doubles per failure in a row")
    parser.add_argument("--stage-retry-cap-seconds", default=env("SEDNA_GM_STAGE_RETRY_CAP_SECONDS", "300"))
    parser.add_argument("--loopback-block", default=env("SEDNA_GM_LOOPBACK_BLOCK", ""),
                        help="local backend: Pod and Service IPs from this 127.B.0.0/16 (default: the state dir's, "
                             "else a free one)")
    parser.add_argument("--dry-run", action="store_true", default=env("SEDNA_GM_DRY_RUN", "") == "1")
    parser.add_argument("--image-catalog", default=env("SEDNA_GM_IMAGE_CATALOG", ""),
                        help="local backend: YAML file 'images: {IMAGE: {command: [...]}}' telling what an image "
                             "runs for containers without a command (default: <state-dir>/images.yaml)")


def _int(value: str, flag: str, low: int = 0, high: int = 65535) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{flag}: expected an integer, got {value!r}") from None
    if not low <= number <= high:
        raise SettingsError(f"{flag}: expected {low}..{high}, got {number}")
    return number


def _seconds(value: str, flag: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{flag}: expected a number of seconds, got {value!r}") from None
    if not 0 <= number <= 86400:
        raise SettingsError(f"{flag}: expected 0..86400 seconds, got {number:g}")
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
    bootstrap_file = args.bootstrap_tokens_file or str(state_dir / "bootstrap-tokens")
    _check_bootstrap(bootstrap_file, args.bootstrap_token)
    if bool(args.hub_tls_cert) != bool(args.hub_tls_key):
        raise SettingsError("--hub-tls-cert and --hub-tls-key go together")
    if args.hub_client_ca and not args.hub_tls_cert:
        raise SettingsError("--hub-client-ca needs --hub-tls-cert and --hub-tls-key (mutual TLS is TLS)")
    secrets_file = args.worker_secrets_file or str(state_dir / "worker-secrets")
    pod_env = _read_node_tokens(secrets_file, "--worker-secrets-file") \
        if args.worker_secrets_file or Path(secrets_file).exists() else {}
    nodes = tuple(n.strip() for n in args.nodes.split(",") if n.strip())
    if args.backend == "local" and not nodes:
        raise SettingsError("--nodes: the local backend needs at least one node, e.g. cloud,edge-0")
    resync = float(_int(args.resync_seconds, "--resync-seconds", 1, 86400))
    image_catalog = Path(args.image_catalog).resolve() if args.image_catalog else state_dir / "images.yaml"
    _check_image_catalog(image_catalog, bool(args.image_catalog))
    if args.loopback_block:
        from gm.cluster.local.addresses import parse_block

        try:
            parse_block(args.loopback_block, "--loopback-block")
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
    kb_server = args.kb_server.strip().rstrip("/")
    if kb_server and not kb_server.startswith(("http://", "https://")):
        raise SettingsError(f"--kb-server: expected an http:// or https:// URL, got {args.kb_server!r}")
    kb_token = _read_token_file(args.kb_token_file, "--kb-token-file") if args.kb_token_file else ""
    controllers = ControllerSettings(
        lc_servers=_parse_pairs(args.lc_servers, "--lc-servers"), default_lc_server=args.default_lc_server,
        default_cloud_node="cloud" if args.backend == "local" else None,
        nodes=nodes if args.backend == "local" else (), mqtt_broker=args.mqtt_broker,
        wait_for_cluster_ip=args.backend == "local", storage_injection=True,
        storage_host_paths=args.backend == "kube",
        edge_scheduling=args.backend == "kube",
        workers=_int(args.workers, "--workers", 1, 64), resync_period=resync,
        pod_log_dir=str(state_dir / "logs") if args.backend == "local" else "", kb_server=kb_server,
        kb_token=kb_token,
        stage_retry_base=_seconds(args.stage_retry_base_seconds, "--stage-retry-base-seconds"),
        stage_retry_cap=_seconds(args.stage_retry_cap_seconds, "--stage-retry-cap-seconds"))

    return GMSettings(
        backend=args.backend, state_dir=state_dir, api_host=args.api_host,
        api_port=_int(args.api_port, "--api-port"), hub_host=args.hub_host,
        hub_port=_int(args.hub_port, "--hub-port"), metrics_port=_int(args.metrics_port, "--metrics-port"),
        token=token, node_tokens=node_tokens, nodes=nodes, kubeconfig=args.kubeconfig, dry_run=args.dry_run,
        image_catalog=image_catalog, loopback_block=args.loopback_block.strip(),
        controllers=controllers, namespace=args.namespace, bootstrap_tokens_file=bootstrap_file,
        bootstrap_token=args.bootstrap_token,
        node_credential_ttl=float(_int(args.node_credential_ttl, "--node-credential-ttl", 60, 10 * 365 * 86400)),
        hub_tls_cert=args.hub_tls_cert, hub_tls_key=args.hub_tls_key, hub_client_ca=args.hub_client_ca,
        pod_env=pod_env)


def _check_image_catalog(path: Path, explicit: bool) -> None:
    """A named catalog must exist; any catalog must parse (the error names the file and the image)."""
    from gm.cluster.local.images import parse_catalog

    if not path.exists():
        if explicit:
            raise SettingsError(f"--image-catalog: {str(path)!r} does not exist")
        return
    try:
        parse_catalog(path.read_text(), str(path))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"--image-catalog: {exc}") from None
