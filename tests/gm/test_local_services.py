"""Local Services proxy real TCP traffic to ready Pods; LocalBackend wires the whole local cluster."""

from __future__ import annotations

import contextlib
import gc
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gm.cluster.interface import NODE, POD, SERVICE, Obj
from gm.cluster.local.backend import LocalBackend
from gm.cluster.local.runtime import Backoff
from tests.gm.test_local_runtime import wait_for

SERVER = """
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.environ["POD_NAME"].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer((os.environ["POD_IP"], 8080), Handler).serve_forever()
"""


def deployment(name: str, replicas: int) -> Obj:
    env = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
           {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                         {"name": "http", "command": ["python", "-c", SERVER], "env": env,
                          "ports": [{"name": "web", "containerPort": 8080}]}]}}}}


def service(name: str, app: str, target: int | str = "web") -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": target}]}}


def listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def get(url: str) -> str:
    with httpx.Client(timeout=5) as client:
        return client.get(url).text


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[LocalBackend]:
    b = LocalBackend(tmp_path / "state", ["cloud", "edge-0"], token="t0ken", backoff=Backoff(0.2, 1.0))
    b.runtime.tick = 0.05
    b.store.poll_interval = 0.02
    b.start()
    yield b
    b.stop()


class TestServiceProxy:
    @pytest.mark.processes
    def test_round_robin_over_two_pods(self, backend: LocalBackend) -> None:
        store = backend.store
        store.create(deployment("web", 2))
        svc = store.create(service("web", "web"))
        ip = wait_for(lambda: store.get(SERVICE, "default", "web")["spec"].get("clusterIP"), message="clusterIP")
        assert backend.block is not None and backend.block.service_pool().holds(ip)
        assert not ip.startswith("127.0.")
        assert store.get(SERVICE, "default", "web")["metadata"]["uid"] == svc["metadata"]["uid"]
        pods = wait_for(lambda: len(p := store.list(POD, "default", {"app": "web"})) == 2
                        and all(x["status"].get("podIP") for x in p) and p, message="2 pods with IPs")
        for p in pods:
            wait_for(lambda p=p: listening(p["status"]["podIP"], 8080), message="pod server")
        wait_for(lambda: listening(ip, 80), message="service listener")
        answers = [get(f"http://{ip}:80/") for _ in range(4)]
        names = sorted(p["metadata"]["name"] for p in pods)
        assert sorted(answers) == sorted(names * 2)
        assert answers[0] != answers[1]

    def test_no_ready_endpoint_resets_the_connection(self, backend: LocalBackend) -> None:
        store = backend.store
        store.create(service("lonely", "nobody", target=8080))
        ip = wait_for(lambda: store.get(SERVICE, "default", "lonely")["spec"].get("clusterIP"), message="clusterIP")
        wait_for(lambda: listening(ip, 80), message="service listener")
        # the proxy accepts and resets at once: the reset may reach connect() itself or the first read
        with pytest.raises(ConnectionResetError), socket.create_connection((ip, 80), timeout=5) as sock:
            sock.recv(100)

    def test_deleted_service_stops_listening(self, backend: LocalBackend) -> None:
        store = backend.store
        store.create(service("brief", "nobody", target=8080))
        ip = wait_for(lambda: store.get(SERVICE, "default", "brief")["spec"].get("clusterIP"), message="clusterIP")
        wait_for(lambda: listening(ip, 80), message="service listener")
        store.delete(SERVICE, "default", "brief")
        wait_for(lambda: not listening(ip, 80), message="listener closed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def two_port_service(name: str, ports: tuple[int, int], cluster_ip: str | None = None) -> Obj:
    spec: Obj = {"selector": {"app": name}, "ports": [{"name": f"p{i}", "port": p} for i, p in enumerate(ports)]}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


class TestManyServices:
    """Regression: overlapping listener re-syncs raced to bind the same address ("address already in use",
    over and over) and stop() timed out behind the queued passes."""

    def test_hundreds_of_services_each_listen_once_and_stop_is_quick(self, tmp_path: Path) -> None:
        from gm.cluster.interface import EVENT
        from gm.cluster.local.services import ServiceProxy
        from gm.cluster.local.store import LocalStore

        store = LocalStore(tmp_path / "state.db")
        proxy = ServiceProxy(store)
        proxy.start()
        ports = (free_port(), free_port())
        try:
            for i in range(150):
                store.create(two_port_service(f"s{i}", ports))
            wait_for(lambda: len(proxy.listening) == 300, timeout=30, message="300 listeners")
            for i in range(0, 150, 2):  # churn: freed addresses are handed out again
                store.delete(SERVICE, "default", f"s{i}")
            for i in range(150, 200):
                store.create(two_port_service(f"s{i}", ports))
            wait_for(lambda: len(proxy.listening) == 250, timeout=30, message="250 listeners")
            ips = [s["spec"]["clusterIP"] for s in store.list(SERVICE)]
            assert len(ips) == len(set(ips)) == 125
            assert sorted(proxy.listening) == sorted((ip, p) for ip in ips for p in ports)
            assert [e["message"] for e in store.list(EVENT) if e["reason"] == "ListenFailed"] == []
        finally:
            started = time.monotonic()
            proxy.stop()
            store.close()
        assert time.monotonic() - started < 5

    def test_a_cluster_ip_given_in_the_manifest_is_never_handed_out(self, tmp_path: Path) -> None:
        from gm.cluster.local.services import ServiceProxy
        from gm.cluster.local.store import LocalStore

        store = LocalStore(tmp_path / "state.db")
        proxy = ServiceProxy(store)
        proxy.start()
        ports = (free_port(), free_port())
        try:
            fixed = proxy.addresses.address(0)
            store.create(two_port_service("fixed", ports, cluster_ip=fixed))
            store.create(two_port_service("auto", ports))
            auto = wait_for(lambda: store.get(SERVICE, "default", "auto")["spec"].get("clusterIP"), message="clusterIP")
            assert auto != fixed
            wait_for(lambda: len(proxy.listening) == 4, message="4 listeners")
        finally:
            proxy.stop()
            store.close()

    def test_connections_arriving_while_listeners_close_are_all_closed(self, tmp_path: Path) -> None:
        """Regression: with asyncio.start_server, a connection accepted in the loop iteration that closed its
        listener (a deleted Service, or stop()) left a half-built transport and an open socket behind."""
        from gm.cluster.local.services import ServiceProxy
        from gm.cluster.local.store import LocalStore

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            for round_ in range(6):
                store = LocalStore(tmp_path / f"state{round_}.db")
                proxy = ServiceProxy(store)
                proxy.start()
                store.create(service("busy", "nobody", target=8080))
                ip = wait_for(lambda p=proxy: p.listening and p.listening[0][0], message="listener")
                with _hammering(ip, 80):
                    time.sleep(0.05)
                    if round_ % 2:
                        store.delete(SERVICE, "default", "busy")
                        time.sleep(0.02)
                    proxy.stop()
                store.close()
            gc.collect()
        assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


@contextlib.contextmanager
def _hammering(host: str, port: int, clients: int = 4) -> Iterator[None]:
    """Clients connecting to ``host:port`` and hanging up, over and over, while the body runs."""
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
                pass

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)


