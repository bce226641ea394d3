"""A test kubelet (and the little of kube-controller-manager the rig needs) over the emulated API server.

:class:`RigKubelet` polls the API server through :class:`~gm.cluster.kube.KubeCluster`, as a kubelet
watches its node's Pods, and:

- gives every Deployment one Pod (``<deployment>-rig``) from its template, recreated when the
  template changes, and writes the Deployment's replica counts back (the Deployment controller's job);
- runs each Pod bound to one of its nodes (a Pod without ``nodeName`` goes to ``default_node``, as a
  scheduler would) as local processes with the local runtime's helpers: init containers one after
  another (a failure stops there, reported in ``initContainerStatuses`` with the last log lines), then
  the containers; every Pod gets a loopback address of its own (``status.podIP``), so workers bind the
  ports their env names without colliding;
- writes Pod status as a kubelet does (phase, podIP, hostIP, container statuses, Ready);
- kills the processes of Pods that are deleted, and deletes Pods whose Deployment is gone.

Pod specs are run as written, with what a machine that is not a cluster lacks translated: volumes
are directories (emptyDir per Pod, hostPath per node), ``secretKeyRef`` is read from the Secret,
``<service>.<namespace>`` names become the address of the Pod behind the Service, and the LC's
``127.0.0.1:9100`` becomes the port the node's LC listens on.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import re
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes.client

from gm.cluster.interface import DEPLOYMENT, POD, SERVICE, NotFound, Obj
from gm.cluster.kube import KubeCluster
from gm.cluster.local import processes

LC_PORT = 9100
_ADDRESSES = itertools.count(2)


@dataclass
class _Running:
    pod: Obj
    ip: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    thread: threading.Thread | None = None
    stopped: threading.Event = field(default_factory=threading.Event)


class RigKubelet:
    """Run the Pods of ``nodes`` (node name -> its LC's local port) until :meth:`stop`."""

    def __init__(self, cluster: KubeCluster, nodes: Mapping[str, int], root: Path, default_node: str,
                 interval: float = 0.2) -> None:
        self.cluster = cluster
        self.nodes = dict(nodes)
        self.root = root
        self.default_node = default_node
        self.interval = interval
        self.core = kubernetes.client.CoreV1Api(cluster.api_client)
        self._running: dict[str, _Running] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rig-kubelet", daemon=True)
        self._subnet = 100 + next(_ADDRESSES) % 150
        self._counter = itertools.count()

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> RigKubelet:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop polling and every process it started."""
        self._stop.set()
        self._thread.join(10)
        for uid in list(self._running):
            self._kill(uid)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # an API hiccup: the next round tries again
                self._sync_deployments()
                self._sync_pods()

    # -- the Deployment controller ---------------------------------------------------------------------
    def _sync_deployments(self) -> None:
        deployments = self.cluster.list(DEPLOYMENT)
        pods = self.cluster.list(POD)
        by_owner = {ref["uid"]: p for p in pods for ref in p["metadata"].get("ownerReferences") or []}
        uids = {d["metadata"]["uid"] for d in deployments}
        for pod in pods:  # the garbage collector's part
            refs = pod["metadata"].get("ownerReferences") or []
            if refs and refs[0].get("kind") == "Deployment" and refs[0]["uid"] not in uids:
                with contextlib.suppress(NotFound):
                    self.cluster.delete(POD, pod["metadata"]["namespace"], pod["metadata"]["name"])
        for dep in deployments:
            meta = dep["metadata"]
            template = dep["spec"]["template"]
            digest = (meta.get("annotations") or {}).get("sedna.io/spec-hash", str(meta.get("generation")))
            pod = by_owner.get(meta["uid"])
            if pod is not None and (pod["metadata"].get("annotations") or {}).get("rig/template") != digest:
                with contextlib.suppress(NotFound):
                    self.cluster.delete(POD, meta["namespace"], pod["metadata"]["name"])
                pod = None
            if pod is None:
                self.cluster.create({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": f"{meta['name']}-rig", "namespace": meta["namespace"],
                                 "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                                 "annotations": {"rig/template": digest},
                                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                      "name": meta["name"], "uid": meta["uid"], "controller": True}]},
                    "spec": template.get("spec") or {}})
                continue
            ready = int(pod.get("status", {}).get("phase") == "Running")
            status = {"replicas": 1, "readyReplicas": ready, "availableReplicas": ready, "updatedReplicas": 1,
                      "observedGeneration": meta.get("generation", 1),
                      "conditions": [{"type": "Available", "status": "True" if ready else "False"}]}
            if {k: dep.get("status", {}).get(k) for k in status} != status:
                self.cluster.patch_status(DEPLOYMENT, meta["namespace"], meta["name"], status)

    # -- the kubelet --------------------------------------------------------------------------------------
    def _sync_pods(self) -> None:
        pods = {p["metadata"]["uid"]: p for p in self.cluster.list(POD)}
        for uid in [u for u in self._running if u not in pods]:
            self._kill(uid)
        new: list[tuple[_Running, str]] = []
        services = self.cluster.list(SERVICE)
        for uid, pod in pods.items():
            node = pod["spec"].get("nodeName") or self.default_node
            if uid in self._running or node not in self.nodes or pod["metadata"].get("deletionTimestamp"):
                continue
            if self._needs_absent_service(pod, services, pods.values()):
                continue  # as if the Service had no endpoints yet: start once the Pod behind it exists
            count = next(self._counter)
            run = _Running(pod, f"127.{self._subnet}.{count // 250 + 1}.{count % 250 + 2}")
            self._running[uid] = run  # every new Pod has its address before any starts (Service names)
            new.append((run, node))
        for run, node in new:
            run.thread = threading.Thread(target=self._run_pod, args=(run, node), daemon=True)
            run.thread.start()

    def _run_pod(self, run: _Running, node: str) -> None:
        pod = run.pod
        meta, spec = pod["metadata"], pod["spec"]
        pod_dir = self.root / "pods" / f"{meta['namespace']}_{meta['name']}"
        status: dict[str, Any] = {"phase": "Pending", "podIP": run.ip, "hostIP": "127.0.0.1"}
        with contextlib.suppress(NotFound):
            self.cluster.patch_status(POD, meta["namespace"], meta["name"], status)
        pod = {**pod, "status": status}
        for i, container in enumerate(spec.get("initContainers") or []):
            proc = self._start(pod, container, i, node, pod_dir)
            run.procs.append(proc)
            code = proc.wait()
            if run.stopped.is_set():
                return
            if code != 0:
                log = (pod_dir / f"{container['name']}.log").read_text(errors="replace")[-800:]
                status["initContainerStatuses"] = [{"name": container["name"], "ready": False, "restartCount": 0,
                                                    "state": {"terminated": {"exitCode": code, "reason": "Error",
                                                                             "message": log}}}]
                with contextlib.suppress(NotFound):
                    self.cluster.patch_status(POD, meta["namespace"], meta["name"], status)
                return
        containers = spec.get("containers") or []
        run.procs += [self._start(pod, c, i, node, pod_dir) for i, c in enumerate(containers)]
        status.update(phase="Running", conditions=[{"type": "Ready", "status": "True"}],
                      containerStatuses=[{"name": c["name"], "ready": True, "restartCount": 0,
                                          "state": {"running": {}}} for c in containers])
        with contextlib.suppress(NotFound):
            self.cluster.patch_status(POD, meta["namespace"], meta["name"], status)
        codes = [p.wait() for p in run.procs[-len(containers):]] if containers else []
        if run.stopped.is_set():
            return
        status.update(phase="Succeeded" if all(c == 0 for c in codes) else "Failed",
                      conditions=[{"type": "Ready", "status": "False"}],
                      containerStatuses=[{"name": c["name"], "ready": False, "restartCount": 0,
                                          "state": {"terminated": {"exitCode": code}}}
                                         for c, code in zip(containers, codes, strict=True)])
        with contextlib.suppress(NotFound):
            self.cluster.patch_status(POD, meta["namespace"], meta["name"], status)

    def _start(self, pod: Obj, container: Obj, index: int, node: str, pod_dir: Path) -> subprocess.Popen[bytes]:
        mounts = self._volumes(pod, container, node, pod_dir)
        translate = self._translator(pod, node, mounts)
        resolved = {**container, "env": [self._resolve(pod, item) for item in container.get("env") or []]}
        tmp = pod_dir / "tmp"  # what a container writes to /tmp stays in its Pod
        tmp.mkdir(parents=True, exist_ok=True)
        env = processes.container_env(pod, resolved, index, {**processes.default_base_env(), "TMPDIR": str(tmp)})
        env = {k: translate(v) for k, v in env.items()}
        argv = [translate(a) for a in processes.container_argv(container, index, env)]
        return processes.spawn(argv, env, pod_dir / f"{container['name']}.log", None)

    def _resolve(self, pod: Obj, item: Obj) -> Obj:
        ref = (item.get("valueFrom") or {}).get("secretKeyRef")
        if not ref:
            return item
        secret = self.core.read_namespaced_secret(ref["name"], pod["metadata"]["namespace"])
        return {"name": item["name"], "value": base64.b64decode((secret.data or {})[ref["key"]]).decode()}

    def _volumes(self, pod: Obj, container: Obj, node: str, pod_dir: Path) -> dict[str, Path]:
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        out: dict[str, Path] = {}
        for mount in container.get("volumeMounts") or []:
            volume = volumes[mount["name"]]
            if "hostPath" in volume:  # the node's own file system: the rig keeps host paths real
                local = Path(volume["hostPath"]["path"])
            else:
                local = pod_dir / "volumes" / volume["name"]
                local.mkdir(parents=True, exist_ok=True)
            out[mount["mountPath"]] = local
        return out

    def _translator(self, pod: Obj, node: str, mounts: Mapping[str, Path]) -> Any:
        namespace = pod["metadata"]["namespace"]
        hosts: dict[str, str] = {}
        for service in self.cluster.list(SERVICE, namespace):
            backend = self._service_ip(service)
            hosts[f"{service['metadata']['name']}.{namespace}"] = backend
            if service["spec"].get("clusterIP"):  # kube-proxy's part: the clusterIP leads to the Pod
                hosts[service["spec"]["clusterIP"]] = backend
        lc = f"127.0.0.1:{self.nodes[node]}"

        def translate(value: str) -> str:
            for path, local in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
                value = re.sub(rf"(?<![\w/]){re.escape(path.rstrip('/'))}(?=/|$|;)", str(local), value)
            for host, ip in hosts.items():
                if ip:
                    value = re.sub(rf"(?<![\w.-]){re.escape(host)}(?![\w.-])", ip, value)
            return value.replace(f"127.0.0.1:{LC_PORT}", lc)

        return translate

    @staticmethod
    def _needs_absent_service(pod: Obj, services: list[Obj], pods: Any) -> bool:
        namespace = pod["metadata"]["namespace"]
        values = " ".join(str(e.get("value", "")) for c in pod["spec"].get("containers") or []
                          for e in c.get("env") or [])
        for service in services:
            names = (f"{service['metadata']['name']}.{namespace}", service["spec"].get("clusterIP") or "-")
            if service["metadata"]["namespace"] != namespace or not any(n in values for n in names):
                continue
            selector = service["spec"].get("selector") or {}
            if not any(all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
                       and p["metadata"]["namespace"] == namespace for p in pods):
                return True
        return False

    def _service_ip(self, service: Obj) -> str:
        selector = service["spec"].get("selector") or {}
        for run in self._running.values():
            labels = run.pod["metadata"].get("labels") or {}
            if selector and all(labels.get(k) == v for k, v in selector.items()):
                return run.ip
        return ""

    def _kill(self, uid: str) -> None:
        run = self._running.pop(uid, None)
        if run is None:
            return
        run.stopped.set()
        for proc in run.procs:
            processes.kill_group(proc.pid)
        for proc in run.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                processes.kill_group(proc.pid, 9)
                proc.wait(10)
