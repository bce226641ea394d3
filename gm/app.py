"""Assemble the Global Manager: a backend, the controllers, the edge hub and health.

:class:`GlobalManager` is what ``python -m gm`` runs, built from
:class:`~gm.settings.GMSettings`. In the ``local`` backend it starts the embedded
store + process runtime (:mod:`gm.cluster.local.backend`) and its REST API validated
by :func:`gm.schema.validate`; in the ``kube`` backend it talks to an API server
(:mod:`gm.cluster.kube`). Either way it starts the node identity (:mod:`gm.identity`: who
each node is, and the keys worker credentials derive from), runs every controller
(:mod:`gm.controllers`, issuing worker credentials through it) and the edge hub LCs join and
dial (:mod:`gm.hub`). Once everything listens
it writes the ready file (JSON with the addresses) that ``sedna local up`` waits for.
Started again on the same state dir after a crash (``kill -9``) or a :meth:`GlobalManager.stop`
with ``keep_workers``, the local backend adopts the workers still running instead of recreating
them; the LCs and the MQTT broker are separate processes that never depend on the GM's life.
The web dashboard (:mod:`gm.dashboard`) is mounted in the local API at ``/dashboard``, or served
alone on the API's address with the kube backend; it gets the hub's node sessions as a function.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from gm.cluster.interface import Cluster, Obj
from gm.controllers.setup import UPSTREAM_HANDLERS, setup_controllers
from gm.health import HealthServer
from gm.runtime.reconciling import Manager
from gm.settings import GMSettings

log = logging.getLogger(__name__)


def validate_object(obj: Obj) -> list[tuple[str, str]]:
    """What the local API checks before storing ``obj``: a ``sedna.io`` object's CRD schema violations."""
    if not str(obj.get("apiVersion", "")).startswith("sedna.io/"):
        return []  # core kinds are the runtime's business, not the CRD schemas'
    from gm import schema

    return schema.validate(obj)


GC_THRESHOLDS = (50_000, 10, 10)
"""The GM's collector thresholds: a young collection per 50 000 net allocations instead of 700."""


