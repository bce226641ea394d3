"""IncrementalLearningJob Pods with ``s3://`` datasets, outputs and models (SEDNA-REFERENCE §2.3, §2.5).

The controller runs against a local store with the kube backend's storage settings: inputs are
downloaded by the storage initializer, outputs and the original dataset stay URLs with the S3
credentials as ``secretKeyRef``, and a missing credential Secret, an unreadable remote index or hot
update into an ``s3://`` output keep the job from starting Pods, with a condition naming the URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gm.cluster.interface import DATASET, INCREMENTAL_LEARNING_JOB, MODEL, POD, SECRET
from gm.cluster.local.store import LocalStore
from gm.controllers.incremental_learning.reconciler import IncrementalLearningReconciler
from gm.runtime.outcomes import NamespacedName, Outcome
from gm.runtime.reconciling import Manager
from gm.settings import ControllerSettings

CONTAINERS = {"spec": {"containers": [{"name": "w", "image": "x", "command": ["python", "-c", "pass"]}]}}
KEY = NamespacedName("default", "il")
INDEX = "s3://data/digits/index.csv"
SECRET_OBJ = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "minio", "namespace": "default",
              "annotations": {"s3-endpoint": "127.0.0.1:9999", "s3-usehttps": "0"}},
              "data": {"ACCESS_KEY_ID": "YWs=", "SECRET_ACCESS_KEY": "c2s="}}
CREDS = [{"name": "S3_ENDPOINT_URL", "value": "127.0.0.1:9999"}, {"name": "S3_USE_HTTPS", "value": "0"},
         {"name": "ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "minio", "key": "ACCESS_KEY_ID"}}},
         {"name": "SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "minio", "key": "SECRET_ACCESS_KEY"}}}]


class Harness:
    def __init__(self, store: LocalStore) -> None:
        self.store = store
        self.manager = Manager(store)
        caches = {k.plural: self.manager.informer(k).cache for k in (INCREMENTAL_LEARNING_JOB, DATASET, MODEL, POD)}
        settings = ControllerSettings(default_cloud_node="cloud", storage_injection=True)  # as the kube backend
        self.reconciler = IncrementalLearningReconciler(store, caches, settings)

    def reconcile(self) -> Outcome:
        for informer in self.manager.informers.values():
            informer.list_once()
        return self.reconciler.reconcile(KEY)

    def pod(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.store.list(POD, "default") if p["metadata"]["name"] == name), None)

    def last(self) -> dict[str, Any]:
        return self.store.get(INCREMENTAL_LEARNING_JOB, "default", "il")["status"]["conditions"][-1]

    def lc_decides_train(self, inputs: dict[str, Any]) -> None:
        self.store.patch_status(INCREMENTAL_LEARNING_JOB, "default", "il", {"edgeReports": {"lc": {
            "phase": "train", "status": "ready", "round": 1, "input": inputs}}})


def make_store(hot: bool = False, secret: bool = True) -> LocalStore:
    store = LocalStore(":memory:")
    for name in ("initial", "deploy"):
        store.create({"apiVersion": "sedna.io/v1alpha1", "kind": "Model", "metadata": {"name": name, "namespace":
                      "default"}, "spec": {"url": f"s3://models/{name}.npz", "format": "npz"}})
    store.create({"apiVersion": "sedna.io/v1alpha1", "kind": "Dataset", "metadata": {"name": "ds", "namespace":
                  "default"}, "spec": {"url": INDEX, "format": "csv", "nodeName": "edge-0"}})
    if secret:
        store.create(SECRET_OBJ)
    store.create({"apiVersion": "sedna.io/v1alpha1", "kind": "IncrementalLearningJob",
                  "metadata": {"name": "il", "namespace": "default"},
                  "spec": {"dataset": {"name": "ds", "trainProb": 0.8}, "initialModel": {"name": "initial"},
                           "outputDir": "s3://out/il", "credentialName": "minio",
                           "trainSpec": {"template": CONTAINERS, "trigger": {}},
                           "evalSpec": {"template": CONTAINERS},
                           "deploySpec": {"model": {"name": "deploy", "hotUpdateEnabled": hot}, "trigger": {},
                                          "template": CONTAINERS}}})
    return store


@pytest.fixture
def harness() -> Iterator[Harness]:
    store = make_store()
    yield Harness(store)
    store.close()


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env") or []}


def test_the_inference_worker_downloads_an_s3_deploy_model_with_the_job_credential(harness: Harness) -> None:
    harness.reconcile()

    pod = harness.pod("il-infer")
    assert pod is not None
    (init,) = pod["spec"]["initContainers"]
    assert init["args"] == ["s3://models/deploy.npz", "/downloads/models/deploy.npz"]
    assert init["env"] == CREDS
    assert env_of(pod["spec"]["containers"][0])["MODEL_URL"] == "/downloads/models/deploy.npz"
    assert {"name": "sedna-storage-initializer", "emptyDir": {}} in pod["spec"]["volumes"]


def test_the_train_worker_downloads_inputs_and_gets_its_s3_output_dir_with_credentials(harness: Harness) -> None:
    harness.reconcile()
    harness.lc_decides_train({"model": "s3://models/initial.npz", "dataURL": "s3://out/il/data/train/1/data.csv",
                              "dataIndexURL": "", "outputDir": "s3://out/il/train/1"})
    harness.reconcile()

    pod = harness.pod("il-train-1")
    assert pod is not None
    (init,) = pod["spec"]["initContainers"]
    assert init["args"] == ["s3://models/initial.npz", "/downloads/models/initial.npz",
                            "s3://out/il/data/train/1/data.csv", "/downloads/out/il/data/train/1/data.csv"]
    container = pod["spec"]["containers"][0]
    env = env_of(container)
    assert env["BASE_MODEL_URL"] == "/downloads/models/initial.npz"
    assert env["TRAIN_DATASET_URL"] == "/downloads/out/il/data/train/1/data.csv"
    assert env["MODEL_URL"] == "s3://out/il/train/1"            # an output: the SDK uploads there
    assert env["ORIGINAL_DATASET_URL"] == INDEX                  # sample paths resolve against it
    assert [e for e in container["env"] if e["name"] in
            ("S3_ENDPOINT_URL", "S3_USE_HTTPS", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY")] == CREDS
    assert "c2s=" not in str(pod)  # the secret's values never enter the Pod spec


def test_a_missing_credential_secret_keeps_the_job_waiting_with_no_pod_until_it_exists() -> None:
    store = make_store(secret=False)
    harness = Harness(store)
    try:
        outcome = harness.reconcile()

        last = harness.last()
        assert last["type"] == "Waiting"
        assert "s3://out/il" in last["message"] and "'minio' does not exist" in last["message"]
        assert store.list(POD, "default") == []
        assert outcome.requeue_after is not None  # Secrets are not watched: it looks again

        store.create(SECRET_OBJ)
        harness.reconcile()
        assert harness.pod("il-infer") is not None
    finally:
        store.close()


def test_an_unreadable_remote_index_is_a_job_condition_naming_the_url(harness: Harness) -> None:
    harness.store.patch_status(DATASET, "default", "ds", {"conditions": [
        {"type": "IndexReadable", "status": "False", "reason": "IndexFileUnreadable",
         "message": f"spec.url: cannot fetch '{INDEX}': HTTP 403 Forbidden"}]})
    harness.reconcile()

    last = harness.last()
    assert last["type"] == "Waiting" and INDEX in last["message"] and "403" in last["message"]
    assert harness.store.list(POD, "default") == []


def test_hot_update_into_an_s3_output_dir_is_refused() -> None:
    store = make_store(hot=True)
    try:
        harness = Harness(store)
        harness.reconcile()
        last = harness.last()
        assert last["type"] == "Failed" and "hotUpdateEnabled" in last["message"] and "s3://out/il" in last["message"]
    finally:
        store.close()


def test_a_secret_lacking_a_key_names_the_key(harness: Harness) -> None:
    harness.store.delete(SECRET, "default", "minio")
    harness.store.create({**SECRET_OBJ, "data": {"ACCESS_KEY_ID": "YWs="}})
    harness.reconcile()
    assert "has no key SECRET_ACCESS_KEY" in harness.last()["message"]


def test_local_paths_beside_remote_urls_stay_as_they_are() -> None:
    store = make_store()
    try:
        job = store.get(INCREMENTAL_LEARNING_JOB, "default", "il")
        job["spec"]["outputDir"] = "/srv/il"
        store.update(job)
        harness = Harness(store)
        harness.reconcile()
        harness.lc_decides_train({"model": "s3://models/initial.npz", "dataURL": "/srv/il/data/train/1/data.csv",
                                  "dataIndexURL": "", "outputDir": "/srv/il/train/1"})
        harness.reconcile()

        pod = harness.pod("il-train-1")
        assert pod is not None
        env = env_of(pod["spec"]["containers"][0])
        assert env["BASE_MODEL_URL"] == "/downloads/models/initial.npz"
        assert (env["MODEL_URL"], env["TRAIN_DATASET_URL"]) == ("/srv/il/train/1", "/srv/il/data/train/1/data.csv")
        assert "DATA_PATH_PREFIX" not in env
        assert [v["name"] for v in pod["spec"]["volumes"]] == ["sedna-storage-initializer"]
    finally:
        store.close()
