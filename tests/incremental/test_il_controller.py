"""The IncrementalLearningJob controller under lasting faults, hot updates and quarantined samples.

The controller runs against a local store with a fake clock; the LC's decisions, the workers'
reports and the stage Pods' status are written as the hub handler and the runtime write them.

- A lasting failure backs off (CrashLoopBackOff-style) instead of opening a round per trigger tick:
  after the n-th failure in a row the next round opens no earlier than ``base * 2**(n-1)`` seconds
  later (capped), the condition and ``status.retry`` say how many failures and when, the LC learns
  the deadline from the job annotation, and a completed round resets the count.
- ``status.deployedRound`` follows hot updates too (it stayed 0 while ``servedRound`` was right).
- Index records the LC quarantined show in ``status.quarantinedSamples`` with their lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from gm.cluster.interface import DATASET, INCREMENTAL_LEARNING_JOB, MODEL, POD
from gm.cluster.local.store import LocalStore
from gm.controllers.incremental_learning.reconciler import IncrementalLearningReconciler
from gm.controllers.stages.backoff import RetryBackoff
from gm.runtime.outcomes import NamespacedName, Outcome
from gm.runtime.reconciling import Manager
from gm.settings import ControllerSettings
from sedna.controlplane import il_protocol as ilp

BASE = 10.0
CONTAINERS = {"spec": {"containers": [{"name": "w", "image": "x", "command": ["python", "-c", "pass"]}]}}
KEY = NamespacedName("default", "il")


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self, store: LocalStore) -> None:
        self.store, self.clock = store, Clock()
        self.manager = Manager(store)
        caches = {k.plural: self.manager.informer(k).cache for k in (INCREMENTAL_LEARNING_JOB, DATASET, MODEL, POD)}
        settings = ControllerSettings(default_cloud_node="cloud", stage_retry_base=BASE, stage_retry_cap=300.0)
        self.reconciler = IncrementalLearningReconciler(store, caches, settings, clock=self.clock)

    def pod(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.store.list(POD, "default") if p["metadata"]["name"] == name), None)

    def reconcile(self) -> Outcome:
        for informer in self.manager.informers.values():
            informer.list_once()
        return self.reconciler.reconcile(KEY)

    def status(self) -> dict[str, Any]:
        return self.store.get(INCREMENTAL_LEARNING_JOB, "default", "il").get("status") or {}

    def last(self) -> dict[str, Any]:
        return self.status()["conditions"][-1]

    def lc_decides_train(self, round_: int) -> None:
        self.store.patch_status(INCREMENTAL_LEARNING_JOB, "default", "il", {"edgeReports": {"lc": {
            "phase": "train", "status": "ready", "round": round_, "input": {"model": "/m/initial.npz"}}}})

    def train_pod_fails(self, round_: int) -> None:
        self.store.patch_status(POD, "default", f"il-train-{round_}", {
            "phase": "Failed", "containerStatuses": [{"name": "w", "restartCount": 0, "state": {
                "terminated": {"exitCode": 1, "reason": "Error"}}}]})

    def attempt(self, round_: int) -> None:
        """The LC fires round ``round_`` and its train Pod fails."""
        self.lc_decides_train(round_)
        self.reconcile()
        assert self.pod(f"il-train-{round_}") is not None
        self.train_pod_fails(round_)
        self.reconcile()


@pytest.fixture
def harness() -> Iterator[Harness]:
    store = LocalStore(":memory:")
    for name in ("initial", "deploy"):
        store.create({"apiVersion": "sedna.io/v1alpha1", "kind": "Model", "metadata": {"name": name, "namespace":
                      "default"}, "spec": {"url": f"/m/{name}.npz", "format": "npz"}})
    store.create({"apiVersion": "sedna.io/v1alpha1", "kind": "Dataset", "metadata": {"name": "ds", "namespace":
                  "default"}, "spec": {"url": "/data/index.csv", "format": "csv", "nodeName": "edge-0"}})
    store.create({"apiVersion": "sedna.io/v1alpha1", "kind": "IncrementalLearningJob",
                  "metadata": {"name": "il", "namespace": "default"},
                  "spec": {"dataset": {"name": "ds", "trainProb": 0.8}, "initialModel": {"name": "initial"},
                           "outputDir": "/out", "trainSpec": {"template": CONTAINERS, "trigger": {}},
                           "evalSpec": {"template": CONTAINERS},
                           "deploySpec": {"model": {"name": "deploy", "hotUpdateEnabled": True}, "trigger": {},
                                          "template": CONTAINERS}}})
    h = Harness(store)
    h.reconcile()
    yield h
    store.close()


def test_the_delay_doubles_from_the_base_up_to_the_cap() -> None:
    backoff = RetryBackoff(10, 300)
    assert [backoff.delay(n) for n in range(0, 8)] == [0, 10, 20, 40, 80, 160, 300, 300]
    assert RetryBackoff(0, 300).delay(3) == 0


def test_each_failure_in_a_row_doubles_the_wait_before_the_next_round(harness: Harness) -> None:
    harness.attempt(1)

    last = harness.last()
    data = json.loads(last["data"])
    assert (last["stage"], last["type"], last["reason"]) == ("Train", "Waiting", "StageFailed")
    assert (data["round"], data["failures"], data["retryAt"]) == (1, 1, harness.clock.now + BASE)
    assert "1 failure in a row" in last["message"] and "back-off 10s" in last["message"]
    assert harness.status()["retry"] == {"failures": 1, "nextAttemptTime": data["nextAttempt"]}

    # the LC fires again at once: the decision waits, and the controller comes back at the deadline
    harness.lc_decides_train(2)
    outcome = harness.reconcile()
    assert harness.pod("il-train-2") is None
    assert outcome.requeue_after == pytest.approx(BASE)
    harness.clock.now += BASE - 0.5
    assert harness.reconcile().requeue_after == pytest.approx(0.5)
    assert harness.pod("il-train-2") is None

    harness.clock.now += 0.5
    harness.reconcile()
    assert harness.pod("il-train-2") is not None
    harness.train_pod_fails(2)
    harness.reconcile()
    data = json.loads(harness.last()["data"])
    assert (data["failures"], data["retryAt"]) == (2, harness.clock.now + 2 * BASE)
    assert "2 failures in a row" in harness.last()["message"]

    harness.clock.now += 2 * BASE
    harness.attempt(3)
    assert json.loads(harness.last()["data"])["failures"] == 3
    assert harness.status()["retry"]["failures"] == 3


def test_the_lc_is_told_when_the_next_round_may_open(harness: Harness) -> None:
    harness.attempt(1)

    job = harness.store.get(INCREMENTAL_LEARNING_JOB, "default", "il")
    state = ilp.JobState.from_annotations(job["metadata"]["annotations"])
    assert state is not None and (state.stage, state.state, state.round) == ("Train", "Waiting", 1)
    assert state.retry_at == pytest.approx(harness.clock.now + BASE)


def test_a_round_that_completes_resets_the_count(harness: Harness) -> None:
    harness.attempt(1)
    harness.clock.now += BASE
    harness.lc_decides_train(2)
    harness.reconcile()
    harness.store.patch_status(INCREMENTAL_LEARNING_JOB, "default", "il", {"edgeReports": {"train": {
        "worker": "il-train-2", "status": "completed", "models": [{"url": "/out/train/2/model.npz"}], "info": {}}}})
    harness.reconcile()
    harness.store.patch_status(INCREMENTAL_LEARNING_JOB, "default", "il", {"edgeReports": {"lc": {
        "phase": "eval", "status": "ready", "round": 2, "input": {"models": ["/out/train/2/model.npz"]}}}})
    harness.reconcile()
    harness.store.patch_status(INCREMENTAL_LEARNING_JOB, "default", "il", {"edgeReports": {"eval": {
        "worker": "il-eval-2", "status": "completed", "models": [{"url": "a", "metrics": {}}], "info": {}}}})
    harness.reconcile()
    harness.store.patch_status(INCREMENTAL_LEARNING_JOB, "default", "il", {"edgeReports": {"lc": {
        "phase": "deploy", "status": "completed", "round": 2, "input": {}, "message": "not deployed"}}})
    harness.reconcile()
    assert (harness.last()["stage"], harness.last()["type"]) == ("Train", "Waiting")
    assert "retry" not in harness.status()

    harness.attempt(3)
    assert json.loads(harness.last()["data"])["failures"] == 1


def report(harness: Harness, slot: str, body: dict[str, Any]) -> None:
    harness.store.patch_status(INCREMENTAL_LEARNING_JOB, "default", "il", {"edgeReports": {slot: None}})
    harness.store.patch_status(INCREMENTAL_LEARNING_JOB, "default", "il", {"edgeReports": {slot: body}})


def test_deployed_round_follows_hot_updates(harness: Harness) -> None:
    for round_ in (1, 2):
        report(harness, "lc", {"phase": "train", "status": "ready", "round": round_, "input": {}})
        harness.reconcile()
        report(harness, "train", {"worker": f"il-train-{round_}", "status": "completed",
                                  "models": [{"url": f"/out/train/{round_}/model.npz"}], "info": {}})
        harness.reconcile()
        report(harness, "lc", {"phase": "eval", "status": "ready", "round": round_, "input": {}})
        harness.reconcile()
        report(harness, "eval", {"worker": f"il-eval-{round_}", "status": "completed", "models": [], "info": {}})
        harness.reconcile()
        report(harness, "lc", {"phase": "deploy", "status": "ready", "round": round_, "input": {}})
        harness.reconcile()
        assert harness.status()["deployedRound"] == round_ - 1  # not yet loaded by the worker
        report(harness, "deploy", {"worker": "il-infer", "status": "completed", "models": [],
                                   "info": {"round": round_}})
        harness.reconcile()

        assert (harness.last()["reason"], harness.status()["deployedRound"]) == ("StageCompleted", round_)
    # a round the deploy trigger turns down leaves the served round alone
    report(harness, "lc", {"phase": "train", "status": "ready", "round": 3, "input": {}})
    harness.reconcile()
    report(harness, "train", {"worker": "il-train-3", "status": "completed", "models": [{"url": "m3"}], "info": {}})
    harness.reconcile()
    report(harness, "lc", {"phase": "eval", "status": "ready", "round": 3, "input": {}})
    harness.reconcile()
    report(harness, "eval", {"worker": "il-eval-3", "status": "completed", "models": [], "info": {}})
    harness.reconcile()
    report(harness, "lc", {"phase": "deploy", "status": "completed", "round": 3, "input": {},
                           "message": "not deployed: accuracy_delta = -0.01"})
    harness.reconcile()
    assert (harness.status()["round"], harness.status()["deployedRound"]) == (3, 2)


def test_quarantined_index_records_show_in_status_with_their_lines(harness: Harness) -> None:
    from gm.controllers.stages.reports import file_report
    from sedna.controlplane.edgehub import ObjectKey

    class Report:
        key = ObjectKey("incrementallearningjob", "default", "il")
        payload = {"source": "lc", "phase": "train", "status": None, "round": 0, ilp.QUARANTINE: {
            "index": "/data/index.csv", "count": 1, "samples": [{"line": 12, "reason": "2 fields, the header has 3"}]}}

    file_report(harness.store, INCREMENTAL_LEARNING_JOB, Report())
    harness.reconcile()

    status = harness.status()
    assert status["quarantinedSamples"] == {"index": "/data/index.csv", "count": 1,
                                            "samples": [{"line": 12, "reason": "2 fields, the header has 3"}]}
    assert "lc" not in status["edgeReports"]  # the LC's decisions have their own slot
