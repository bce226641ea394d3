"""The LifelongLearningJob controller on a local store, its reports filed through the kind's hub handler.

Where the KB must answer, a real KB server runs on 127.0.0.1 and the GM points at it as its
shared KB (``--kb-server``); the per-job KB's objects are checked with a KB access that reaches
nothing (the e2e tests run that KB for real).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gm.cluster.interface import DATASET, DEPLOYMENT, EVENT, LIFELONG_LEARNING_JOB, POD, SERVICE
from gm.cluster.local.store import LocalStore
from gm.controllers.lifelong_learning import status as kbstatus
from gm.controllers.lifelong_learning.knowledge_base import UnreachableKB
from gm.controllers.lifelong_learning.reconciler import PUBLISH_LIMIT
from gm.errors import MalformedReport
from gm.runtime.outcomes import NamespacedName
from sedna.service.kb.client import KBClient
from sedna.service.kb.server import KBServer, KBSettings
from tests.lifelong.kb_support import index, write_model, write_prototypes
from tests.lifelong.ll_fixtures import LABEL, SETTINGS, Harness, dataset, env_of, job, record

TOKEN = "kb-token-for-tests"


@pytest.fixture
def store() -> Iterator[LocalStore]:
    store = LocalStore(":memory:")
    yield store
    store.close()


@pytest.fixture
def kb(tmp_path: Path) -> Iterator[KBServer]:
    server = KBServer(KBSettings(port=0, path=str(tmp_path / "kb"), token=TOKEN)).start()
    yield server
    server.stop()


def register(kb: KBServer, tmp: Path, count: int = 1) -> list[int]:
    """Register ``count`` index versions in ``kb`` (unpublished); return their numbers."""
    with KBClient(kb.url, TOKEN) as client:
        model = client.upload_file(write_model(tmp / "m.npz"))
        protos = client.upload_file(write_prototypes(tmp / "p.npy"))
        return [client.update(index(model, protos)) for _ in range(count)]


def published(kb: KBServer) -> list[int]:
    with KBClient(kb.url, TOKEN) as client:
        return [v["version"] for v in client.versions() if v["published"]]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- where the KB runs, and why an accepted job waits ----------------------------------------------------
class TestPerJobKnowledgeBase:
    @pytest.fixture
    def harness(self, store: LocalStore) -> Harness:
        store.create(dataset())
        store.create(job())
        return Harness(store, kb_access=UnreachableKB())

    def test_an_accepted_job_gets_its_own_kb_and_says_it_waits_for_it(self, store: LocalStore,
                                                                      harness: Harness) -> None:
        harness.reconcile()

        owner = store.get(LIFELONG_LEARNING_JOB, "default", "ll")
        deployment, service = store.get(DEPLOYMENT, "default", "ll-kb"), store.get(SERVICE, "default", "ll-kb")
        for obj in (deployment, service):
            assert obj["metadata"]["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]
            assert obj["metadata"]["labels"][f"{LABEL}/worker-type"] == "kb"
        pod = deployment["spec"]["template"]["spec"]
        [kb] = pod["containers"]
        assert kb["command"] == ["python", "-m", "workers.lifelong.kb"] and kb["image"] == "sedna-py:test"
        assert kb["volumeMounts"] == [{"name": "data", "mountPath": "/data"}] and pod["nodeName"] == "cloud"
        assert pod["volumes"] == [{"name": "data", "hostPath": {"path": "/data"}}]
        env = env_of(deployment)
        assert env["KB_PATH"] == "/data/out/kb" and env["KB_BIND_PORT"] == "9020" and len(env["KB_TOKEN"]) >= 32
        assert "task_definition" not in env and "LC_SERVER" not in env
        assert service["spec"]["ports"][0]["port"] == 9020
        status = owner["status"]
        assert status["knowledgeBaseServer"]["url"] == "http://ll-kb.default:9020"  # no clusterIP in this store
        assert (status["knowledgeBaseServer"]["managed"], status["knowledgeBaseServer"]["ready"]) == (True, False)
        assert status["waiting"] == {"reason": "KnowledgeBaseStarting", "message": (
            "the KB server ll-kb does not answer yet: KB server http://ll-kb.default:9020 unreachable: no KB access "
            "configured")}
        assert store.list(POD, "default") == []  # no inference worker before a version is published
        assert [e["reason"] for e in store.list(EVENT, "default") if e["reason"].startswith("KnowledgeBase")] == [
            "KnowledgeBaseStarting"]

    def test_the_kb_token_is_generated_once_and_survives_a_gm_restart(self, store: LocalStore,
                                                                     harness: Harness) -> None:
        harness.reconcile()
        token = env_of(store.get(DEPLOYMENT, "default", "ll-kb"))["KB_TOKEN"]
        harness.reconcile()
        Harness(store, kb_access=UnreachableKB()).reconcile()  # a restarted GM: fresh caches

        assert env_of(store.get(DEPLOYMENT, "default", "ll-kb"))["KB_TOKEN"] == token
        assert len(store.list(DEPLOYMENT, "default")) == 1

    def test_no_stage_pod_is_created_while_the_kb_does_not_answer(self, store: LocalStore, harness: Harness) -> None:
        harness.reconcile()
        harness.lc("train", "ready", 1, {"dataURL": "/data/out/data/train/1/data.csv"}, "num_of_samples = 60 ...")

        harness.reconcile()

        assert harness.last() == ("Train", "Ready", "ReportedByLC")
        assert store.list(POD, "default") == []
        assert harness.status()["waiting"]["reason"] == "KnowledgeBaseStarting"


class AnswersKB:
    """A KB access to which every KB answers: this store gives the per-job KB's Service no reachable address."""

    def problem(self, url: str, token: str) -> str:
        return ""

    def publish(self, url: str, token: str, version: int) -> None:
        return None


