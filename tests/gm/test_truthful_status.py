"""Status that tells the truth: crash-looping workers, a Model missing on a node, Events, no waiting in a reconcile.

A crash-looping worker never shows its owner as Running: the owner's condition names the restart
count, the last exit code and the last log lines, and every new crash is a Warning Event whose
repeats are counted. The controllers run against a local store; Pod status is written as a
kubelet (or the local runtime) writes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from gm.cluster.interface import (
    DEPLOYMENT,
    EVENT,
    FEDERATED_LEARNING_JOB,
    INCREMENTAL_LEARNING_JOB,
    JOINT_INFERENCE_SERVICE,
    MODEL,
    POD,
    AlreadyExists,
    Kind,
    Obj,
)
from gm.cluster.local.logs import log_path
from gm.cluster.local.store import LocalStore
from gm.controllers import incremental_learning, model
from gm.errors import MalformedReport
from gm.runtime.outcomes import NamespacedName
from gm.runtime.patches import utc_now
from gm.runtime.reconciling import Manager
from gm.settings import ControllerSettings
from gm.workloads.applying import TERMINATING_RETRY
from tests.federated import fl_fixtures
from tests.gm import ji_fixtures

LABEL = "jointinferenceservice.sedna.io"


@pytest.fixture
def store() -> Iterator[LocalStore]:
    store = LocalStore(":memory:")
    yield store
    store.close()


def ago(seconds: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def crash_looping(container: str, restarts: int, exit_code: int = 2) -> dict[str, Any]:
    return {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}], "containerStatuses": [{
        "name": container, "restartCount": restarts, "ready": False,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s restarting failed container"}},
        "lastState": {"terminated": {"exitCode": exit_code, "reason": "Error", "finishedAt": ago(1)}}}]}


def events(store: LocalStore, reason: str) -> list[Obj]:
    return [e for e in store.list(EVENT, "default") if e["reason"] == reason]


def status_of(store: LocalStore, kind: Kind, name: str) -> dict[str, Any]:
    return store.get(kind, "default", name).get("status") or {}


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


class TestJointInference:
    @pytest.fixture
    def harness(self, store: LocalStore, tmp_path: Path) -> ji_fixtures.Harness:
        store.create(ji_fixtures.model("small"))
        store.create(ji_fixtures.model("big"))
        store.create(ji_fixtures.ji())
        harness = ji_fixtures.Harness(store, dataclasses.replace(ji_fixtures.SETTINGS, pod_log_dir=str(tmp_path)))
        harness.reconcile()
        store.patch_status(DEPLOYMENT, "default", "digits-cloud", {"readyReplicas": 1})
        return harness

    def _edge_pod(self, store: LocalStore, status: dict[str, Any]) -> None:
        owner = store.get(JOINT_INFERENCE_SERVICE, "default", "digits")
        labels = {f"{LABEL}/name": "digits", f"{LABEL}/uid": owner["metadata"]["uid"], f"{LABEL}/worker-type": "edge"}
        with contextlib.suppress(AlreadyExists):  # already there: only its status changes
            store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": "digits-edge-abc", "namespace": "default", "labels": labels},
                "spec": {"containers": [{"name": "edge"}]}})
        store.patch_status(POD, "default", "digits-edge-abc", status)

    def test_a_crash_loop_fails_the_service_with_restarts_exit_code_and_last_log_lines(
            self, store: LocalStore, harness: ji_fixtures.Harness, tmp_path: Path) -> None:
        log_path(tmp_path, "default", "digits-edge-abc", "edge").write_text(
            "loading /models/edge.onnx\nTraceback (most recent call last):\n"
            "FileNotFoundError: [Errno 2] No such file or directory: '/models/edge.onnx'\n\n")
        self._edge_pod(store, crash_looping("edge", 3))

        harness.reconcile()

        status = status_of(store, JOINT_INFERENCE_SERVICE, "digits")
        assert (status["phase"], status["readyWorkers"], status["failed"]) == ("Failed", "1/2", 1)
        failed = condition(status, "Failed")
        assert failed["reason"] == "CrashLoopBackOff"
        assert failed["message"] == (
            "edge worker: pod digits-edge-abc CrashLoopBackOff: container 'edge' restarted 3 times, last exit code 2 "
            "(Error): back-off 20s restarting failed container; last log lines: loading /models/edge.onnx | "
            "Traceback (most recent call last): | FileNotFoundError: [Errno 2] No such file or directory: "
            "'/models/edge.onnx'")
        [event] = events(store, "CrashLoopBackOff")
        assert (event["type"], event["count"], event["message"]) == (
            "Warning", 1, "edge worker: pod digits-edge-abc container 'edge' is crash-looping")

        self._edge_pod(store, crash_looping("edge", 4))
        harness.reconcile()
        harness.reconcile()  # a reconcile that sees nothing new records nothing new

        failed = condition(status_of(store, JOINT_INFERENCE_SERVICE, "digits"), "Failed")
        assert "restarted 4 times" in failed["message"]
        [event] = events(store, "CrashLoopBackOff")
        assert event["count"] == 2

    def test_a_worker_up_again_between_crashes_is_not_running_until_it_stays_up(
            self, store: LocalStore, harness: ji_fixtures.Harness) -> None:
        flapping = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "containerStatuses": [{
            "name": "edge", "restartCount": 2, "ready": True, "state": {"running": {"startedAt": ago(2)}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(3)}}}]}
        self._edge_pod(store, flapping)
        store.patch_status(DEPLOYMENT, "default", "digits-edge", {"readyReplicas": 1})
        harness.sync()

        outcome = harness.controller.process(ji_fixtures.KEY)

        status = status_of(store, JOINT_INFERENCE_SERVICE, "digits")
        assert status["phase"] == "Failed" and condition(status, "Failed")["reason"] == "CrashLoopBackOff"
        assert "running again but not yet stable" in condition(status, "Failed")["message"]
        assert outcome is not None and outcome.requeue_after is not None and 5 < outcome.requeue_after <= 10.5

        flapping["containerStatuses"][0]["state"] = {"running": {"startedAt": ago(30)}}
        self._edge_pod(store, flapping)
        harness.reconcile()
        status = status_of(store, JOINT_INFERENCE_SERVICE, "digits")
        assert (status["phase"], condition(status, "Running")["reason"]) == ("Running", "WorkersReady")
        assert [e["type"] for e in events(store, "WorkersReady")] == ["Normal"]  # the transition is an Event


class TestFederatedLearning:
    @pytest.fixture
    def harness(self, store: LocalStore) -> fl_fixtures.Harness:
        store.create(fl_fixtures.model())
        store.create(fl_fixtures.dataset("ds-0", "edge-0"))
        store.create(fl_fixtures.dataset("ds-1", "edge-1"))
        store.create(fl_fixtures.job())
        harness = fl_fixtures.Harness(store)
        harness.reconcile()
        harness.allocate_cluster_ip()
        harness.reconcile()
        return harness

    def test_a_crash_looping_aggregator_below_the_limit_leaves_the_job_pending_not_running(
            self, store: LocalStore, harness: fl_fixtures.Harness) -> None:
        harness.cluster.patch_status(POD, "default", "fl-aggregation", crash_looping("aggregator", 2))

        harness.reconcile()

        status = status_of(store, FEDERATED_LEARNING_JOB, "fl")
        training = condition(status, "Training")
        assert (status["phase"], training["status"], training["reason"]) == ("Pending", "False", "CrashLoopBackOff")
        assert training["message"].startswith("aggregation worker pod fl-aggregation CrashLoopBackOff: container "
                                              "'aggregator' restarted 2 times, last exit code 2")
        assert [e["type"] for e in events(store, "CrashLoopBackOff")] == ["Warning"]

    def test_a_crash_looping_trainer_keeps_the_job_from_showing_running(
            self, store: LocalStore, harness: fl_fixtures.Harness) -> None:
        harness.set_pod_phase("fl-aggregation", "Running")
        harness.set_pod_phase("fl-train-0", "Running")
        harness.reconcile()
        assert status_of(store, FEDERATED_LEARNING_JOB, "fl")["phase"] == "Running"

        harness.cluster.patch_status(POD, "default", "fl-train-1", crash_looping("trainer", 1, exit_code=1))
        harness.reconcile()

        status = status_of(store, FEDERATED_LEARNING_JOB, "fl")
        assert status["phase"] == "Pending"
        assert condition(status, "Training")["message"].startswith(
            "training worker pod fl-train-1 CrashLoopBackOff: container 'trainer' restarted once, last exit code 1")
        assert {e["reason"] for e in store.list(EVENT, "default")} >= {"AggregatorRunning", "CrashLoopBackOff"}


CONTAINERS = {"spec": {"containers": [{"name": "w", "image": "x", "command": ["python", "-c", "pass"]}]}}


def il_job(hot: bool = True) -> Obj:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "IncrementalLearningJob",
            "metadata": {"name": "il", "namespace": "default"},
            "spec": {"dataset": {"name": "ds", "trainProb": 0.8}, "initialModel": {"name": "initial"},
                     "outputDir": "/out", "trainSpec": {"template": CONTAINERS, "trigger": {}},
                     "evalSpec": {"template": CONTAINERS},
                     "deploySpec": {"model": {"name": "deploy", "hotUpdateEnabled": hot}, "trigger": {},
                                    "template": CONTAINERS}}}


def il_objects(store: Any) -> None:
    for name in ("initial", "deploy"):
        store.create({"apiVersion": "sedna.io/v1alpha1", "kind": "Model",
                      "metadata": {"name": name, "namespace": "default"},
                      "spec": {"url": f"/m/{name}.npz", "format": "npz"}})
    store.create({"apiVersion": "sedna.io/v1alpha1", "kind": "Dataset",
                  "metadata": {"name": "ds", "namespace": "default"},
                  "spec": {"url": "/data/index.csv", "format": "csv", "nodeName": "edge-0"}})


class Driver:
    """One controller over a cluster, reconciled synchronously."""

    def __init__(self, cluster: Any, setup: Any, settings: ControllerSettings = ControllerSettings()) -> None:
        self.manager = Manager(cluster)
        self.controller = setup(self.manager, settings)

    def reconcile(self, name: str) -> Any:
        for informer in self.manager.informers.values():
            informer.list_once()
        outcome = self.controller.process(NamespacedName("default", name))
        for informer in self.manager.informers.values():
            informer.list_once()
        return outcome


class TestIncrementalLearning:
    def test_a_crash_looping_inference_worker_shows_in_status_and_events(self, store: LocalStore) -> None:
        il_objects(store)
        store.create(il_job())
        driver = Driver(store, incremental_learning.setup)
        driver.reconcile("il")
        driver.reconcile("il")  # what the new Pod's ADDED event causes
        assert status_of(store, INCREMENTAL_LEARNING_JOB, "il")["inferenceWorker"]["state"] == "Pending"

        store.patch_status(POD, "default", "il-infer", crash_looping("w", 5))
        driver.reconcile("il")

        worker = status_of(store, INCREMENTAL_LEARNING_JOB, "il")["inferenceWorker"]
        assert (worker["pod"], worker["state"], worker["restarts"]) == ("il-infer", "CrashLoopBackOff", 5)
        assert "restarted 5 times, last exit code 2" in worker["message"]
        [event] = events(store, "CrashLoopBackOff")
        assert (event["type"], event["message"]) == ("Warning", "inference worker: pod il-infer container 'w' is "
                                                                "crash-looping")

    def test_every_stage_transition_is_an_event(self, store: LocalStore) -> None:
        il_objects(store)
        store.create(il_job())
        driver = Driver(store, incremental_learning.setup)
        driver.reconcile("il")
        store.patch_status(INCREMENTAL_LEARNING_JOB, "default", "il", {"edgeReports": {"lc": {
            "phase": "train", "status": "ready", "round": 1, "input": {"model": "/m/initial.npz"}}}})
        driver.reconcile("il")

        reasons = [e["reason"] for e in sorted(store.list(EVENT, "default"), key=lambda e: e["firstTimestamp"])]
        assert {"JobCreated", "ReportedByLC", "PodCreated"} <= set(reasons)


class KubeLikePods:
    """A local store whose Pods are deleted as on Kubernetes: the name stays, with a ``deletionTimestamp``,
    until the kubelet has stopped the containers (:meth:`finish_deletions`)."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        if kind != POD:
            self.store.delete(kind, namespace, name)
            return
        pod = self.store.get(POD, namespace, name)
        pod["metadata"]["deletionTimestamp"] = utc_now()
        self.store.update(pod)

    def finish_deletions(self) -> None:
        for pod in self.store.list(POD):
            if pod["metadata"].get("deletionTimestamp"):
                self.store.delete(POD, pod["metadata"]["namespace"], pod["metadata"]["name"])


