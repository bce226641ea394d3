"""Two local clusters side by side: workers on fixed ports never collide, and a cluster keeps its addresses.

Regression: every cluster numbered Pods from 127.0.1.1 and Services from 127.0.2.1, so the second
cluster's cloud worker could not bind its fixed port (or, worse, an edge of one cluster reached the
other cluster's cloud worker).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gm.cluster.interface import POD, SERVICE, Obj
from gm.cluster.local import loopback
from gm.cluster.local.backend import LocalBackend
from gm.cluster.local.runtime import Backoff
from tests.gm.test_local_runtime import wait_for

pytestmark = pytest.mark.processes

# a cloud worker on POD_IP:5000 answering its cluster's name; an edge worker on POD_IP:5100 asking the
# cloud worker at BIG_MODEL_IP:5000 (the cloud Service), as the joint-inference workers do
WORKER = """
import http.server, os, urllib.request
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if os.environ["ROLE"] == "cloud":
            body = os.environ["CLUSTER"].encode()
        else:
            url = "http://%s:5000/" % os.environ["BIG_MODEL_IP"]
            body = b"edge of " + os.environ["CLUSTER"].encode() + b", cloud says " + urllib.request.urlopen(url).read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
port = 5000 if os.environ["ROLE"] == "cloud" else 5100
http.server.HTTPServer((os.environ["POD_IP"], port), Handler).serve_forever()
"""


def worker(role: str, cluster: str, node: str, env: dict[str, str]) -> Obj:
    values = [{"name": k, "value": v} for k, v in {"ROLE": role, "CLUSTER": cluster, **env}.items()]
    values.append({"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": role, "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": role}},
                     "template": {"metadata": {"labels": {"app": role}}, "spec": {"nodeName": node, "containers": [
                         {"name": role, "command": ["python", "-c", WORKER], "env": values}]}}}}


CLOUD_SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cloud", "namespace": "default"},
                 "spec": {"selector": {"app": "cloud"}, "ports": [{"name": "http", "port": 5000}]}}


def listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def start(state: Path) -> LocalBackend:
    b = LocalBackend(state, ["cloud", "edge-0"], token="t0ken", api_port=None, backoff=Backoff(0.2, 1.0))
    b.runtime.tick = 0.05
    b.store.poll_interval = 0.02
    b.start()
    return b


def pod_ip(b: LocalBackend, app: str) -> str:
    pods = b.store.list(POD, "default", {"app": app})
    return str(pods[0]["status"]["podIP"]) if pods and pods[0]["status"].get("phase") == "Running" else ""


def deploy(b: LocalBackend, cluster: str) -> str:
    """Run the cloud worker, its Service and the edge worker; the edge worker's IP once it listens."""
    b.store.create(worker("cloud", cluster, "cloud", {}))
    b.store.create(dict(CLOUD_SERVICE))
    ip = wait_for(lambda: b.store.get(SERVICE, "default", "cloud")["spec"].get("clusterIP"), message="clusterIP")
    b.store.create(worker("edge", cluster, "edge-0", {"BIG_MODEL_IP": ip}))
    cloud = wait_for(lambda: pod_ip(b, "cloud"), timeout=20, message=f"{cluster} cloud Running")
    wait_for(lambda: listening(cloud, 5000), timeout=20, message=f"{cluster} cloud worker on {cloud}:5000")
    edge = wait_for(lambda: pod_ip(b, "edge"), timeout=20, message=f"{cluster} edge Running")
    wait_for(lambda: listening(edge, 5100), timeout=20, message=f"{cluster} edge worker on {edge}:5100")
    return str(edge)


def ask(edge_ip: str) -> str:
    with httpx.Client(timeout=5) as client:
        return client.get(f"http://{edge_ip}:5100/").text


@pytest.fixture
def backends() -> Iterator[list[LocalBackend]]:
    started: list[LocalBackend] = []
    yield started
    for b in reversed(started):
        b.stop()


def test_two_clusters_on_one_machine_each_edge_answers_from_its_own_cloud(
        tmp_path: Path, backends: list[LocalBackend]) -> None:
    a = start(tmp_path / "a")
    backends.append(a)
    b = start(tmp_path / "b")
    backends.append(b)
    assert a.block is not None and b.block is not None and a.block != b.block
    edge_a, edge_b = deploy(a, "A"), deploy(b, "B")
    assert ask(edge_a) == "edge of A, cloud says A"
    assert ask(edge_b) == "edge of B, cloud says B"
    for backend in (a, b):
        for p in backend.store.list(POD):
            assert p["status"]["containerStatuses"][0]["restartCount"] == 0
            assert backend.block.pod_pool().holds(p["status"]["podIP"])
        svc = backend.store.get(SERVICE, "default", "cloud")
        assert backend.block.service_pool().holds(svc["spec"]["clusterIP"])


def test_a_restarted_gm_keeps_its_block_and_addresses_while_another_cluster_starts(
        tmp_path: Path, backends: list[LocalBackend]) -> None:
    a = start(tmp_path / "a")
    edge = deploy(a, "A")
    block, cluster_ip = a.block, a.store.get(SERVICE, "default", "cloud")["spec"]["clusterIP"]
    ips = {p["metadata"]["name"]: p["status"]["podIP"] for p in a.store.list(POD)}
    a.stop(keep_workers=True)  # as after `kill -9` or `sedna local restart gm`: the workers keep running
    # meanwhile a new cluster whose first choice is A's block starts: A's running workers keep it off
    other = next(d for i in range(20000)
                 if str(loopback.first_choice(d := tmp_path / f"other{i}")) == str(block))
    backends.append(start(other))
    assert backends[0].block != block
    again = start(tmp_path / "a")
    backends.append(again)
    assert again.block == block
    assert (tmp_path / "a" / loopback.BLOCK_FILE).read_text().strip() == f'{{"block": "{block}"}}'
    assert again.store.get(SERVICE, "default", "cloud")["spec"]["clusterIP"] == cluster_ip
    wait_for(lambda: listening(cluster_ip, 5000), message="the cloud Service listening again")
    assert {p["metadata"]["name"]: p["status"]["podIP"] for p in again.store.list(POD)} == ips
    assert ask(edge) == "edge of A, cloud says A"
