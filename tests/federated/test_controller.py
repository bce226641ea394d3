"""The FederatedLearningJob controller on the local store: children, env, status, restarts, validation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gm.cluster.interface import EVENT, FEDERATED_LEARNING_JOB, POD, SERVICE, NotFound
from gm.cluster.local.store import LocalStore
from gm.controllers.federated_learning import validation as fl_validation
from tests.federated.fl_fixtures import Harness, dataset, env_of, job, model

LABEL = "federatedlearningjob.sedna.io"


@pytest.fixture
def store() -> Iterator[LocalStore]:
    store = LocalStore(":memory:")
    yield store
    store.close()


@pytest.fixture
def ready(store: LocalStore) -> Harness:
    store.create(model())
    store.create(dataset("ds-0", "edge-0"))
    store.create(dataset("ds-1", "edge-1"))
    store.create(job())
    return Harness(store)


def _status(store: LocalStore) -> dict:
    return store.get(FEDERATED_LEARNING_JOB, "default", "fl").get("status", {})


def _conditions(store: LocalStore) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in _status(store).get("conditions", [])}


def _pods(store: LocalStore) -> dict[str, dict]:
    return {p["metadata"]["name"]: p for p in store.list(POD, "default")}


def _started(store: LocalStore, harness: Harness) -> None:
    harness.reconcile()
    harness.allocate_cluster_ip()
    harness.reconcile()


class TestChildren:
    def test_trainers_wait_for_the_service_cluster_ip(self, store: LocalStore, ready: Harness) -> None:
        outcome = ready.reconcile()

        assert set(_pods(store)) == {"fl-aggregation"}
        assert outcome.requeue_after is not None
        ready.allocate_cluster_ip()
        ready.reconcile()
        assert set(_pods(store)) == {"fl-aggregation", "fl-train-0", "fl-train-1"}

    def test_pods_service_labels_owner_and_placement(self, store: LocalStore, ready: Harness) -> None:
        _started(store, ready)

        uid = store.get(FEDERATED_LEARNING_JOB, "default", "fl")["metadata"]["uid"]
        pods = _pods(store)
        svc = store.get(SERVICE, "default", "fl-aggregation")
        for obj, worker_type in ((pods["fl-aggregation"], "aggregation"), (svc, "aggregation"),
                                 (pods["fl-train-0"], "train"), (pods["fl-train-1"], "train")):
            assert {k: v for k, v in obj["metadata"]["labels"].items() if k.startswith(LABEL)} == {
                f"{LABEL}/name": "fl", f"{LABEL}/uid": uid, f"{LABEL}/worker-type": worker_type}
            assert obj["metadata"]["ownerReferences"][0]["uid"] == uid
        assert svc["spec"]["ports"][0]["port"] == 7363
        assert svc["spec"]["selector"] == {k: v for k, v in pods["fl-aggregation"]["metadata"]["labels"].items()
                                           if k.startswith(LABEL)}
        assert [pods[n]["spec"]["nodeName"] for n in ("fl-aggregation", "fl-train-0", "fl-train-1")] == \
            ["cloud", "edge-0", "edge-1"]
        assert {p["spec"]["restartPolicy"] for p in pods.values()} == {"OnFailure"}

    def test_worker_env(self, store: LocalStore, ready: Harness) -> None:
        _started(store, ready)

        uid = store.get(FEDERATED_LEARNING_JOB, "default", "fl")["metadata"]["uid"]
        agg = env_of(_pods(store)["fl-aggregation"])
        assert agg == {"aggregation": "FedAvg", "exit_round": "3", "NAMESPACE": "default", "JOB_NAME": "fl",
                       "WORKER_NAME": "fl-aggregation", "PARTICIPANTS_COUNT": "2",
                       "LC_SERVER": "http://127.0.0.1:9100", "MODEL_URL": "/models/fl", "MODEL_NAME": "fl-model",
                       "AGG_BIND_IP": {"fieldRef": {"fieldPath": "status.podIP"}}, "AGG_BIND_PORT": "7363",
                       "CHECKPOINT_DIR": f"/models/fl/checkpoints/{uid[:8]}-g1"}
        train = env_of(_pods(store)["fl-train-0"])
        assert train == {"NAMESPACE": "default", "JOB_NAME": "fl", "WORKER_NAME": "fl-train-0",
                         "PARTICIPANTS_COUNT": "2", "LC_SERVER": "http://127.0.0.1:9101", "LC_TOKEN": "t0",
                         "AGG_IP": "127.0.2.9", "AGG_PORT": "7363", "TRAIN_DATASET_URL": "/data/ds-0.csv",
                         "DATASET_NAME": "ds-0", "MODEL_URL": "/models/fl", "MODEL_NAME": "fl-model"}

    def test_user_env_is_never_overridden(self, store: LocalStore) -> None:
        store.create(model())
        store.create(dataset("ds-0", "edge-0"))
        store.create(job(("ds-0",), trainer_env=[{"name": "AGG_PORT", "value": "9999"}]))
        harness = Harness(store)
        _started(store, harness)

        assert env_of(_pods(store)["fl-train-0"])["AGG_PORT"] == "9999"
        assert "EnvKept" in [e["reason"] for e in store.list(EVENT, "default")]

    def test_pretrained_model_url(self, store: LocalStore, ready: Harness) -> None:
        store.create(model("base", "/models/base.npz"))
        obj = store.get(FEDERATED_LEARNING_JOB, "default", "fl")
        obj["spec"]["pretrainedModel"] = {"name": "base"}
        store.update(obj)
        _started(store, ready)

        assert env_of(_pods(store)["fl-aggregation"])["PRETRAINED_MODEL_URL"] == "/models/base.npz"
        assert env_of(_pods(store)["fl-train-1"])["PRETRAINED_MODEL_URL"] == "/models/base.npz"


class TestStatus:
    def test_pending_running_succeeded(self, store: LocalStore, ready: Harness) -> None:
        _started(store, ready)
        ready.reconcile()  # counts come from the cache, which sees the new Pods now
        assert _status(store)["phase"] == "Pending"
        assert _conditions(store)["Training"] == ("False", "WorkersStarting")
        assert _status(store)["active"] == 3
        assert _status(store)["startTime"]

        ready.set_pod_phase("fl-aggregation", "Running")
        ready.reconcile()
        assert _status(store)["phase"] == "Running"
        assert _conditions(store)["Training"] == ("True", "AggregatorRunning")

        for name in ("fl-train-0", "fl-train-1", "fl-aggregation"):
            ready.set_pod_phase(name, "Succeeded")
        ready.reconcile()
        status = _status(store)
        assert status["phase"] == "Succeeded"
        assert _conditions(store) == {"Training": ("False", ""), "Complete": ("True", "AggregationSucceeded")}
        assert (status["active"], status["succeeded"], status["failed"]) == (0, 3, 0)
        assert status["completionTime"]
        assert all(c["observedGeneration"] == 1 for c in status["conditions"])

    def test_a_failed_aggregator_fails_the_job_and_stops_the_trainers(self, store: LocalStore, ready: Harness) -> None:
        _started(store, ready)
        ready.set_pod_phase("fl-train-0", "Running")
        ready.set_pod_phase("fl-aggregation", "Failed", message="exit code 2")
        ready.reconcile()

        status = _status(store)
        assert status["phase"] == "Failed"
        assert _conditions(store)["Failed"][1] == "AggregationFailed"
        assert "exit code 2" in next(c["message"] for c in status["conditions"] if c["type"] == "Failed")
        assert set(_pods(store)) == {"fl-aggregation"}

    def test_crash_loop_past_the_limit_fails_the_job(self, store: LocalStore, ready: Harness) -> None:
        _started(store, ready)
        ready.set_pod_phase("fl-aggregation", "Running", containerStatuses=[{
            "name": "aggregator", "restartCount": 5,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 30s"}}}])
        ready.reconcile()

        assert _status(store)["phase"] == "Failed"

    def test_a_deleted_pod_comes_back_while_training(self, store: LocalStore, ready: Harness) -> None:
        _started(store, ready)
        store.delete(POD, "default", "fl-train-1")
        ready.reconcile()

        assert "fl-train-1" in _pods(store)

    def test_a_finished_job_is_left_alone(self, store: LocalStore, ready: Harness) -> None:
        _started(store, ready)
        ready.set_pod_phase("fl-aggregation", "Succeeded")
        ready.reconcile()
        store.delete(POD, "default", "fl-aggregation")
        store.delete(POD, "default", "fl-train-0")
        ready.reconcile()

        assert set(_pods(store)) == {"fl-train-1"}
        assert _status(store)["phase"] == "Succeeded"

    def test_spec_change_restarts_the_job(self, store: LocalStore, ready: Harness) -> None:
        _started(store, ready)
        ready.set_pod_phase("fl-aggregation", "Succeeded")
        ready.reconcile()
        store.patch_status(FEDERATED_LEARNING_JOB, "default", "fl", {"currentRound": 3, "latestMetrics": {"acc": 1}})
        before = {n: p["metadata"]["uid"] for n, p in _pods(store).items()}
        obj = store.get(FEDERATED_LEARNING_JOB, "default", "fl")
        obj["spec"]["aggregationWorker"]["template"]["spec"]["containers"][0]["env"][1]["value"] = "5"
        store.update(obj)
        for _ in range(3):
            ready.reconcile()

        status = _status(store)
        assert status["observedGeneration"] == 2
        assert "currentRound" not in status and "latestMetrics" not in status and "completionTime" not in status
        assert status["phase"] == "Pending"
        pods = _pods(store)
        assert set(pods) == set(before)
        assert all(pods[n]["metadata"]["uid"] != before[n] for n in pods)
        agg = env_of(pods["fl-aggregation"])
        assert agg["exit_round"] == "5" and agg["CHECKPOINT_DIR"].endswith("-g2")
        assert "Restarted" in [e["reason"] for e in store.list(EVENT, "default")]


class TestValidation:
    def _problem(self, store: LocalStore, harness: Harness) -> tuple[str, str, str]:
        harness.reconcile()
        status = _status(store)
        cond = next(c for c in status["conditions"] if c["status"] == "True" or c["type"] == "Training")
        return status["phase"], cond["reason"], cond["message"]

    @pytest.mark.parametrize(("env", "field", "text"), [
        ([{"name": "aggregation", "value": "FedAvgg"}], "containers[0].env[0].value", "did you mean 'FedAvg'"),
        ([{"name": "aggregation", "value": "FedProx"}, {"name": "AGGREGATION_PARAMETERS",
                                                          "value": '{"proximal_mu": "x"}'}],
         "containers[0].env[1].value", "bad parameters for FedProx"),
        ([{"name": "aggregation", "value": "FedAvg"}, {"name": "AGGREGATION_PARAMETERS",
                                                         "value": '{"no_such": 1}'}],
         "containers[0].env[1].value", "bad parameters for FedAvg"),
        ([{"name": "aggregation", "value": '{"nam": "FedAvg"}'}], "containers[0].env[0].value", "needs a 'name'"),
        ([{"name": "exit_round", "value": "0"}], "containers[0].env[0].value", "exit_round must be a positive"),
        ([{"name": "MIN_COMPLETION_RATE", "value": "1.5"}], "containers[0].env[0].value", "(0, 1]"),
        ([{"name": "aggregation", "value": "FedAvg"}, {"name": "AGGREGATION_PARAMETERS",
                                                         "value": '{"min_fit_clients": 5}'}],
         "containers[0].env[1].value", "needs 5 clients but the job has 2"),
    ])
    def test_bad_strategy_settings_fail_naming_the_field(self, store: LocalStore, env: list, field: str,
                                                          text: str) -> None:
        store.create(model())
        store.create(dataset("ds-0", "edge-0"))
        store.create(dataset("ds-1", "edge-1"))
        store.create(job(agg_env=env))
        phase, reason, message = self._problem(store, Harness(store))

        assert (phase, reason) == ("Failed", "InvalidSpec")
        assert f"spec.aggregationWorker.template.spec.{field}" in message and text in message
        assert _pods(store) == {}

    def test_no_training_workers(self) -> None:
        obj = job(())
        obj["metadata"]["uid"] = "u"
        problems = fl_validation.validate(obj, lambda n: dataset(n, "edge-0"), lambda n: model(n))
        assert [str(p) for p in problems] == ["spec.trainingWorkers: needs at least one training worker"]

    def test_missing_dataset_waits_then_recovers(self, store: LocalStore) -> None:
        store.create(model())
        store.create(dataset("ds-0", "edge-0"))
        store.create(job())
        harness = Harness(store)
        phase, reason, message = self._problem(store, harness)
        assert (phase, reason) == ("Pending", "MissingReference")
        assert "spec.trainingWorkers[1].dataset.name: Dataset 'ds-1' not found" in message

        store.create(dataset("ds-1", "edge-1"))
        _started(store, harness)
        assert set(_pods(store)) == {"fl-aggregation", "fl-train-0", "fl-train-1"}

    def test_missing_model_and_unknown_node(self, store: LocalStore) -> None:
        store.create(dataset("ds-0", "edge-9"))
        store.create(dataset("ds-1", "edge-1"))
        store.create(job())
        phase, _, message = self._problem(store, Harness(store))

        assert phase == "Pending"
        assert "spec.aggregationWorker.model.name: Model 'fl-model' not found" in message
        assert "spec.trainingWorkers[0].dataset.name: Dataset 'ds-0' is on unknown node 'edge-9'" in message

    def test_fixing_an_invalid_spec_restarts(self, store: LocalStore) -> None:
        store.create(model())
        store.create(dataset("ds-0", "edge-0"))
        store.create(dataset("ds-1", "edge-1"))
        store.create(job(agg_env=[{"name": "aggregation", "value": "Nope"}]))
        harness = Harness(store)
        harness.reconcile()
        assert _status(store)["phase"] == "Failed"
        obj = store.get(FEDERATED_LEARNING_JOB, "default", "fl")
        obj["spec"]["aggregationWorker"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "FedMedian"
        store.update(obj)
        _started(store, harness)

        assert _status(store)["phase"] == "Pending"
        assert "Failed" not in {t for t, (s, _) in _conditions(store).items() if s == "True"}
        assert set(_pods(store)) == {"fl-aggregation", "fl-train-0", "fl-train-1"}


def test_deleting_the_job_is_done(store: LocalStore, ready: Harness) -> None:
    _started(store, ready)
    store.delete(FEDERATED_LEARNING_JOB, "default", "fl")
    ready.reconcile()

    with pytest.raises(NotFound):
        store.get(POD, "default", "fl-aggregation")
