"""Objects and a synchronous harness for the FederatedLearningJob controller tests."""

from __future__ import annotations

import copy
from typing import Any

from gm.cluster.interface import POD, SERVICE, Cluster, Obj
from gm.controllers import federated_learning
from gm.runtime.outcomes import NamespacedName, Outcome
from gm.runtime.reconciling import Controller, Manager
from gm.settings import ControllerSettings

SETTINGS = ControllerSettings(lc_servers={"edge-0": "http://127.0.0.1:9101"}, lc_tokens={"edge-0": "t0"},
                              default_cloud_node="cloud", nodes=("cloud", "edge-0", "edge-1"))
KEY = NamespacedName("default", "fl")


def model(name: str = "fl-model", url: str = "/models/fl") -> Obj:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "Model", "metadata": {"name": name, "namespace": "default"},
            "spec": {"url": url, "format": "npz"}}


def dataset(name: str, node: str, url: str = "") -> Obj:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "Dataset", "metadata": {"name": name, "namespace": "default"},
            "spec": {"url": url or f"/data/{name}.csv", "format": "csv", "nodeName": node}}


def job(datasets: tuple[str, ...] = ("ds-0", "ds-1"), agg_env: list[dict[str, str]] | None = None,
        trainer_env: list[dict[str, str]] | None = None) -> Obj:
    agg = {"name": "aggregator", "image": "sedna-py", "command": ["python", "-m", "workers.federated.aggregator"],
           "env": copy.deepcopy(agg_env if agg_env is not None else [{"name": "aggregation", "value": "FedAvg"},
                                                                      {"name": "exit_round", "value": "3"}])}
    trainer = {"name": "trainer", "image": "sedna-py", "command": ["python", "-m", "workers.federated.trainer"],
               "env": copy.deepcopy(trainer_env or [])}
    return {
        "apiVersion": "sedna.io/v1alpha1", "kind": "FederatedLearningJob",
        "metadata": {"name": "fl", "namespace": "default"},
        "spec": {
            "aggregationWorker": {"model": {"name": "fl-model"}, "template": {"spec": {"containers": [agg]}}},
            "trainingWorkers": [{"dataset": {"name": d}, "template": {"spec": {"containers": [copy.deepcopy(trainer)]}}}
                                for d in datasets],
        },
    }


class Harness:
    """The FL controller over a cluster, driven synchronously: sync caches, then reconcile."""

    def __init__(self, cluster: Cluster, settings: ControllerSettings = SETTINGS) -> None:
        self.cluster = cluster
        self.manager = Manager(cluster)
        self.controller: Controller = federated_learning.setup(self.manager, settings)

    def sync(self) -> None:
        for informer in self.manager.informers.values():
            informer.list_once()

    def reconcile(self, key: NamespacedName = KEY) -> Outcome:
        self.sync()
        outcome = self.controller.process(key)
        assert outcome is not None, "reconcile raised; see the log"
        self.sync()
        return outcome

    def allocate_cluster_ip(self, ip: str = "127.0.2.9") -> None:
        """What the local backend's Service proxy does asynchronously."""
        svc = self.cluster.get(SERVICE, "default", "fl-aggregation")
        svc["spec"]["clusterIP"] = ip
        self.cluster.update(svc)

    def set_pod_phase(self, name: str, phase: str, **extra: Any) -> None:
        self.cluster.patch_status(POD, "default", name, {"phase": phase, **extra})


def env_of(pod: Obj) -> dict[str, Any]:
    container = pod["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}
