"""FederatedLearningJob ``spec.transmitter`` and remote inputs: validation, Pod env, the credential Secret."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from gm.cluster.interface import FEDERATED_LEARNING_JOB, POD
from gm.cluster.local.store import LocalStore
from gm.controllers.federated_learning import transmitter
from gm.workloads.storage import SECRET
from tests.federated.fl_fixtures import SETTINGS, Harness, dataset, env_of, job, model

AGG_DATA = "s3://sedna/fl/aggregation_data"
S3_JOB = {"s3": {"aggDataPath": AGG_DATA, "credentialName": "minio"}}


@pytest.fixture
def store() -> Iterator[LocalStore]:
    store = LocalStore(":memory:")
    yield store
    store.close()


def secret(name: str = "minio", keys: tuple[str, ...] = ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY")) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": "default",
                         "annotations": {"s3-endpoint": "127.0.0.1:9000", "s3-usehttps": "0"}},
            "stringData": {k: f"value-of-{k}" for k in keys}}


def fl_job(tx: Any = None, **spec: Any) -> dict[str, Any]:
    obj = job()
    if tx is not None:
        obj["spec"]["transmitter"] = tx
    obj["spec"].update(spec)
    return obj


def started(store: LocalStore, obj: dict[str, Any], harness: Harness | None = None,
            datasets: tuple[tuple[str, str], ...] = (("ds-0", ""), ("ds-1", ""))) -> Harness:
    store.create(model())
    for i, (name, url) in enumerate(datasets):
        store.create(dataset(name, f"edge-{i}", url))
    store.create(obj)
    harness = harness or Harness(store)
    harness.reconcile()
    if any(p["metadata"]["name"] == "fl-aggregation" for p in store.list(POD, "default")):
        harness.allocate_cluster_ip()
        harness.reconcile()
    return harness


def pods(store: LocalStore) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in store.list(POD, "default")}


def training(store: LocalStore) -> dict[str, Any]:
    status = store.get(FEDERATED_LEARNING_JOB, "default", "fl").get("status") or {}
    return {"phase": status.get("phase"),
            **next(c for c in status.get("conditions", []) if c["type"] in ("Training", "Failed")
                   and (c["type"] == "Training" or c["status"] == "True"))}


class TestValidation:
    @pytest.mark.parametrize(("tx", "field", "message"), [
        ({"ws": {}, "s3": {"aggDataPath": AGG_DATA}}, "spec.transmitter", "exactly one of ws or s3, got ws and s3"),
        ({}, "spec.transmitter", "exactly one of ws or s3, got neither"),
        ({"kafka": {}}, "spec.transmitter.kafka", "unknown transmitter (use ws or s3)"),
        ({"s3": {"aggDataPath": "/data/agg"}}, "spec.transmitter.s3.aggDataPath",
         "must be an s3://bucket/prefix URL, got '/data/agg'"),
        ({"s3": {"aggDataPath": "s3:///no-bucket"}}, "spec.transmitter.s3.aggDataPath",
         "must be an s3://bucket/prefix URL, got 's3:///no-bucket'"),
        ({"s3": {"aggDataPath": AGG_DATA, "credentialName": ""}}, "spec.transmitter.s3.credentialName",
         "must name a Secret, got ''"),
    ])
    def test_a_bad_transmitter_fails_the_job_naming_the_field(self, store: LocalStore, tx: Any, field: str,
                                                              message: str) -> None:
        assert [str(p) for p in transmitter.problems(fl_job(tx))] == [f"{field}: {message}"]

        started(store, fl_job(tx))

        found = training(store)
        assert (found["phase"], found["type"], found["reason"]) == ("Failed", "Failed", "InvalidSpec")
        assert f"{field}: {message}" in found["message"]
        assert pods(store) == {}

    def test_ws_and_s3_without_a_secret_are_valid(self) -> None:
        assert transmitter.problems(fl_job({"ws": {}})) == []
        assert transmitter.problems(fl_job({"s3": {"aggDataPath": AGG_DATA}})) == []
        assert transmitter.problems(fl_job()) == []


class TestPods:
    def test_s3_reaches_every_worker_with_the_keys_as_secret_references(self, store: LocalStore) -> None:
        store.create(secret())
        started(store, fl_job(S3_JOB))

        found = pods(store)
        assert set(found) == {"fl-aggregation", "fl-train-0", "fl-train-1"}
        for pod in found.values():
            env = env_of(pod)
            assert env["TRANSMITTER"] == "s3" and env["AGG_DATA_PATH"] == AGG_DATA
            assert env["S3_ENDPOINT_URL"] == "127.0.0.1:9000" and env["S3_USE_HTTPS"] == "0"
            for key in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY"):
                assert env[key] == {"secretKeyRef": {"name": "minio", "key": key}}
            assert "value-of-" not in str(pod)  # the keys never enter the Pod spec

    def test_ws_is_injected_when_named_and_nothing_when_absent(self, store: LocalStore) -> None:
        started(store, fl_job({"ws": {}}))
        assert {env_of(p)["TRANSMITTER"] for p in pods(store).values()} == {"ws"}
        assert not {"AGG_DATA_PATH", "ACCESS_KEY_ID"} & set(env_of(pods(store)["fl-train-0"]))

    def test_without_the_field_the_pods_are_as_before(self, store: LocalStore) -> None:
        started(store, fl_job())
        assert all("TRANSMITTER" not in env_of(p) for p in pods(store).values())

    def test_remote_pretrained_model_and_dataset_are_downloaded_before_the_workers_start(
            self, store: LocalStore) -> None:
        store.create(secret())
        store.create({**model("base", "s3://models/fl/base.npz"),
                      "spec": {"url": "s3://models/fl/base.npz", "format": "npz", "credentialName": "minio"}})
        harness = Harness(store, replace(SETTINGS, storage_injection=True, storage_host_paths=False))
        started(store, fl_job(pretrainedModel={"name": "base"}), harness,
                datasets=(("ds-0", "https://data.example/fl/ds-0.csv"), ("ds-1", "")))

        found = pods(store)
        for name in ("fl-aggregation", "fl-train-0", "fl-train-1"):
            assert env_of(found[name])["PRETRAINED_MODEL_URL"] == "/downloads/models/fl/base.npz"
            init = found[name]["spec"]["initContainers"][0]
            assert init["name"] == "storage-initializer"
            assert init["args"][:2] == ["s3://models/fl/base.npz", "/downloads/models/fl/base.npz"]
            assert {"name": "ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "minio",
                                                                            "key": "ACCESS_KEY_ID"}}} in init["env"]
        assert env_of(found["fl-train-0"])["TRAIN_DATASET_URL"] == "/downloads/data.example/fl/ds-0.csv"
        assert found["fl-train-0"]["spec"]["initContainers"][0]["args"][2:] == [
            "https://data.example/fl/ds-0.csv", "/downloads/data.example/fl/ds-0.csv"]
        assert env_of(found["fl-train-1"])["TRAIN_DATASET_URL"] == "/data/ds-1.csv"  # local: as before
        assert env_of(found["fl-aggregation"])["MODEL_URL"] == "/models/fl"


class TestCredentials:
    def test_a_missing_secret_keeps_the_job_pending_naming_url_and_secret_then_recovers(
            self, store: LocalStore) -> None:
        harness = started(store, fl_job(S3_JOB))

        found = training(store)
        assert (found["phase"], found["status"], found["reason"]) == ("Pending", "False", "MissingReference")
        assert found["message"] == (f"spec.transmitter.s3.credentialName: {AGG_DATA}: the credential Secret "
                                    "'minio' does not exist")
        assert pods(store) == {}  # no worker starts half-configured
        assert harness.reconcile().requeue_after is not None  # Secrets are read, not watched: look again

        store.create(secret())
        harness.reconcile()
        harness.allocate_cluster_ip()
        harness.reconcile()
        assert set(pods(store)) == {"fl-aggregation", "fl-train-0", "fl-train-1"}

    def test_a_secret_without_a_key_names_the_key(self, store: LocalStore) -> None:
        store.create(secret(keys=("ACCESS_KEY_ID",)))
        started(store, fl_job(S3_JOB))

        assert training(store)["message"] == (f"spec.transmitter.s3.credentialName: {AGG_DATA}: the credential "
                                              "Secret 'minio' has no key SECRET_ACCESS_KEY")
        assert pods(store) == {}

    def test_a_secret_deleted_after_the_job_finished_changes_nothing(self, store: LocalStore) -> None:
        store.create(secret())
        harness = started(store, fl_job(S3_JOB))
        harness.set_pod_phase("fl-aggregation", "Succeeded")
        harness.reconcile()
        assert training(store)["phase"] == "Succeeded"

        store.delete(SECRET, "default", "minio")
        outcome = harness.reconcile()

        assert training(store)["phase"] == "Succeeded" and outcome.requeue_after is None