def test_a_kb_pod_that_is_not_running_is_not_taken_for_an_answer(store: LocalStore) -> None:
    """A deleted KB Pod's replacement starting: an answer (from the old Pod, or cached) does not make it ready."""
    store.create(dataset())
    store.create(job())
    harness = Harness(store, kb_access=AnswersKB())
    harness.reconcile()
    assert harness.status()["knowledgeBaseServer"]["ready"] is True
    store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "ll-kb-7f9c", "namespace": "default", "labels": {f"{LABEL}/name": "ll", f"{LABEL}/worker-type": "kb"}},
        "spec": {"containers": [{"name": "c", "image": "sedna-py:test"}]}})
    harness.pod_phase("ll-kb-7f9c", "Pending")

    harness.reconcile()

    kb = harness.status()["knowledgeBaseServer"]
    assert (kb["ready"], kb["reason"]) == (False, "Starting")
    assert kb["message"].startswith("the KB server ll-kb does not answer yet: no KB Pod is running (pod ll-kb-7f9c")
    assert harness.status()["waiting"]["reason"] == "KnowledgeBaseStarting"
    harness.pod_phase("ll-kb-7f9c", "Running")
    harness.reconcile()
    assert harness.status()["knowledgeBaseServer"]["ready"] is True


class TestWaiting:
    def test_a_missing_dataset_keeps_the_job_waiting_naming_the_field_until_it_exists(self,
                                                                                   store: LocalStore) -> None:
        store.create(job())
        harness = Harness(store, kb_access=UnreachableKB())

        harness.reconcile()
        status = harness.status()
        assert status["waiting"] == {"reason": "MissingReference", "message": (
            "spec.dataset.name: Dataset 'samples' not found in namespace 'default'")}
        assert harness.last() == ("Train", "Waiting", "MissingReference")
        assert store.list(DEPLOYMENT, "default") == []

        store.create(dataset(node=None))
        harness.reconcile()
        assert harness.status()["waiting"]["message"] == (
            "spec.dataset.name: Dataset 'samples' has no spec.nodeName (the node its trainer runs on)")

        placed = store.get(DATASET, "default", "samples")
        placed["spec"] = dataset()["spec"]
        store.update(placed)
        harness.reconcile()
        assert harness.status()["waiting"]["reason"] == "KnowledgeBaseStarting"
        assert [c["reason"] for c in harness.status()["conditions"]][-1] == "SpecValid"

    def test_the_lcs_trigger_explanation_is_the_waiting_reason(self, store: LocalStore, kb: KBServer) -> None:
        store.create(dataset())
        store.create(job())
        harness = Harness(store, dataclasses.replace(SETTINGS, kb_server=kb.url, kb_token=TOKEN))

        harness.reconcile()
        assert harness.status()["waiting"] == {"reason": "TrainTrigger", "message": (
            "waiting for the LC on edge-0 to fire the train trigger (num_of_samples >= 50, checked every 5s) on new "
            "samples of Dataset samples")}

        harness.lc("train", "waiting", 1, message="num_of_samples = 12 does not satisfy num_of_samples >= 50")
        harness.reconcile()
        assert harness.status()["waiting"] == {"reason": "TrainTrigger", "message": (
            "train trigger on edge-0: num_of_samples = 12 does not satisfy num_of_samples >= 50")}
        assert harness.last() == ("Train", "Waiting", "JobCreated")  # an explanation is not a decision


