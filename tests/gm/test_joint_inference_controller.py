"""The JointInferenceService controller on the local store: children, env, status, recovery."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from gm.cluster.interface import DEPLOYMENT, EVENT, JOINT_INFERENCE_SERVICE, MODEL, POD, SERVICE, Cluster
from gm.cluster.local.store import LocalStore
from gm.controllers.setup import setup_controllers
from gm.runtime.reconciling import Manager
from gm.settings import ControllerSettings
from tests.gm.ji_fixtures import KEY, SETTINGS, Harness, env_of, ji, model

LABEL = "jointinferenceservice.sedna.io"
SETTINGS_KUBE = ControllerSettings()  # as python -m gm --backend kube builds it


@pytest.fixture
def store() -> Iterator[LocalStore]:
    store = LocalStore(":memory:")
    yield store
    store.close()


@pytest.fixture
def ready(store: LocalStore) -> Harness:
    store.create(model("small", "/models/edge.onnx"))
    store.create(model("big", "/models/cloud.onnx"))
    store.create(ji())
    return Harness(store)


def _status(store: LocalStore) -> dict:
    return store.get(JOINT_INFERENCE_SERVICE, "default", "digits").get("status", {})


def _reasons(store: LocalStore) -> list[str]:
    return [e["reason"] for e in store.list(EVENT, "default")]


class TestChildren:
    def test_creates_cloud_deployment_service_and_edge_deployment_owned_by_the_service(
            self, store: LocalStore, ready: Harness) -> None:
        ready.reconcile()

        owner = store.get(JOINT_INFERENCE_SERVICE, "default", "digits")
        uid = owner["metadata"]["uid"]
        cloud = store.get(DEPLOYMENT, "default", "digits-cloud")
        edge = store.get(DEPLOYMENT, "default", "digits-edge")
        svc = store.get(SERVICE, "default", "digits-cloud")
        for obj, worker_type in ((cloud, "cloud"), (edge, "edge"), (svc, "cloud")):
            assert obj["metadata"]["labels"] == {f"{LABEL}/name": "digits", f"{LABEL}/uid": uid,
                                                 f"{LABEL}/worker-type": worker_type}
            assert obj["metadata"]["ownerReferences"] == [{
                "apiVersion": "sedna.io/v1alpha1", "kind": "JointInferenceService", "name": "digits", "uid": uid,
                "controller": True, "blockOwnerDeletion": True}]
        assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("tcp-0", 5000), ("tcp-1", 5001)]
        assert svc["spec"]["selector"] == cloud["spec"]["template"]["metadata"]["labels"]
        assert cloud["spec"]["template"]["spec"]["nodeName"] == "cloud"
        assert edge["spec"]["template"]["spec"]["nodeName"] == "edge-0"
        assert sorted(_reasons(store)) == ["Created", "Created", "Created", "WorkersStarting"]

    def test_injects_the_worker_contract_env(self, store: LocalStore, ready: Harness) -> None:
        ready.reconcile()

        cloud = env_of(store.get(DEPLOYMENT, "default", "digits-cloud"))
        edge = env_of(store.get(DEPLOYMENT, "default", "digits-edge"))
        pod_ip = {"fieldRef": {"fieldPath": "status.podIP"}}
        pod_name = {"fieldRef": {"fieldPath": "metadata.name"}}
        assert cloud == {"NAMESPACE": "default", "SERVICE_NAME": "digits", "WORKER_NAME": pod_name,
                         "MODEL_URL": "/models/cloud.onnx", "JOB_NAME": "digits", "LC_SERVER": "http://127.0.0.1:9100",
                         "BIG_MODEL_BIND_IP": pod_ip, "BIG_MODEL_BIND_PORT": "5000", "BIG_MODEL_GRPC_PORT": "5001"}
        assert edge == {"NAMESPACE": "default", "SERVICE_NAME": "digits", "WORKER_NAME": pod_name,
                        "MODEL_URL": "/models/edge.onnx", "JOB_NAME": "digits", "LC_SERVER": "http://127.0.0.1:9101",
                        "LC_TOKEN": "t0",
                        "BIG_MODEL_IP": "digits-cloud.default", "BIG_MODEL_PORT": "5000",
                        "BIG_MODEL_GRPC_PORT": "5001", "HEM_NAME": "CrossEntropy",
                        "HEM_PARAMETERS": '[{"key": "threshold_cross_entropy", "value": "0.5"}]',
                        "EDGE_BIND_IP": pod_ip, "EDGE_BIND_PORT": "5100", "EDGE_GRPC_PORT": "5101",
                        "MQTT_BROKER": "127.0.0.1:1883"}

    def test_big_model_ip_is_the_service_cluster_ip_when_it_has_one(self, store: LocalStore, ready: Harness) -> None:
        ready.reconcile()
        svc = store.get(SERVICE, "default", "digits-cloud")
        svc["spec"]["clusterIP"] = "127.42.128.7"
        store.update(svc)

        ready.reconcile()

        assert env_of(store.get(DEPLOYMENT, "default", "digits-edge"))["BIG_MODEL_IP"] == "127.42.128.7"

    def test_a_users_own_env_value_is_kept_and_reported(self, store: LocalStore) -> None:
        store.create(model("small"))
        store.create(model("big"))
        store.create(ji(edge_env=[{"name": "HEM_NAME", "value": "Threshold"}, {"name": "LC_SERVER", "value": "x"}]))
        harness = Harness(store)

        harness.reconcile()

        edge = store.get(DEPLOYMENT, "default", "digits-edge")
        names = [e["name"] for e in edge["spec"]["template"]["spec"]["containers"][0]["env"]]
        assert names.count("HEM_NAME") == 1 and names.count("LC_SERVER") == 1
        assert env_of(edge)["HEM_NAME"] == "Threshold" and env_of(edge)["LC_SERVER"] == "x"
        kept = [e["message"] for e in store.list(EVENT, "default") if e["reason"] == "EnvKept"]
        assert kept == ["edge worker: kept the user's own value of HEM_NAME, LC_SERVER"]


class TestIdempotence:
    def test_reconciling_twice_writes_nothing_the_second_time(self, store: LocalStore, ready: Harness) -> None:
        ready.reconcile()
        version = store.resource_version()

        ready.reconcile()

        assert store.resource_version() == version

    def test_a_restarted_controller_creates_nothing_twice(self, store: LocalStore, ready: Harness) -> None:
        ready.reconcile()
        uids = {d["metadata"]["uid"] for d in store.list(DEPLOYMENT)}
        version = store.resource_version()

        Harness(store).reconcile()

        assert {d["metadata"]["uid"] for d in store.list(DEPLOYMENT)} == uids
        assert store.resource_version() == version

    def test_a_deleted_child_is_recreated(self, store: LocalStore, ready: Harness) -> None:
        ready.reconcile()
        store.delete(DEPLOYMENT, "default", "digits-edge")
        store.delete(SERVICE, "default", "digits-cloud")
        ready.sync()
        assert KEY in ready.queued()  # the child's DELETED event maps to its owner

        ready.reconcile()

        assert store.get(DEPLOYMENT, "default", "digits-edge")["metadata"]["ownerReferences"][0]["name"] == "digits"
        assert store.get(SERVICE, "default", "digits-cloud")

    def test_a_spec_change_updates_the_deployment_template_in_place(self, store: LocalStore, ready: Harness) -> None:
        ready.reconcile()
        before = store.get(DEPLOYMENT, "default", "digits-edge")
        obj = store.get(JOINT_INFERENCE_SERVICE, "default", "digits")
        obj["spec"]["edgeWorker"]["hardExampleMining"] = {"name": "Threshold", "parameters": [
            {"key": "threshold", "value": "0.8"}]}
        store.update(obj)

        ready.reconcile()

        after = store.get(DEPLOYMENT, "default", "digits-edge")
        assert after["metadata"]["uid"] == before["metadata"]["uid"]
        assert env_of(after)["HEM_NAME"] == "Threshold"
        assert json.loads(env_of(after)["HEM_PARAMETERS"]) == [{"key": "threshold", "value": "0.8"}]
        assert "Updated" in _reasons(store)
        assert _status(store)["conditions"][0]["observedGeneration"] == 2

    def test_deleting_the_service_deletes_its_children(self, store: LocalStore, ready: Harness) -> None:
        ready.reconcile()

        store.delete(JOINT_INFERENCE_SERVICE, "default", "digits")

        assert store.list(DEPLOYMENT) == [] and store.list(SERVICE) == []
        ready.reconcile()  # a reconcile of a vanished service does nothing
        assert store.list(DEPLOYMENT) == []


class TestStatus:
    def test_pending_until_both_workers_are_ready_then_running(self, store: LocalStore, ready: Harness) -> None:
        ready.reconcile()
        status = _status(store)
        assert (status["phase"], status["readyWorkers"], status["active"], status["failed"]) == ("Pending", "0/2", 0, 0)
        assert status["conditions"][0]["reason"] == "WorkersStarting"
        assert status["startTime"]

        for name in ("digits-cloud", "digits-edge"):
            store.patch_status(DEPLOYMENT, "default", name, {"replicas": 1, "readyReplicas": 1})
        ready.reconcile()

        status = _status(store)
        assert (status["phase"], status["readyWorkers"], status["active"]) == ("Running", "2/2", 2)
        running = next(c for c in status["conditions"] if c["type"] == "Running")
        assert (running["status"], running["reason"], running["observedGeneration"]) == ("True", "WorkersReady", 1)
        assert "inference" not in status and "metrics" not in status

    def test_a_failed_worker_fails_the_service_until_it_recovers(self, store: LocalStore, ready: Harness) -> None:
        ready.reconcile()
        owner = store.get(JOINT_INFERENCE_SERVICE, "default", "digits")
        labels = {f"{LABEL}/name": "digits", f"{LABEL}/uid": owner["metadata"]["uid"], f"{LABEL}/worker-type": "edge"}
        pod = store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "digits-edge-abc", "namespace": "default", "labels": labels}, "spec": {}})
        store.patch_status(POD, "default", pod["metadata"]["name"], {"phase": "Failed", "reason": "Error",
                                                                     "message": "exit code 1"})
        store.patch_status(DEPLOYMENT, "default", "digits-cloud", {"readyReplicas": 1})
        ready.sync()
        assert KEY in ready.queued()  # pod events map to the service through the worker labels

        ready.reconcile()
        status = _status(store)
        assert (status["phase"], status["failed"], status["readyWorkers"]) == ("Failed", 1, "1/2")
        failed = next(c for c in status["conditions"] if c["type"] == "Failed")
        assert failed["message"] == "edge worker: pod digits-edge-abc Failed: Error exit code 1"

        store.patch_status(POD, "default", "digits-edge-abc", {"phase": "Running", "reason": None, "message": None})
        ready.reconcile()
        assert (_status(store)["phase"], _status(store)["failed"]) == ("Running", 0)


class TestValidation:
    def test_a_missing_model_keeps_the_service_pending_until_the_model_exists(self, store: LocalStore) -> None:
        store.create(model("small"))
        store.create(ji())
        harness = Harness(store)

        harness.reconcile()

        status = _status(store)
        assert status["phase"] == "Pending"
        assert status["conditions"][0]["message"] == ("spec.cloudWorker.model.name: Model 'big' not found in "
                                                      "namespace 'default'")
        assert store.list(DEPLOYMENT) == []
        store.create(model("big"))
        harness.sync()
        assert KEY in harness.queued()  # the Model's creation triggers the services that name it
        harness.reconcile()
        assert len(store.list(DEPLOYMENT)) == 2
        assert _status(store)["conditions"][-1]["reason"] == "WorkersStarting"

    def test_unknown_hem_algorithm_fails_naming_the_field_and_a_fix_recovers(self, store: LocalStore) -> None:
        store.create(model("small"))
        store.create(model("big"))
        store.create(ji(hem="IBTT", params=[]))
        harness = Harness(store)

        harness.reconcile()

        status = _status(store)
        assert status["phase"] == "Failed"
        assert status["conditions"][0]["message"] == ("spec.edgeWorker.hardExampleMining.name: unknown algorithm "
                                                      "'IBTT' (did you mean 'IBT'?)")
        assert "InvalidSpec" in _reasons(store)
        obj = store.get(JOINT_INFERENCE_SERVICE, "default", "digits")
        obj["spec"]["edgeWorker"]["hardExampleMining"]["name"] = "IBT"
        store.update(obj)
        harness.reconcile()
        assert _status(store)["phase"] == "Pending"
        assert len(store.list(DEPLOYMENT)) == 2

    @pytest.mark.parametrize(("params", "message"), [
        ([{"key": "threshold_img", "value": "high"}],
         "spec.edgeWorker.hardExampleMining.parameters[0].value: threshold_img must be a number, got 'high'"),
        ([{"key": "threshold_box", "value": "0.5"}, {"key": "threshold_img", "value": ""}],
         "spec.edgeWorker.hardExampleMining.parameters[1].value: threshold_img must be a number, got ''"),
    ])
    def test_hem_parameters_must_parse(self, store: LocalStore, params: list, message: str) -> None:
        store.create(model("small"))
        store.create(model("big"))
        store.create(ji(hem="IBT", params=params))
        harness = Harness(store)

        harness.reconcile()

        assert _status(store)["conditions"][0]["message"] == message

    def test_every_problem_is_listed_and_the_edge_node_is_required(self, store: LocalStore) -> None:
        store.create(ji(node=""))
        harness = Harness(store)

        harness.reconcile()

        message = _status(store)["conditions"][0]["message"]
        assert message.split("; ") == [
            "spec.edgeWorker.model.name: Model 'small' not found in namespace 'default'",
            "spec.cloudWorker.model.name: Model 'big' not found in namespace 'default'",
            "spec.edgeWorker.template.spec.nodeName: edge node not named (set nodeName or nodeSelector "
            "kubernetes.io/hostname)",
        ]
        assert _status(store)["phase"] == "Failed"


def test_the_running_manager_creates_children_from_watch_events(store: LocalStore) -> None:
    manager = Manager(store, resync_period=60)
    setup_controllers(manager, SETTINGS)
    manager.start()
    try:
        store.create(ji())
        store.create(model("small"))
        store.create(model("big"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(store.list(DEPLOYMENT)) < 2:
            time.sleep(0.02)
        assert sorted(d["metadata"]["name"] for d in store.list(DEPLOYMENT)) == ["digits-cloud", "digits-edge"]
        while time.monotonic() < deadline and store.get(MODEL, "default", "big").get("status") is None:
            time.sleep(0.02)
        assert store.get(MODEL, "default", "big")["status"]["conditions"][0]["type"] == "Ready"
    finally:
        manager.stop()


class TestKubeBackend:
    """The same controller against the kmock Kubernetes API emulator through KubeCluster."""

    @pytest.fixture
    def kube(self) -> Iterator[Cluster]:
        from tests.gm.test_cluster_contract import kube_backend

        with kube_backend() as cluster:
            cluster.create(model("small", "/models/edge.onnx"))
            cluster.create(model("big", "/models/cloud.onnx"))
            cluster.create(ji())
            yield cluster

    def test_children_env_owner_refs_and_status_are_written(self, kube: Cluster) -> None:
        harness = Harness(kube, SETTINGS_KUBE)

        harness.reconcile()

        owner = kube.get(JOINT_INFERENCE_SERVICE, "default", "digits")
        edge = kube.get(DEPLOYMENT, "default", "digits-edge")
        cloud = kube.get(DEPLOYMENT, "default", "digits-cloud")
        svc = kube.get(SERVICE, "default", "digits-cloud")
        for obj in (edge, cloud, svc):
            assert obj["metadata"]["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]
            assert obj["metadata"]["labels"][f"{LABEL}/uid"] == owner["metadata"]["uid"]
        assert env_of(edge)["BIG_MODEL_IP"] == "digits-cloud.default"  # no clusterIP from the emulator
        assert env_of(edge)["LC_SERVER"] == "http://127.0.0.1:9100"
        assert env_of(cloud)["MODEL_URL"] == "/models/cloud.onnx"
        assert "nodeName" not in cloud["spec"]["template"]["spec"]  # the scheduler places cloud workers
        assert owner["status"]["phase"] == "Pending" and owner["status"]["readyWorkers"] == "0/2"

    def test_reconciling_again_creates_nothing_and_a_deleted_child_comes_back(self, kube: Cluster) -> None:
        harness = Harness(kube, SETTINGS_KUBE)
        harness.reconcile()
        uid = kube.get(DEPLOYMENT, "default", "digits-cloud")["metadata"]["uid"]

        Harness(kube, SETTINGS_KUBE).reconcile()
        assert kube.get(DEPLOYMENT, "default", "digits-cloud")["metadata"]["uid"] == uid
        kube.delete(DEPLOYMENT, "default", "digits-edge")
        harness.reconcile()

        assert kube.get(DEPLOYMENT, "default", "digits-edge")["metadata"]["labels"][f"{LABEL}/worker-type"] == "edge"
        assert len(kube.list(DEPLOYMENT, "default")) == 2

    def test_a_bad_reference_names_the_field_and_recovers(self, kube: Cluster) -> None:
        kube.delete(MODEL, "default", "big")
        kube.delete(JOINT_INFERENCE_SERVICE, "default", "digits")
        kube.create(ji())
        harness = Harness(kube, SETTINGS_KUBE)

        harness.reconcile()
        status = kube.get(JOINT_INFERENCE_SERVICE, "default", "digits")["status"]
        assert status["conditions"][0]["message"].startswith("spec.cloudWorker.model.name: Model 'big' not found")

        kube.create(model("big"))
        harness.reconcile()
        assert len(kube.list(DEPLOYMENT, "default")) == 2
