"""Objects and helpers shared by the JointInferenceService controller tests."""

from __future__ import annotations

import copy
from typing import Any

from gm.cluster.interface import Cluster
from gm.controllers import joint_inference
from gm.runtime.outcomes import NamespacedName
from gm.runtime.reconciling import Controller, Manager
from gm.settings import ControllerSettings

SETTINGS = ControllerSettings(lc_servers={"edge-0": "http://127.0.0.1:9101"}, lc_tokens={"edge-0": "t0"},
                              default_cloud_node="cloud", nodes=("cloud", "edge-0"), mqtt_broker="127.0.0.1:1883")
KEY = NamespacedName("default", "digits")


def model(name: str, url: str = "/models/x.onnx") -> dict[str, Any]:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "Model", "metadata": {"name": name, "namespace": "default"},
            "spec": {"url": url, "format": "onnx"}}


def ji(hem: str = "CrossEntropy", params: list[dict[str, str]] | None = None,
       edge_env: list[dict[str, str]] | None = None, node: str = "edge-0") -> dict[str, Any]:
    edge_pod: dict[str, Any] = {"containers": [{"name": "edge", "image": "sedna/edge",
                                                "command": ["python", "-m", "workers.joint_inference.edge"],
                                                "env": copy.deepcopy(edge_env or [])}]}
    if node:
        edge_pod["nodeName"] = node
    return {
        "apiVersion": "sedna.io/v1alpha1", "kind": "JointInferenceService",
        "metadata": {"name": "digits", "namespace": "default"},
        "spec": {
            "edgeWorker": {"model": {"name": "small"},
                           "hardExampleMining": {"name": hem, "parameters": params if params is not None else
                                                 [{"key": "threshold_cross_entropy", "value": "0.5"}]},
                           "template": {"spec": edge_pod}},
            "cloudWorker": {"model": {"name": "big"},
                            "template": {"spec": {"containers": [{
                                "name": "cloud", "image": "sedna/cloud",
                                "command": ["python", "-m", "workers.joint_inference.cloud"]}]}}},
        },
    }


class Harness:
    """The JI controller over a cluster, driven synchronously: sync caches, then reconcile."""

    def __init__(self, cluster: Cluster, settings: ControllerSettings = SETTINGS) -> None:
        self.cluster = cluster
        self.manager = Manager(cluster)
        self.controller: Controller = joint_inference.setup(self.manager, settings)

    def sync(self) -> None:
        for informer in self.manager.informers.values():
            informer.list_once()

    def reconcile(self, key: NamespacedName = KEY) -> None:
        self.sync()
        assert self.controller.process(key) is not None, "reconcile raised; see the log"
        self.sync()

    def queued(self) -> set[NamespacedName]:
        keys = set()
        while (key := self.controller.queue.get(timeout=0)) is not None:
            keys.add(key)
            self.controller.queue.done(key)
        return keys


def env_of(deployment: dict[str, Any]) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}