# -- the stages ----------------------------------------------------------------------------------------
class TestRounds:
    @pytest.fixture
    def harness(self, store: LocalStore, kb: KBServer) -> Harness:
        store.create(dataset())
        store.create(job())
        return Harness(store, dataclasses.replace(SETTINGS, kb_server=kb.url, kb_token=TOKEN))

    def test_a_round_from_trigger_to_the_edge_serving_the_new_version(self, store: LocalStore, kb: KBServer,
                                                                      harness: Harness, tmp_path: Path) -> None:
        [version] = register(kb, tmp_path)
        harness.reconcile()
        assert store.list(DEPLOYMENT, "default") == []  # the shared KB: none of its own
        assert harness.status()["knowledgeBaseServer"]["ready"] is True

        harness.lc("train", "ready", 1, {"dataURL": "/data/out/data/train/1/data.csv",
                                         "outputDir": "/data/out/train/1"})
        harness.reconcile()
        env = env_of(store.get(POD, "default", "ll-train-1"))
        assert (env["HAS_COMPLETED_INITIAL_TRAINING"], env["CLOUD_KB_INDEX"]) == ("false", "")
        assert (env["KB_SERVER"], env["KB_TOKEN"], env["WORKER_NAME"]) == (kb.url, TOKEN, "ll-train-1")
        assert (env["OUTPUT_URL"], env["TRAIN_DATASET_URL"]) == ("/data/out/train/1", "/data/out/data/train/1/data.csv")

        harness.pod_phase("ll-train-1", "Running")
        harness.worker("ll-train-1", "train", "completed", [record(kb.url, version, {"north": (0.9, 240)}, 240)])
        harness.lc("eval", "ready", 1, {"models": [f"{kb.url}/knowledgebase/index/{version}"],
                                        "dataURL": "/data/out/data/eval/1/data.csv"})
        harness.reconcile()
        env = env_of(store.get(POD, "default", "ll-eval-1"))
        assert env["MODEL_URLS"] == f"{kb.url}/knowledgebase/index/{version}" and env["publish"] == "false"
        assert (env["TEST_DATASET_URL"], env["OUTPUT_URL"]) == ("/data/out/data/eval/1/data.csv", "/data/out/eval/1")

        harness.worker("ll-eval-1", "eval", "completed", [record(kb.url, version, {"north": (0.93, 240)})])
        harness.lc("deploy", "ready", 1, {"models": [f"{kb.url}/knowledgebase/index/{version}"], "version": version})
        harness.reconcile()
        assert harness.last() == ("Deploy", "Running", "Published")
        assert published(kb) == [version]
        infer = env_of(store.get(POD, "default", "ll-infer"))
        assert infer["MODEL_URLS"] == f"{kb.url}/knowledgebase/index" and infer["MODEL_HOT_UPDATE"] == "true"
        assert infer["EDGE_KB_DIR"] == "/data/out/deploy/kb" and infer["KB_TOKEN"] == TOKEN
        assert store.get(POD, "default", "ll-infer")["spec"]["nodeName"] == "edge-0"  # the Dataset's node

        harness.worker("ll-infer", "inference", "running", info={"inferenceNumber": 7, "unseenSampleNumber": 2,
                                                                 "kbVersion": version})
        harness.reconcile()
        status = harness.status()
        served = status["conditions"][-2]
        assert (served["stage"], served["type"], served["reason"]) == ("Deploy", "Completed", "Serving")
        assert served["message"] == f"ll-infer serves knowledge base version {version}"
        assert harness.last() == ("Train", "Waiting", "StageCompleted")
        assert status["kbVersions"] == {"trained": version, "evaluated": version, "published": version,
                                        "served": version}
        assert status["inference"]["count"] == 7 and status["inference"]["unseenSamples"] == 2
        assert status["knowledgeBase"] == {
            "AIModels": {"numberOfAIModels": 1, "listOfAIModels": [
                {"modelID": "north", "averagePrecision": 0.93, "numberOfTrainSamples": 240}]},
            "AIClasses": {"numberOfAIClasses": 2, "listOfAIClasses": ["0", "1"]},
            "samples": {"numberOfLabeledUnseenSample": 240, "numberOfUnseenSample": 2}}

        harness.lc("train", "ready", 2, {"dataURL": "/data/out/data/train/2/data.csv"})
        harness.reconcile()
        env = env_of(store.get(POD, "default", "ll-train-2"))
        assert env["HAS_COMPLETED_INITIAL_TRAINING"] == "true"
        assert env["CLOUD_KB_INDEX"] == f"{kb.url}/knowledgebase/index/{version}"

    def _to_deploy(self, harness: Harness, url: str, version: int) -> None:
        harness.reconcile()
        harness.lc("train", "ready", 1, {"dataURL": "/d/train.csv"})
        harness.reconcile()
        harness.worker("ll-train-1", "train", "completed", [record(url, version, {"north": (0.9, 40)})])
        harness.lc("eval", "ready", 1, {"models": [f"{url}/knowledgebase/index/{version}"], "dataURL": "/d/e.csv"})
        harness.reconcile()
        harness.worker("ll-eval-1", "eval", "completed", [record(url, version, {"north": (0.9, 40)})])
        harness.lc("deploy", "ready", 1, {"models": [f"{url}/knowledgebase/index/{version}"], "version": version})

    def test_a_version_the_kb_refuses_to_publish_is_retried_then_fails_the_stage(
            self, store: LocalStore, kb: KBServer, tmp_path: Path) -> None:
        store.create(dataset())
        store.create(job())
        clock = Clock()
        harness = Harness(store, dataclasses.replace(SETTINGS, kb_server=kb.url, kb_token=TOKEN), clock=clock)
        self._to_deploy(harness, kb.url, 41)  # no version 41 in this KB

        harness.reconcile()
        stage, state, reason = harness.last()
        assert (stage, state, reason) == ("Deploy", "Starting", "PublishPending")
        assert "publishing knowledge base version 41: index version 41 does not exist; retrying" in \
               harness.status()["conditions"][-1]["message"]
        assert "ll-infer" not in [p["metadata"]["name"] for p in store.list(POD, "default")]
        clock.now += PUBLISH_LIMIT + 1
        harness.reconcile()
        assert harness.entry("Deploy", "Failed")["reason"] == "PublishFailed"
        assert harness.last() == ("Train", "Waiting", "StageFailed")
        assert [e["type"] for e in store.list(EVENT, "default") if e["reason"] == "PublishFailed"] == ["Warning"]

    def test_an_inference_worker_that_cannot_start_fails_the_deploy_naming_the_field(
            self, store: LocalStore, kb: KBServer, harness: Harness, tmp_path: Path) -> None:
        [version] = register(kb, tmp_path)
        self._to_deploy(harness, kb.url, version)
        harness.reconcile()
        assert harness.last() == ("Deploy", "Running", "Published")
        error = ("RegistryError: unseen_sample_recognition.method: no unseen_task_detect plug-in named "
                 "'SampleRecognitionByDistanse'. Did you mean 'SampleRecognitionByDistance'?")

        harness.worker("ll-infer", "inference", "failed", info={"error": error})
        harness.reconcile()

        failed = harness.entry("Deploy", "Failed")
        assert failed["reason"] == "WorkerFailed"
        message = failed["message"]
        assert message.startswith(f"ll-infer: {error}; ")
        assert "inference" not in harness.status()  # a failure is not a counter report