def test_recreating_a_pod_still_terminating_is_a_short_requeue_not_a_wait(store: LocalStore) -> None:
    cluster = KubeLikePods(store)
    il_objects(store)
    store.create(il_job(hot=False))
    driver = Driver(cluster, incremental_learning.setup)
    driver.reconcile("il")
    before = store.get(POD, "default", "il-infer")["metadata"]["uid"]
    deploy = store.get(MODEL, "default", "deploy")
    deploy["spec"]["url"] = "/m/deploy-v2.npz"  # the inference worker must be recreated with the new model
    store.update(deploy)

    started = time.monotonic()
    outcome = driver.reconcile("il")
    took = time.monotonic() - started

    assert outcome is not None and outcome.requeue_after == TERMINATING_RETRY
    assert took < TERMINATING_RETRY, "the reconcile waited for the old Pod instead of requeueing"
    assert store.get(POD, "default", "il-infer")["metadata"]["deletionTimestamp"]
    cluster.finish_deletions()
    driver.reconcile("il")
    pod = store.get(POD, "default", "il-infer")
    assert pod["metadata"]["uid"] != before and "deletionTimestamp" not in pod["metadata"]
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["MODEL_URL"] == "/m/deploy-v2.npz"


class TestModelNodeReports:
    @pytest.fixture
    def driver(self, store: LocalStore) -> Driver:
        store.create({"apiVersion": "sedna.io/v1alpha1", "kind": "Model",
                      "metadata": {"name": "m", "namespace": "default"},
                      "spec": {"url": "/models/m.onnx", "format": "onnx"}})
        driver = Driver(store, model.setup)
        driver.reconcile("m")
        return driver

    def test_a_file_missing_on_a_node_fails_the_model_until_the_node_finds_it(self, store: LocalStore,
                                                                             driver: Driver) -> None:
        assert condition(status_of(store, MODEL, "m"), "Ready")["message"] == "spec is valid"

        model.apply_node_report(store, "default", "m", "edge-0", {
            "available": False, "reason": "FileMissing", "message": "/models/m.onnx: no such file", "generation": 1})
        model.apply_node_report(store, "default", "m", "cloud", {"available": True, "generation": 1})
        for informer in driver.manager.informers.values():
            informer.list_once()
        assert NamespacedName("default", "m") in _queued(driver)  # a status-only report wakes the controller
        driver.reconcile("m")

        status = status_of(store, MODEL, "m")
        failed = condition(status, "Failed")
        assert (failed["status"], failed["reason"], failed["message"]) == (
            "True", "FileMissing", "node edge-0: /models/m.onnx: no such file")
        assert condition(status, "Ready")["status"] == "False"
        assert [e["type"] for e in events(store, "FileMissing")] == ["Warning"]

        model.apply_node_report(store, "default", "m", "edge-0", {"available": True, "generation": 1})
        driver.reconcile("m")
        ready = condition(status_of(store, MODEL, "m"), "Ready")
        assert (ready["status"], ready["message"]) == ("True", "spec is valid; available on cloud, edge-0")

    def test_a_report_about_an_older_spec_is_ignored(self, store: LocalStore, driver: Driver) -> None:
        model.apply_node_report(store, "default", "m", "edge-0", {"available": False, "reason": "FileMissing",
                                                                  "generation": 1})
        obj = store.get(MODEL, "default", "m")
        obj["spec"]["url"] = "/models/m2.onnx"
        store.update(obj)

        driver.reconcile("m")

        assert condition(status_of(store, MODEL, "m"), "Ready")["status"] == "True"

    @pytest.mark.parametrize(("payload", "field"), [
        ({"reason": "FileMissing"}, "available"), ({"available": "no"}, "available"),
        ({"available": False, "reason": "file missing"}, "reason"),
        ({"available": True, "generation": 0}, "generation"),
        ({"available": True, "message": 3}, "message"),
    ])
    def test_a_malformed_report_names_the_field_and_stores_nothing(self, store: LocalStore, driver: Driver,
                                                                   payload: dict[str, Any], field: str) -> None:
        before = store.get(MODEL, "default", "m")["status"]
        with pytest.raises(MalformedReport, match=f"^{field}:"):
            model.apply_node_report(store, "default", "m", "edge-0", payload)
        assert store.get(MODEL, "default", "m")["status"] == before


