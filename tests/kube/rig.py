"""The Kubernetes test rig: emulated API server, GM and LCs started from the install manifests, a kubelet.

:class:`Rig` is a context manager. GM runs ``python -m gm`` with the env of the rendered GM
Deployment (kube backend, KUBECONFIG pointing at the emulator instead of the in-cluster account),
each node's LC ``python -m lc`` with the env of the rendered LC DaemonSet, joining with the one
bootstrap token of the Secrets (usable once per node, only by the rig's nodes), and
:class:`~tests.kube.kubelet.RigKubelet` runs the worker Pods GM creates.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import kubernetes.client

from gm.cluster.kube import KubeCluster
from tests.kube import manifests
from tests.kube.kubelet import RigKubelet
from tests.support.procs import free_port, running
from tests.support.waiting import eventually

SERVICE_PREFIX = "127.0.3."
"""ClusterIPs of the rig's Services: loopback, so even an address the kubelet did not translate stays here."""


def kubeconfig(path: Path, url: str) -> Path:
    """A kubeconfig for the emulated API server: what the in-cluster ServiceAccount config gives a Pod."""
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: rig, cluster: {{server: "{url}"}}}}]
users: [{{name: rig, user: {{token: rig}}}}]
contexts: [{{name: rig, context: {{cluster: rig, user: rig}}}}]
current-context: rig
""")
    return path


def emulated_api_server() -> Any:
    from gm import schema
    from gm.cluster import interface
    from tests.gm.kube_emulator import EmulatedApiServer

    validators = {f"{k.group}/{k.version}/{k.plural}": schema.validate for k in interface.SEDNA_KINDS}
    return EmulatedApiServer(validators, service_prefix=SERVICE_PREFIX)


class Rig:
    """API server + GM + one LC per node + kubelet, all on 127.0.0.1 under ``root``."""

    def __init__(self, root: Path, nodes: Sequence[str] = ("cloud", "edge-0"), default_node: str = "cloud") -> None:
        self.root = root
        self.nodes = list(nodes)
        self.default_node = default_node
        self.cluster: KubeCluster | None = None
        self.lc_ports: dict[str, int] = {}
        self.bootstrap_token = secrets.token_hex(16)
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Rig:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _start(self) -> None:
        server = self._stack.enter_context(emulated_api_server())
        configuration = kubernetes.client.Configuration()
        configuration.host = server.url
        self.cluster = KubeCluster(kubernetes.client.ApiClient(configuration), watch_timeout=5)
        self._stack.callback(self.cluster.close)
        gm_ports = {9000: free_port(), 9010: free_port(), 9011: free_port()}
        allowed = f"{self.bootstrap_token} nodes={','.join(self.nodes)} uses={len(self.nodes)}\n"
        gm = manifests.launch("Deployment", "sedna-gm", node="master", root=self.root, ports=gm_ports, secrets={
            "sedna-api-token": {"token": secrets.token_hex(16)}, "sedna-bootstrap-tokens": {"tokens": allowed}})
        env = {**gm.env, "KUBECONFIG": str(kubeconfig(self.root / "kubeconfig", server.url))}
        self._stack.enter_context(running(gm.module, env, self.root / "gm.log", port=gm_ports[9000], args=gm.args))
        eventually(lambda: httpx.get(gm.probe_url("readinessProbe")).status_code == 200, timeout=60,
                   message="GM's readiness probe", ignoring=(httpx.TransportError,))
        for node in self.nodes:
            port = self.lc_ports[node] = free_port()
            lc = manifests.launch("DaemonSet", "sedna-lc", node=node, root=self.root,
                                  ports={**gm_ports, 9100: port}, hosts={"sedna-gm.sedna": "127.0.0.1"},
                                  secrets={"sedna-bootstrap-token": {"token": self.bootstrap_token}})
            self._stack.enter_context(running(lc.module, lc.env, self.root / f"lc-{node}.log", port=port,
                                              args=lc.args))
        for node, port in self.lc_ports.items():
            eventually(lambda p=port: httpx.get(f"http://127.0.0.1:{p}/healthz").json()["hub"] == "connected",
                       timeout=60, message=f"LC of {node} connected")
        self._stack.enter_context(RigKubelet(self.cluster, self.lc_ports, self.root / "kubelet", self.default_node))

    def logs(self) -> str:
        """The tail of every log under ``root`` (for assertion messages)."""
        out = []
        for path in sorted(self.root.rglob("*.log")):
            out.append(f"--- {path.relative_to(self.root)}\n{path.read_text(errors='replace')[-1500:]}")
        return "\n".join(out)


@contextlib.contextmanager
def rig(root: Path, nodes: Sequence[str] = ("cloud", "edge-0")) -> Iterator[Rig]:
    with Rig(root, nodes) as started:
        yield started