class TestSharedKnowledgeBase:
    def test_one_job_at_a_time_uses_a_shared_kb_the_other_says_which_holds_it(self, store: LocalStore,
                                                                               kb: KBServer) -> None:
        store.create(dataset())
        store.create(job("first"))
        store.create(job("second"))
        harness = Harness(store, dataclasses.replace(SETTINGS, kb_server=kb.url, kb_token=TOKEN))

        harness.reconcile(NamespacedName("default", "first"))
        harness.reconcile(NamespacedName("default", "second"))

        assert harness.status("first")["knowledgeBaseServer"]["ready"] is True
        waiting = harness.status("second")["waiting"]
        assert waiting["reason"] == "KnowledgeBaseInUse"
        assert waiting["message"].startswith(f"the shared KB server {kb.url} serves job default/first")

    def test_a_wrong_shared_kb_token_is_a_waiting_reason(self, store: LocalStore, kb: KBServer) -> None:
        store.create(dataset())
        store.create(job())
        harness = Harness(store, dataclasses.replace(SETTINGS, kb_server=kb.url, kb_token="wrong"))

        harness.reconcile()

        waiting = harness.status()["waiting"]
        assert waiting["reason"] == "KnowledgeBaseUnreachable" and "401" in waiting["message"]


# -- bad input ---------------------------------------------------------------------------------------------
class TestValidation:
    def test_an_unknown_algorithm_fails_naming_the_env_field_with_a_did_you_mean_and_a_fix_recovers(
            self, store: LocalStore) -> None:
        store.create(dataset())
        store.create(job(train_env=[{"name": "task_definition", "value": "TaskDefinitionByDataAtr"}],
                         deploy_env=[{"name": "unseen_sample_recognition",
                                      "value": '{"method": "SampleRecognitionByDistanse", "param": {}}'}]))
        harness = Harness(store, kb_access=UnreachableKB())

        harness.reconcile()

        assert harness.last() == ("Train", "Failed", "InvalidSpec")
        assert harness.status()["conditions"][-1]["message"] == (
            "spec.trainSpec.template.spec.containers[0].env.task_definition: unknown algorithm "
            "'TaskDefinitionByDataAtr' (did you mean 'TaskDefinitionByDataAttr'?); "
            "spec.deploySpec.template.spec.containers[0].env.unseen_sample_recognition: unknown algorithm "
            "'SampleRecognitionByDistanse' (did you mean 'SampleRecognitionByDistance'?)")
        assert store.list(DEPLOYMENT, "default") == []
        assert "waiting" not in harness.status()  # failed, not waiting

        fixed = store.get(LIFELONG_LEARNING_JOB, "default", "ll")
        fixed["spec"] = job()["spec"]
        store.update(fixed)
        harness.reconcile()
        assert [c["reason"] for c in harness.status()["conditions"]][-1] == "SpecValid"
        assert store.get(DEPLOYMENT, "default", "ll-kb") is not None

    def test_a_users_own_worker_is_not_judged_by_the_gms_registry(self, store: LocalStore) -> None:
        store.create(dataset())
        store.create(job(train_env=[{"name": "task_definition", "value": "MyOwnTaskDefinition"}],
                         train_command=["python", "train.py"]))
        harness = Harness(store, kb_access=UnreachableKB())

        harness.reconcile()

        assert harness.last() == ("Train", "Waiting", "JobCreated")


