"""LocalBackend: everything the GM process runs in local mode, wired together.

The SQLite store (``<state_dir>/state.db``) is the cluster; around it run the Deployment
controller, the Service proxy, the process runtime (logs and pids under ``state_dir``) and the
REST API the ``sedna`` CLI talks to (127.0.0.1, bearer ``token``). Each simulated node gets a
``Node`` object, and a state dir ``<state_dir>/lc/<node>`` (its LC's, under ``sedna local up``)
where its Pods' persistent ``STATE_DIR`` live. Pod and Service IPs come from the cluster's own loopback
block (:mod:`.loopback`: recorded in ``<state_dir>/loopback.json``, held from :meth:`LocalBackend.start`
to :meth:`LocalBackend.stop`, so two clusters on one machine never share an address). ``gm.__main__``
builds one, calls :meth:`LocalBackend.start`, hands :attr:`LocalBackend.store` to the controllers, and
calls :meth:`LocalBackend.stop` on exit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gm.cluster.interface import NODE, AlreadyExists, Obj
from gm.cluster.local import loopback, processes
from gm.cluster.local.addresses import Block
from gm.cluster.local.api import ServerHandle, create_api, serve_api
from gm.cluster.local.deployments import DeploymentController
from gm.cluster.local.images import CATALOG_FILE, ImageCatalog
from gm.cluster.local.runtime import Backoff, ProcessRuntime
from gm.cluster.local.services import ServiceProxy
from gm.cluster.local.store import LocalStore
from sedna.common.log import get_logger

_LOG = get_logger(__name__)


class LocalBackend:
    """The embedded cluster: store + Deployments + Services + process runtime + REST API.

    Parameters
    ----------
    state_dir: directory for ``state.db``, ``logs/`` and ``pids.json`` (created if missing).
    nodes: simulated node names (``cloud``, ``edge-0``, ...); the first is the default for Deployments
        unless ``cloud`` is among them.
    token: bearer token the REST API requires.
    dry_run: run no processes; Pods are marked Running at once (control-plane benchmarks).
    api_host, api_port: where the REST API listens (port 0: any free port; see :attr:`api_port`);
        ``api_port=None`` serves no API.
    validator: checks created/updated objects for the API, returning ``(field, message)`` violations.
    image_catalog: the image catalog file (default ``<state_dir>/images.yaml``; see :mod:`.images`).
    pod_env: env every Pod's containers get unless they set it (tokens and credentials for the workers).
    loopback_block: the loopback block to use (``127.B.0.0/16``; default: the one the state dir recorded, else
        a free one), see :mod:`.loopback`.
    """

    def __init__(self, state_dir: str | Path, nodes: Sequence[str], token: str, dry_run: bool = False,
                 api_host: str = "127.0.0.1", api_port: int | None = 0,
                 validator: Callable[[Obj], list[tuple[str, str]]] | None = None,
                 backoff: Backoff | None = None, image_catalog: str | Path | None = None,
                 pod_env: Mapping[str, str] | None = None, loopback_block: str = "") -> None:
        if not nodes:
            raise ValueError("nodes: at least one node name is required (e.g. ['cloud', 'edge-0'])")
        if api_port is not None and not token:
            raise ValueError("token: a non-empty bearer token is required to serve the API")
        self.state_dir, self.nodes, self.token = Path(state_dir), list(nodes), token
        self.api_host, self._api_port, self.validator = api_host, api_port, validator
        self.loopback_block = loopback_block
        self._claim: loopback.Claim | None = None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = LocalStore(self.state_dir / "state.db")
        default_node = "cloud" if "cloud" in self.nodes else self.nodes[0]
        self.deployments = DeploymentController(self.store, default_node=default_node)
        self.services = ServiceProxy(self.store)
        catalog = ImageCatalog(image_catalog if image_catalog is not None else self.state_dir / CATALOG_FILE)
        self.runtime = ProcessRuntime(self.store, self.state_dir, nodes=set(self.nodes), dry_run=dry_run,
                                      backoff=backoff, image_catalog=catalog, node_state=self.node_state_dir,
                                      base_env={**processes.default_base_env(), **(pod_env or {})})
        self._api: ServerHandle | None = None
        self.api_app: Any = None
        self._started = False

    def node_state_dir(self, node: str) -> Path:
        """The state dir of simulated node ``node``."""
        return self.state_dir / "lc" / node

    @property
    def api_port(self) -> int | None:
        """The port the REST API listens on (after :meth:`start`)."""
        return self._api.port if self._api else None

    @property
    def block(self) -> Block | None:
        """The loopback block Pods and Services get addresses from (after :meth:`start`)."""
        return self._claim.block if self._claim else None

    def start(self) -> None:
        """Claim the loopback block, register the nodes, then start the runtime, controllers, proxy and API."""
        self._claim = loopback.claim(self.state_dir, self.loopback_block)
        self.runtime.block = self.services.block = self._claim.block
        for name in self.nodes:
            try:
                labels = {"kubernetes.io/hostname": name}
                if name != "cloud":
                    labels["node-role.kubernetes.io/edge"] = ""
                self.store.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}})
            except AlreadyExists:
                pass
            self.store.patch_status(NODE, "", name, {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                                                     "conditions": [{"type": "Ready", "status": "True"}]})
        self.runtime.start()
        self.deployments.start()
        self.services.start()
        if self._api_port is not None:
            app = create_api(self.store, self.token, self.validator, log_dir=self.runtime.log_dir)
            self._api = serve_api(app, self.api_host, self._api_port)
            self.api_app = app  # the GM mounts its dashboard here
        self._started = True
        _LOG.info("local backend started in %s (nodes: %s, API port: %s, loopback block %s)", self.state_dir,
                  ", ".join(self.nodes), self.api_port, self._claim.block)

    def stop(self, keep_workers: bool = False) -> None:
        """Stop the API, controllers and proxy, terminate every Pod process (``keep_workers``: leave them for
        the next GM to adopt), and close the store."""
        if self._api is not None:
            self._api.stop()
            self._api = None
        if self._started:
            self.services.stop()
            self.deployments.stop()
            self.runtime.stop(keep_running=keep_workers)
        self.store.close()
        self._started = False
        if self._claim is not None:
            self._claim.close()
            self._claim = None
