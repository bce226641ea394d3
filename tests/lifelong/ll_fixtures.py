"""Objects and a synchronous harness for the LifelongLearningJob controller tests."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from gm.cluster.interface import LIFELONG_LEARNING_JOB, POD, Cluster, Obj
from gm.controllers import lifelong_learning
from gm.controllers.lifelong_learning.knowledge_base import KBAccess
from gm.runtime.outcomes import NamespacedName
from gm.runtime.reconciling import Controller, Manager
from gm.settings import ControllerSettings
from sedna.controlplane.edgehub import ObjectKey, Report

SETTINGS = ControllerSettings(lc_servers={"edge-0": "http://127.0.0.1:9101"}, default_cloud_node="cloud",
                              nodes=("cloud", "edge-0"))
KEY = NamespacedName("default", "ll")
LABEL = "lifelonglearningjob.sedna.io"
_SEQ = itertools.count(1)


def dataset(name: str = "samples", node: str | None = "edge-0", url: str = "/data/index.csv") -> Obj:
    spec: dict[str, Any] = {"url": url, "format": "csv"}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "Dataset", "metadata": {"name": name, "namespace": "default"},
            "spec": spec}


def container(name: str, module: str, env: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"name": name, "image": "sedna-py:test", "command": ["python", "-m", module],
            "env": copy.deepcopy(env or []), "volumeMounts": [{"name": "data", "mountPath": "/data"}]}


def job(name: str = "ll", out: str = "/data/out", train_env: list[dict[str, str]] | None = None,
        deploy_env: list[dict[str, str]] | None = None, train_command: list[str] | None = None,
        dataset_name: str = "samples") -> Obj:
    train = container("train", "workers.lifelong.train", train_env)
    if train_command is not None:
        train["command"] = train_command
    return {
        "apiVersion": "sedna.io/v1alpha1", "kind": "LifelongLearningJob",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "dataset": {"name": dataset_name, "trainProb": 0.8}, "outputDir": out,
            "trainSpec": {"template": {"spec": {"nodeName": "cloud", "containers": [train],
                                                "volumes": [{"name": "data", "hostPath": {"path": "/data"}}]}},
                          "trigger": {"checkPeriodSeconds": 5,
                                      "condition": {"operator": ">=", "threshold": 50, "metric": "num_of_samples"}}},
            "evalSpec": {"template": {"spec": {"containers": [container("eval", "workers.lifelong.eval")]}}},
            "deploySpec": {"template": {"spec": {"containers": [
                container("infer", "workers.lifelong.infer", deploy_env)]}}},
        },
    }


class Harness:
    """The LL controller over a cluster, driven synchronously: sync caches, then reconcile."""

    def __init__(self, cluster: Cluster, settings: ControllerSettings = SETTINGS, kb_access: KBAccess | None = None,
                 clock: Any = None) -> None:
        self.cluster = cluster
        self.manager = Manager(cluster)
        self.controller: Controller = lifelong_learning.setup(self.manager, settings, kb_access)
        if clock is not None:
            reconciler: Any = self.controller.reconciler
            reconciler.clock = clock
            reconciler.machine.clock = clock

    def sync(self) -> None:
        for informer in self.manager.informers.values():
            informer.list_once()

    def reconcile(self, key: NamespacedName = KEY) -> None:
        self.sync()
        assert self.controller.process(key) is not None, "reconcile raised; see the log"
        self.sync()

    def status(self, name: str = "ll") -> dict[str, Any]:
        return self.cluster.get(LIFELONG_LEARNING_JOB, "default", name).get("status") or {}

    def last(self, name: str = "ll") -> tuple[str, str, str]:
        cond = self.status(name)["conditions"][-1]
        return cond["stage"], cond["type"], cond["reason"]

    def entry(self, stage: str, type_: str, name: str = "ll") -> dict[str, Any]:
        """The newest history entry of ``(stage, type_)``; AssertionError showing the history when none."""
        history = self.status(name).get("conditions") or []
        for cond in reversed(history):
            if (cond["stage"], cond["type"]) == (stage, type_):
                return dict(cond)
        raise AssertionError(f"no {stage}/{type_} entry in {[(c['stage'], c['type'], c['reason']) for c in history]}")

    def report(self, payload: dict[str, Any], name: str = "ll") -> None:
        """File an edge report through the kind's real hub handler, as the hub does."""
        lifelong_learning.handle_upstream(self.cluster, "edge-0", Report(next(_SEQ), ObjectKey(
            "lifelonglearningjob", "default", name), payload))

    def lc(self, phase: str, status: str, round_: int, inputs: dict[str, Any] | None = None,
           message: str = "") -> None:
        self.report({"source": "lc", "phase": phase, "status": status, "round": round_, "input": inputs or {},
                     "message": message})

    def worker(self, pod: str, phase: str, status: str, models: list[dict[str, Any]] | None = None,
               info: dict[str, Any] | None = None) -> None:
        self.report({"phase": phase, "status": status, "worker": pod,
                     "output": {"models": models or [], "ownerInfo": info or {}}})

    def pod_phase(self, name: str, phase: str) -> None:
        ready = "True" if phase == "Running" else "False"
        self.cluster.patch_status(POD, "default", name, {"phase": phase, "conditions": [
            {"type": "Ready", "status": ready}], "containerStatuses": [
            {"name": "c", "ready": phase == "Running", "restartCount": 0,
             "state": {"running": {}} if phase == "Running" else {"terminated": {"exitCode": 0}}}]})


def env_of(obj: Obj) -> dict[str, Any]:
    spec = obj["spec"]["template"]["spec"] if obj["kind"] == "Deployment" else obj["spec"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in spec["containers"][0].get("env", [])}


def record(url: str, version: int, groups: dict[str, tuple[Any, int]], labeled_unseen: int = 0,
           classes: tuple[str, ...] = ("0", "1")) -> dict[str, Any]:
    """A KB record as the workers report it (``docs/lifelong.md``); ``groups``: entry -> (accuracy, samples)."""
    return {"format": "json", "url": f"{url}/knowledgebase/index/{version}", "version": version,
            "metrics": {"accuracy": 0.5}, "current_metric": {g: {"accuracy": a} for g, (a, _) in groups.items()},
            "classes": list(classes), "number_of_model": len(groups), "number_of_labeled_unseen_sample": labeled_unseen,
            "number_of_unseen_sample": 0, "task_samples": {g: n for g, (_, n) in groups.items()},
            "deployed": list(groups)}