def settle_startup_heap() -> None:
    """Move what start-up allocated out of the collector's reach, and collect young objects less often.

    Objects alive now (modules, caches, the hub's routing table) live as long as the process;
    frozen, no full collection scans them again. Almost everything the GM allocates later is
    freed by reference counting, yet with Python's default thresholds a fan-out to many nodes
    runs older-generation collections on the hub's thread; :data:`GC_THRESHOLDS` makes them
    rare. Cyclic garbage is still collected, later. ``bench.edge_hub`` measures the effect.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class GlobalManager:
    """The running GM: start(), then stop() (in reverse order)."""

    def __init__(self, settings: GMSettings) -> None:
        self.settings = settings
        self.cluster: Cluster | None = None
        self.manager: Manager | None = None
        self._backend: Any = None
        self._hub: Any = None
        self.identity: Any = None
        self._dashboard: Any = None
        self._health: HealthServer | None = None
        self.addresses: dict[str, Any] = {}

    def start(self) -> None:
        """Start backend, API, controllers, hub and health; raise if any fails to start."""
        s = self.settings
        s.state_dir.mkdir(parents=True, exist_ok=True)
        if s.backend == "local":
            self.cluster = self._start_local()
        else:
            self.cluster = self._start_kube()
        if s.controllers.mqtt_broker:  # injected into edge workers; `sedna device simulate` reads it here
            self.addresses["mqtt_broker"] = s.controllers.mqtt_broker
        self.identity = self._start_identity(self.cluster)
        from gm.workloads.credentials import WorkerCredentials

        controllers = replace(s.controllers, credentials=WorkerCredentials(self.identity))
        self.manager = Manager(self.cluster, controllers.resync_period)
        setup_controllers(self.manager, controllers)
        self.manager.start()
        self._hub = self._start_hub(self.cluster)
        self._dashboard = self._start_dashboard(self.cluster)
        self._health = HealthServer(self.manager.registry, s.token, self.healthy, s.api_host, s.metrics_port)
        self._health.start()
        self.addresses["metrics"] = f"http://{s.api_host}:{self._health.port}/metrics"
        self.addresses["healthz"] = f"http://{s.api_host}:{self._health.port}/healthz"
        settle_startup_heap()

    def _start_local(self) -> Cluster:
        from gm import schema
        from gm.cluster.local.backend import LocalBackend

        s = self.settings
        schema.warm()  # compile the CRD validators now rather than in the first API request
        self._backend = LocalBackend(s.state_dir, list(s.nodes), s.token, dry_run=s.dry_run, api_host=s.api_host,
                                     api_port=s.api_port, validator=validate_object, image_catalog=s.image_catalog,
                                     pod_env=s.pod_env, loopback_block=s.loopback_block)
        self._backend.start()
        self.addresses["api"] = f"http://{s.api_host}:{self._backend.api_port}"
        self.addresses["loopback"] = str(self._backend.block)
        return self._backend.store  # type: ignore[no-any-return]

    def _start_kube(self) -> Cluster:
        from gm.cluster.kube import KubeCluster

        return KubeCluster.auto(self.settings.kubeconfig or None)

    def _start_identity(self, cluster: Cluster) -> Any:
        from gm.identity import BootstrapToken, IdentitySettings, NodeIdentity

        s = self.settings
        identity = NodeIdentity(cluster, IdentitySettings(
            namespace=s.namespace, credential_ttl=s.node_credential_ttl, preshared=dict(s.node_tokens),
            bootstrap_tokens=(BootstrapToken(s.bootstrap_token),) if s.bootstrap_token else (),
            bootstrap_file=s.bootstrap_tokens_file))
        identity.start()
        return identity

    def _start_hub(self, cluster: Cluster) -> Any:
        from gm import hub
        from gm.hub.server import HubTLS
        from gm.hub.sessions import HubSettings

        s = self.settings
        tls = HubTLS(s.hub_tls_cert, s.hub_tls_key, s.hub_client_ca) if s.hub_tls_cert else None
        handle = hub.start_hub(cluster, s.hub_host, s.hub_port, tls=tls, identity=self.identity,
                               settings=HubSettings(default_node=s.controllers.default_cloud_node or ""))
        for kind, handler in UPSTREAM_HANDLERS.items():
            handle.handlers.register(kind, handler)
        self.addresses["hub"] = f"{s.hub_host}:{handle.port}"
        return handle

    def _start_dashboard(self, cluster: Cluster) -> Any:
        """The web dashboard: in the local API (``<api>/dashboard/``), else on its own at api_host:api_port."""
        from gm.dashboard import start_dashboard

        s = self.settings
        sessions = self._hub.node_sessions if self._hub is not None else None
        api_app = getattr(self._backend, "api_app", None)
        handle = start_dashboard(cluster, s.token, sessions, api_app=api_app, host=s.api_host, port=s.api_port)
        self.addresses["dashboard"] = handle.url or f"{self.addresses['api']}/dashboard/"
        return handle

    def healthy(self) -> bool:
        """Every informer has synced and every controller thread is alive."""
        if self.manager is None:
            return False
        informers_ok = all(i.synced.is_set() for i in self.manager.informers.values())
        return informers_ok and not any(c.queue.is_shut_down for c in self.manager.controllers)

    def write_ready_file(self) -> None:
        """Atomically write the ready file with the addresses (no secrets in it)."""
        s = self.settings
        body = {"pid": os.getpid(), "backend": s.backend, "state_dir": str(s.state_dir), "nodes": list(s.nodes),
                "started": time.time(), **self.addresses}
        tmp = s.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, indent=1))
        tmp.replace(s.ready_file)

    def stop(self, keep_workers: bool = False) -> None:
        """Stop everything that started, newest first; remove the ready file. With ``keep_workers`` the local
        backend's worker processes keep running, for the next GM on this state dir to adopt."""
        self.settings.ready_file.unlink(missing_ok=True)
        backend = self._backend
        stop_backend = None if backend is None else (lambda: backend.stop(keep_workers=keep_workers))
        stops: list[tuple[str, Callable[[], object] | None]] = [
            ("dashboard", self._dashboard.stop if self._dashboard is not None else None),
            ("health", self._health.stop if self._health is not None else None),
            ("hub", self._hub.stop if self._hub is not None else None),
            ("controllers", self.manager.stop if self.manager is not None else None),
            ("identity", self.identity.stop if self.identity is not None else None), ("backend", stop_backend)]
        for name, stop in stops:
            if stop is None:
                continue
            try:
                stop()
            except Exception:  # keep stopping the rest; the failure is logged with its traceback
                log.exception("stopping %s failed", name)
