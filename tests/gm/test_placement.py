"""The edge hub routes every object to the nodes its workers are placed on, for every kind and template shape.

Each case runs the real controller on a local store until it has created its workers, reads the
node of every worker it created, and feeds the same objects to the hub's router: the object (and
the Models it names) must reach exactly the nodes of its workers plus the nodes of its data. A
worker on a node whose LC never receives its object could not report; on the old code the cloud
worker of a JointInferenceService, the aggregator of a FederatedLearningJob and the inference,
train and eval workers of an IncrementalLearningJob named in their templates were all missed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gm.cluster.interface import DEPLOYMENT, INCREMENTAL_LEARNING_JOB, POD, SERVICE, Kind, Obj, kind_of, pinned_node
from gm.cluster.local.store import LocalStore
from gm.controllers import federated_learning, incremental_learning, joint_inference
from gm.hub.routing import Router
from gm.runtime.outcomes import NamespacedName
from gm.runtime.reconciling import Manager
from gm.settings import ControllerSettings
from sedna.controlplane.edgehub import ObjectKey, key_of

NODES = ("cloud", "cloud-2", "edge-0", "edge-1", "edge-2")
SETTINGS = {
    "local": ControllerSettings(default_cloud_node="cloud", nodes=NODES),
    "kube": ControllerSettings(),  # no default node: the scheduler places cloud workers
}
SHAPES = ("nodeName", "nodeSelector", "neither")
CONTAINER = {"name": "w", "image": "sedna-py", "command": ["python", "-c", "pass"]}


def template(shape: str, node: str) -> Obj:
    spec: dict[str, Any] = {"containers": [dict(CONTAINER)]}
    if shape == "nodeName":
        spec["nodeName"] = node
    elif shape == "nodeSelector":
        spec["nodeSelector"] = {"kubernetes.io/hostname": node, "disk": "ssd"}
    return {"spec": spec}


def model(name: str) -> Obj:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "Model", "metadata": {"name": name, "namespace": "default"},
            "spec": {"url": f"/models/{name}", "format": "onnx"}}


def dataset(name: str, node: str) -> Obj:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "Dataset", "metadata": {"name": name, "namespace": "default"},
            "spec": {"url": f"/data/{name}.csv", "format": "csv", "nodeName": node}}


def ji(shape: str) -> tuple[list[Obj], Obj]:
    edge = template(shape if shape != "neither" else "nodeName", "edge-1")  # the edge node is required
    obj = {"apiVersion": "sedna.io/v1alpha1", "kind": "JointInferenceService",
           "metadata": {"name": "ji", "namespace": "default"},
           "spec": {"edgeWorker": {"model": {"name": "small"}, "hardExampleMining": {"name": "IBT"}, "template": edge},
                    "cloudWorker": {"model": {"name": "big"}, "template": template(shape, "cloud-2")}}}
    return [model("small"), model("big")], obj


def fl(shape: str) -> tuple[list[Obj], Obj]:
    obj = {"apiVersion": "sedna.io/v1alpha1", "kind": "FederatedLearningJob",
           "metadata": {"name": "fl", "namespace": "default"},
           "spec": {"aggregationWorker": {"model": {"name": "agg"}, "template": template(shape, "cloud-2")},
                    "trainingWorkers": [{"dataset": {"name": "d0"}, "template": template(shape, "edge-2")},
                                        {"dataset": {"name": "d1"}, "template": template(shape, "edge-2")}]}}
    return [model("agg"), dataset("d0", "edge-0"), dataset("d1", "edge-1")], obj


def il(shape: str) -> tuple[list[Obj], Obj]:
    obj = {"apiVersion": "sedna.io/v1alpha1", "kind": "IncrementalLearningJob",
           "metadata": {"name": "il", "namespace": "default"},
           "spec": {"dataset": {"name": "ds", "trainProb": 0.8}, "initialModel": {"name": "initial"},
                    "outputDir": "/out",
                    "trainSpec": {"template": template(shape, "cloud-2"), "trigger": {}},
                    "evalSpec": {"template": template(shape, "edge-2")},
                    "deploySpec": {"model": {"name": "deploy"}, "trigger": {}, "template": template(shape, "edge-1")}}}
    return [model("initial"), model("deploy"), dataset("ds", "edge-0")], obj


class Driver:
    """Runs one controller synchronously over a local store until it has created all its workers."""

    def __init__(self, store: LocalStore, setup: Callable[[Manager, ControllerSettings], Any],
                 settings: ControllerSettings) -> None:
        self.store, self.manager = store, Manager(store)
        self.controller = setup(self.manager, settings)

    def reconcile(self, name: str) -> None:
        for informer in self.manager.informers.values():
            informer.list_once()
        assert self.controller.process(NamespacedName("default", name)) is not None, "reconcile raised"


def run_controller(store: LocalStore, kind: str, obj: Obj, settings: ControllerSettings) -> None:
    name = obj["metadata"]["name"]
    if kind == "ji":
        Driver(store, joint_inference.setup, settings).reconcile(name)
    elif kind == "fl":
        driver = Driver(store, federated_learning.setup, settings)
        driver.reconcile(name)
        svc = store.get(SERVICE, "default", "fl-aggregation")
        svc["spec"]["clusterIP"] = "127.42.128.9"  # what the local backend's Service proxy allocates
        store.update(svc)
        driver.reconcile(name)
    else:
        driver = Driver(store, incremental_learning.setup, settings)
        driver.reconcile(name)  # the inference worker
        lc = {"phase": "train", "status": "ready", "round": 1, "input": {"model": "/m", "outputDir": "/out/t1"}}
        store.patch_status(INCREMENTAL_LEARNING_JOB, "default", name, {"edgeReports": {"lc": lc}})
        driver.reconcile(name)  # Train Ready -> its Pod
        store.patch_status(INCREMENTAL_LEARNING_JOB, "default", name, {"edgeReports": {
            "train": {"worker": "il-train-1", "status": "completed", "models": [{"url": "/out/t1/m.npz"}]},
            "lc": {"phase": "eval", "status": "ready", "round": 1, "input": {"models": ["/out/t1/m.npz"]}}}})
        driver.reconcile(name)  # Train Completed -> Eval Ready -> its Pod


def worker_nodes(store: LocalStore, owner: Obj) -> set[str]:
    """The node of every worker the controller created ('' ones are left to the scheduler)."""
    uid = owner["metadata"]["uid"]
    nodes = {pinned_node(p.get("spec")) for p in store.list(POD, "default")
             if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])}
    nodes |= {pinned_node(d["spec"]["template"].get("spec")) for d in store.list(DEPLOYMENT, "default")
              if any(r.get("uid") == uid for r in d["metadata"].get("ownerReferences") or [])}
    return nodes - {""}


@pytest.fixture
def store() -> Iterator[LocalStore]:
    store = LocalStore(":memory:")
    yield store
    store.close()


CASES = {"ji": ji, "fl": fl, "il": il}
DATA_NODES = {"ji": set(), "fl": {"edge-0", "edge-1"}, "il": {"edge-0"}}


@pytest.mark.parametrize("backend", sorted(SETTINGS))
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", sorted(CASES))
def test_the_hub_routes_an_object_to_the_nodes_of_its_workers(store: LocalStore, kind: str, shape: str,
                                                               backend: str) -> None:
    settings = SETTINGS[backend]
    deps, obj = CASES[kind](shape)
    for dep in deps:
        store.create(dep)
    owner = store.create(obj)
    run_controller(store, kind, owner, settings)
    placed = worker_nodes(store, owner)
    expected_workers = {"ji": 2, "fl": 3, "il": 3}[kind]
    assert len(store.list(POD) + store.list(DEPLOYMENT)) == expected_workers, "every worker exists"

    router = Router(settings.default_cloud_node or "")
    for dep in deps:
        router.apply("ADDED", store.get(*_ref(dep)))
    router.apply("ADDED", store.get(*_ref(owner)))

    routed = router.targets(key_of(owner))
    assert routed == placed | DATA_NODES[kind]
    for dep in deps:
        if dep["kind"] == "Model":
            assert router.targets(ObjectKey("model", "default", dep["metadata"]["name"])) == routed


def _ref(obj: Obj) -> tuple[Kind, str, str]:
    return kind_of(obj), "default", obj["metadata"]["name"]


def test_a_joint_inference_service_without_an_edge_node_has_no_workers_and_no_route(store: LocalStore) -> None:
    deps, obj = ji("nodeName")
    del obj["spec"]["edgeWorker"]["template"]["spec"]["nodeName"]
    for dep in deps:
        store.create(dep)
    owner = store.create(obj)
    run_controller(store, "ji", owner, SETTINGS["local"])

    router = Router("cloud")
    for dep in (*deps, owner):
        router.apply("ADDED", store.get(*_ref(dep)))
    assert store.list(DEPLOYMENT) == [] and router.targets(key_of(owner)) == frozenset()