class TestBackend:
    def test_registers_nodes_and_serves_the_api(self, backend: LocalBackend) -> None:
        assert [n["metadata"]["name"] for n in backend.store.list(NODE)] == ["cloud", "edge-0"]
        url = f"http://127.0.0.1:{backend.api_port}/api/v1/nodes"
        resp = httpx.get(url, headers={"Authorization": "Bearer t0ken"})
        assert [n["metadata"]["name"] for n in resp.json()["items"]] == ["cloud", "edge-0"]
        assert httpx.get(url).status_code == 401

    @pytest.mark.processes
    def test_stop_leaves_no_process_behind(self, tmp_path: Path) -> None:
        b = LocalBackend(tmp_path / "s", ["cloud"], token="t", api_port=None)
        b.start()
        b.store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
                        "spec": {"nodeName": "cloud", "containers": [
                            {"name": "c", "command": ["python", "-c", "import os,time; print(os.getpid(), "
                                                      "flush=True); time.sleep(60)"]}]}})
        log = tmp_path / "s" / "logs" / "default_p_c.log"
        pid = int(wait_for(lambda: log.exists() and log.read_text().strip(), message="pid"))
        b.stop()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                import os

                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"pod process {pid} outlived the backend")


GRPC_SERVER = """
import os, grpc
from concurrent import futures
def say(request, context):
    return request + b" from " + os.environ["POD_NAME"].encode()
handler = grpc.method_handlers_generic_handler("echo.Echo", {"Say": grpc.unary_unary_rpc_method_handler(say)})
server = grpc.server(futures.ThreadPoolExecutor(2))
server.add_generic_rpc_handlers((handler,))
server.add_insecure_port(os.environ["POD_IP"] + ":9000")
server.start()
server.wait_for_termination()
"""


@pytest.mark.processes
def test_grpc_over_http2_goes_through_the_proxy(backend: LocalBackend) -> None:
    import grpc

    store = backend.store
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "grpc", "namespace": "default",
                                                           "labels": {"app": "grpc"}},
           "spec": {"nodeName": "edge-0", "containers": [{"name": "s", "command": ["python", "-c", GRPC_SERVER],
                                                          "env": deployment("x", 1)["spec"]["template"]["spec"]
                                                          ["containers"][0]["env"]}]}}
    store.create(pod)
    store.create(service("grpc", "grpc", target=9000))
    ip = wait_for(lambda: store.get(SERVICE, "default", "grpc")["spec"].get("clusterIP"), message="clusterIP")
    pod_ip = wait_for(lambda: store.get(POD, "default", "grpc")["status"].get("podIP"), message="podIP")
    wait_for(lambda: listening(pod_ip, 9000), timeout=20, message="grpc server")
    with grpc.insecure_channel(f"{ip}:80") as channel:
        say = channel.unary_unary("/echo.Echo/Say")
        assert say(b"hi", timeout=10) == b"hi from grpc"
        assert say(b"again", timeout=10) == b"again from grpc"


def test_the_address_pool_hands_out_the_lowest_free_address() -> None:
    from gm.cluster.local.addresses import parse_block

    pool = parse_block("127.42.0.0/16").service_pool(used=["127.42.128.2"])
    got = [pool.allocate() for _ in range(300)]  # past the first /24 into the next
    assert got[:2] == ["127.42.128.1", "127.42.128.3"] and got[253] == "127.42.129.1" and len(set(got)) == 300
    pool.release("127.42.129.1")
    pool.release("127.42.128.7")
    assert [pool.allocate(), pool.allocate(), pool.allocate()] == ["127.42.128.7", "127.42.129.1", "127.42.129.48"]