# -- reports ----------------------------------------------------------------------------------------------
class TestReports:
    def test_a_report_from_a_worker_that_is_not_one_of_the_jobs_pods_is_refused(self, store: LocalStore,
                                                                               kb: KBServer) -> None:
        store.create(dataset())
        store.create(job())
        store.create(job("other"))
        harness = Harness(store, dataclasses.replace(SETTINGS, kb_server=kb.url, kb_token=TOKEN))
        harness.reconcile()
        harness.lc("train", "ready", 1, {"dataURL": "/d/t.csv"})
        harness.reconcile()
        before = harness.status()["edgeReports"]
        other = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "other-infer", "namespace": "default", "labels": {f"{LABEL}/name": "other"}},
            "spec": {"containers": [{"name": "c"}]}}
        store.create(other)

        for worker, why in (("intruder", "'intruder' is not a worker of lifelonglearningjob default/ll (no such Pod)"),
                            ("other-infer", "Pod 'other-infer' is not a worker of lifelonglearningjob default/ll")):
            with pytest.raises(MalformedReport) as refused:
                harness.worker(worker, "inference", "running", info={"inferenceNumber": 1, "kbVersion": 99})
            assert str(refused.value) == f"worker: {why}"

        assert harness.status()["edgeReports"] == before
        harness.worker("ll-train-1", "train", "running")  # the job's own Pod is heard
        assert harness.status()["edgeReports"]["train"]["worker"] == "ll-train-1"


def test_status_knowledge_base_maps_a_record_in_sednas_names() -> None:
    rec = {"current_metric": {"a": {"precision": [0.5, 1.0], "recall": 0.2}, "b": {"accuracy": 0.75}},
           "task_samples": {"a": 30, "b": 12}, "classes": ["cat", "dog", "eel"]}

    assert kbstatus.knowledge_base(rec, labeled_unseen=42, unseen=5) == {
        "AIModels": {"numberOfAIModels": 2, "listOfAIModels": [
            {"modelID": "a", "averagePrecision": 0.75, "numberOfTrainSamples": 30},
            {"modelID": "b", "averagePrecision": 0.75, "numberOfTrainSamples": 12}]},
        "AIClasses": {"numberOfAIClasses": 3, "listOfAIClasses": ["cat", "dog", "eel"]},
        "samples": {"numberOfLabeledUnseenSample": 42, "numberOfUnseenSample": 5}}


def test_labelled_unseen_samples_add_up_over_training_rounds_only() -> None:
    def entry(stage: str, labeled: int) -> dict[str, Any]:
        return {"stage": stage, "type": "Completed", "data": json.dumps({"output": {"models": [
            {"number_of_labeled_unseen_sample": labeled}]}})}

    previous = {"samples": {"numberOfLabeledUnseenSample": 300}}
    assert kbstatus.labeled_unseen(previous, [entry("Train", 80), entry("Eval", 999), entry("Train", 20)]) == 400