def _queued(driver: Driver) -> set[NamespacedName]:
    keys = set()
    while (key := driver.controller.queue.get(timeout=0)) is not None:
        keys.add(key)
        driver.controller.queue.done(key)
    return keys


def test_on_kubernetes_the_last_log_lines_come_from_the_pod_log_subresource() -> None:
    import kubernetes

    from gm.cluster.kube import KubeCluster
    from tests.gm.kube_emulator import EmulatedApiServer

    with EmulatedApiServer() as server:
        configuration = kubernetes.client.Configuration()
        configuration.host = server.url
        cluster = KubeCluster(kubernetes.client.ApiClient(configuration), watch_timeout=1)
        try:
            cluster.create(ji_fixtures.model("small"))
            cluster.create(ji_fixtures.model("big"))
            cluster.create(ji_fixtures.ji())
            harness = ji_fixtures.Harness(cluster, ControllerSettings())  # as python -m gm --backend kube builds it
            harness.reconcile()
            owner = cluster.get(JOINT_INFERENCE_SERVICE, "default", "digits")
            labels = {f"{LABEL}/name": "digits", f"{LABEL}/uid": owner["metadata"]["uid"],
                      f"{LABEL}/worker-type": "edge"}
            cluster.create({"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": "digits-edge-x1", "namespace": "default", "labels": labels},
                "spec": {"containers": [{"name": "edge"}]}})
            cluster.patch_status(POD, "default", "digits-edge-x1", crash_looping("edge", 7, exit_code=1))
            server.call(lambda: server.emulator.logs.__setitem__(  # type: ignore[union-attr]
                ("default", "digits-edge-x1", "edge"), "starting\nValueError: EDGE_OUTPUT 'prob' is not an output\n"))

            harness.reconcile()

            status = cluster.get(JOINT_INFERENCE_SERVICE, "default", "digits")["status"]
            message = condition(status, "Failed")["message"]
            assert status["phase"] == "Failed" and "restarted 7 times, last exit code 1" in message
            assert message.endswith("last log lines: starting | ValueError: EDGE_OUTPUT 'prob' is not an output")
            [event] = [e for e in cluster.list(EVENT, "default") if e["reason"] == "CrashLoopBackOff"]
            assert event["count"] == 1 and event["type"] == "Warning"
        finally:
            cluster.close()
