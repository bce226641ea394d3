"""Start a test GM (``tests.hub.gm_entry``) and real LCs on 127.0.0.1, and talk to them.

Tests change the cluster through their own ``LocalStore`` on the GM's database file and read
the hub's counters from its Prometheus endpoint.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.support.procs import free_port, start_module, stop, wait_for_port
from tests.support.waiting import eventually

WORKER_TOKEN = "worker-secret"


wait_until = functools.partial(eventually, timeout=20.0, interval=0.1)  # real GM and LC processes: be patient


def scripted_gm(connect: Callable[[Iterator[Any], Any], Iterator[bytes]]) -> tuple[Any, str]:
    """A started in-process gRPC server whose ``EdgeHub.Connect`` is ``connect`` (requests in, wire bytes out);
    returns it (``stop(0)`` it) and its address. For tests that script a GM's side of the stream."""
    from concurrent import futures

    import grpc

    from gm.hub.server import SERVICE
    from sedna.proto import edgehub_pb2

    server = grpc.server(futures.ThreadPoolExecutor(4))
    handler = grpc.stream_stream_rpc_method_handler(connect, request_deserializer=edgehub_pb2.UpMessage.FromString,
                                                    response_serializer=bytes)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Connect": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


class GM:
    def __init__(self, root: Path, tokens: Mapping[str, str], *extra: str) -> None:
        self.extra = extra
        self.db = root / "gm.db"
        self.log = root / "gm.log"
        self.tokens = ",".join(f"{n}={t}" for n, t in tokens.items())
        self.port, self.metrics_port = free_port(), free_port()
        self.proc: Any = None

    def start(self) -> GM:
        args = ["--db", str(self.db), "--port", str(self.port), "--tokens", self.tokens,
                "--metrics-port", str(self.metrics_port), "--ack-timeout", "3", *self.extra]
        self.proc = start_module("tests.hub.gm_entry", {}, self.log, args)
        wait_for_port(self.metrics_port, 30, self.proc, self.log)
        return self

    def stop(self) -> None:
        stop(self.proc)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def metric(self, name: str, **labels: str) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        total = 0.0
        for line in text.splitlines():
            match = re.match(rf"^{name}(?:{{(.*)}})? (\S+)$", line)
            if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
                total += float(match.group(2))
        return total


class LC:
    def __init__(self, root: Path, gm_address: str, node: str, token: str | None, *extra: str) -> None:
        """``token``: a pre-shared hub token; None to join (give ``--bootstrap-token`` in ``extra``)."""
        self.state = root / f"lc-{node}"
        self.log = root / f"lc-{node}.log"
        self.port = free_port()
        self.args = ["--gm-address", gm_address, "--node", node, *(["--token", token] if token is not None else []),
                     "--state-dir", str(self.state), "--bind", f"127.0.0.1:{self.port}", "--admin-token",
                     WORKER_TOKEN, "--ping-interval", "1", "--backoff-max", "1", "--ack-timeout", "3", *extra]
        self.proc: Any = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> LC:
        return start_all(self)[0]

    def hold(self, *objects: dict[str, Any]) -> LC:
        """Put ``objects`` into the LC's store as the hub would have (before :meth:`start`, no GM needed)."""
        from lc.store import Store
        from sedna.controlplane.edgehub import key_of

        store = Store(self.state / "lc.db")
        try:
            for obj in objects:
                store.put_object(key_of(obj), "1", obj)
        finally:
            store.close()
        return self

    def stop(self) -> None:
        stop(self.proc)

    def post(self, worker: str, body: Any, token: str = WORKER_TOKEN, raw: bytes | None = None) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        url = f"{self.url}/sedna/workers/{worker}/info"
        if raw is not None:
            return httpx.post(url, content=raw, headers=headers, timeout=10)
        return httpx.post(url, json=body, headers=headers, timeout=10)

    def health(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/healthz", timeout=5).json()

    def objects(self) -> dict[str, str]:
        reply = httpx.get(f"{self.url}/sedna/objects", headers={"Authorization": f"Bearer {WORKER_TOKEN}"}, timeout=5)
        return {o["key"]: o["resourceVersion"] for o in reply.json()["objects"]}

    def connected(self) -> bool:
        return self.health()["hub"] == "connected"

    def metrics_text(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=5).text


def start_all(*lcs: LC) -> tuple[LC, ...]:
    """Start several LCs at once (their start-up overlaps), then wait until each serves its API."""
    for lc in lcs:
        lc.proc = start_module("lc", {}, lc.log, lc.args)
    for lc in lcs:
        wait_for_port(lc.port, 30, lc.proc, lc.log)
    return lcs


def ji_report(worker: str, service: str, count: int, hard: int, **extra: Any) -> dict[str, Any]:
    return {"name": worker, "namespace": "default", "ownerName": service, "ownerKind": "jointinferenceservice",
            "kind": "inference", "status": "running",
            "ownerInfo": {"inferenceNumber": count, "hardExampleNumber": hard, **extra}}


def dataset(name: str, node: str, url: str, fmt: str = "txt") -> dict[str, Any]:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "Dataset", "metadata": {"name": name, "namespace": "default"},
            "spec": {"url": url, "format": fmt, "nodeName": node}}


def model(name: str) -> dict[str, Any]:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "Model", "metadata": {"name": name, "namespace": "default"},
            "spec": {"url": f"/models/{name}.onnx", "format": "onnx"}}


def joint_inference(name: str, node: str, model_name: str = "edge-model") -> dict[str, Any]:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "JointInferenceService",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"edgeWorker": {"model": {"name": model_name},
                                    "template": {"spec": {"nodeName": node, "containers": []}}},
                     "cloudWorker": {"model": {"name": "cloud-model"}, "template": {"spec": {"containers": []}}}}}
