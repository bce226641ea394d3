"""Models reaching the node on Kubernetes: hostPath for local paths, the storage initializer for URLs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import kubernetes.client
import pytest

from gm.cluster.interface import DEPLOYMENT, JOINT_INFERENCE_SERVICE, Cluster
from gm.settings import ControllerSettings
from gm.workloads import storage
from gm.workloads.building import env_value
from tests.gm.ji_fixtures import Harness, env_of, ji, model

KUBE = ControllerSettings(storage_injection=True)  # as python -m gm --backend kube builds it
SECRET = {"metadata": {"name": "minio", "annotations": {"s3-endpoint": "127.0.0.1:9999", "s3-usehttps": "0"}},
          "data": {"ACCESS_KEY_ID": "YWs=", "SECRET_ACCESS_KEY": "c2s="}}


def _pod(injection: storage.Injection) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "w", "image": "sedna-py:0.1.0"}]}
    injection.apply(spec)
    return spec


def test_a_local_model_path_is_a_read_only_host_path_mount_of_its_directory() -> None:
    env = [env_value("MODEL_URL", "/models/digits/edge.onnx"), env_value("NAMESPACE", "default")]

    injection = storage.plan(env, [storage.Mount("MODEL_URL", ("/models/digits/edge.onnx",))], {})
    spec = _pod(injection)

    assert {e["name"]: e["value"] for e in injection.env} == {
        "MODEL_URL": "/home/data/models/digits/edge.onnx", "NAMESPACE": "default", "DATA_PATH_PREFIX": "/home/data"}
    (volume,) = spec["volumes"]
    assert volume["hostPath"] == {"path": "/models/digits", "type": "Directory"}
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": volume["name"], "mountPath": "/home/data/models/digits", "readOnly": True}]
    assert "initContainers" not in spec


def test_an_output_directory_is_mounted_writable_and_created() -> None:
    injection = storage.plan([env_value("MODEL_URL", "/out/il")],
                             [storage.Mount("MODEL_URL", ("/out/il",), download=False)], {})
    spec = _pod(injection)

    assert spec["volumes"][0]["hostPath"] == {"path": "/out/il", "type": "DirectoryOrCreate"}
    assert spec["containers"][0]["volumeMounts"][0]["readOnly"] is False


def test_an_http_model_is_downloaded_by_the_storage_initializer_with_its_checksum() -> None:
    url = "https://models.example/digits/edge.onnx"
    injection = storage.plan([env_value("MODEL_URL", url)], [storage.Mount("MODEL_URL", (url,), sha256="a" * 64)], {})
    spec = _pod(injection)

    (init,) = spec["initContainers"]
    assert init["name"] == "storage-initializer" and init["image"] == "sedna-py:0.1.0"
    assert init["command"] == ["python", "-m", "workers.storage"]
    assert init["args"] == ["--sha256", "0=" + "a" * 64, url, "/downloads/models.example/digits/edge.onnx"]
    assert init["volumeMounts"] == [{"name": "sedna-storage-initializer", "mountPath": "/downloads"}]
    assert {"name": "sedna-storage-initializer", "emptyDir": {}} in spec["volumes"]
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": "sedna-storage-initializer", "mountPath": "/downloads", "readOnly": True}]
    assert injection.env == [env_value("MODEL_URL", "/downloads/models.example/digits/edge.onnx")]


def test_s3_credentials_come_from_the_secret_as_references_and_its_endpoint_annotations() -> None:
    url = "s3://models/digits/edge.onnx"
    injection = storage.plan([env_value("MODEL_URL", url)], [storage.Mount("MODEL_URL", (url,), "minio")],
                             {"minio": SECRET})

    (init,) = _pod(injection)["initContainers"]
    assert init["env"] == [
        env_value("S3_ENDPOINT_URL", "127.0.0.1:9999"), env_value("S3_USE_HTTPS", "0"),
        {"name": "ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "minio", "key": "ACCESS_KEY_ID"}}},
        {"name": "SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "minio", "key": "SECRET_ACCESS_KEY"}}}]
    assert "YWs=" not in str(injection)  # the key itself never enters the Pod spec


def test_an_s3_output_stays_a_url_and_the_worker_gets_the_credentials() -> None:
    url = "s3://out/il/"
    injection = storage.plan([env_value("MODEL_URL", url)],
                             [storage.Mount("MODEL_URL", (url,), "minio", download=False)], {"minio": SECRET})

    names = [e["name"] for e in injection.env]
    assert injection.env[0] == env_value("MODEL_URL", url)
    assert names[1:] == ["S3_ENDPOINT_URL", "S3_USE_HTTPS", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY"]
    assert injection.init_containers == []


@pytest.mark.parametrize(("secret", "reason"), [
    (None, "the credential Secret 'minio' does not exist"),
    ({"metadata": {"name": "minio"}, "data": {"ACCESS_KEY_ID": "YQ=="}},
     "the credential Secret 'minio' has no key SECRET_ACCESS_KEY")])
def test_an_unusable_credential_names_the_url_and_the_reason(secret: Any, reason: str) -> None:
    url = "s3://models/edge.onnx"
    with pytest.raises(storage.StorageError, match=f"^{url}: {reason}$"):
        storage.plan([env_value("MODEL_URL", url)], [storage.Mount("MODEL_URL", (url,), "minio")], {"minio": secret})


@pytest.fixture
def kube() -> Iterator[Cluster]:
    from tests.gm.test_cluster_contract import kube_backend

    with kube_backend() as cluster:
        yield cluster


def _secret(cluster: Any) -> None:
    core = kubernetes.client.CoreV1Api(cluster.api_client)
    core.create_namespaced_secret("default", {"apiVersion": "v1", "kind": "Secret", **SECRET})


def test_the_ji_controller_injects_storage_on_kubernetes(kube: Cluster) -> None:
    kube.create(model("small", "/models/digits/edge.onnx"))
    big = model("big", "s3://models/digits/cloud.onnx")
    big["spec"]["credentialName"] = "minio"
    kube.create(big)
    kube.create(ji())
    _secret(kube)

    Harness(kube, KUBE).reconcile()

    edge = kube.get(DEPLOYMENT, "default", "digits-edge")
    cloud = kube.get(DEPLOYMENT, "default", "digits-cloud")
    assert env_of(edge)["MODEL_URL"] == "/home/data/models/digits/edge.onnx"
    assert env_of(edge)["DATA_PATH_PREFIX"] == "/home/data"
    assert env_of(cloud)["MODEL_URL"] == "/downloads/models/digits/cloud.onnx"
    (init,) = cloud["spec"]["template"]["spec"]["initContainers"]
    assert init["args"] == ["s3://models/digits/cloud.onnx", "/downloads/models/digits/cloud.onnx"]


def test_a_missing_credential_secret_keeps_the_service_pending_naming_the_url(kube: Cluster) -> None:
    kube.create(model("small", "/models/digits/edge.onnx"))
    big = model("big", "s3://models/digits/cloud.onnx")
    big["spec"]["credentialName"] = "minio"
    kube.create(big)
    kube.create(ji())
    harness = Harness(kube, KUBE)

    harness.reconcile()

    status = kube.get(JOINT_INFERENCE_SERVICE, "default", "digits")["status"]
    (pending,) = [c for c in status["conditions"] if c["type"] == "Pending"]
    assert pending["status"] == "True"
    assert "s3://models/digits/cloud.onnx: the credential Secret 'minio' does not exist" in pending["message"]
    assert kube.list(DEPLOYMENT, "default") == []  # no worker started half-configured

    _secret(kube)
    harness.reconcile()
    assert {d["metadata"]["name"] for d in kube.list(DEPLOYMENT, "default")} == {"digits-edge", "digits-cloud"}


def _pod_with_init(exit_code: int | None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Pending", "podIP": "10.0.0.5"}
    if exit_code is not None:
        status["initContainerStatuses"] = [{"name": "storage-initializer", "restartCount": 0, "state": {
            "terminated": {"exitCode": exit_code, "reason": "Error", "message":
                           "resuming\nstorage-initializer: cannot fetch 'http://h/m.onnx' into '/downloads/h/m.onnx': "
                           "HTTP 404 Not Found\n"}}}]
    return {"metadata": {"name": "digits-cloud-x"}, "status": status}


def test_a_failed_storage_initializer_blocks_the_pod_with_the_line_naming_the_url() -> None:
    from gm.workloads.health import PodState, pod_health

    health = pod_health(_pod_with_init(1))

    assert health.state is PodState.BLOCKED and health.container == "storage-initializer"
    assert health.describe() == ("pod digits-cloud-x Init:Error: storage-initializer: cannot fetch 'http://h/m.onnx' "
                                 "into '/downloads/h/m.onnx': HTTP 404 Not Found")
    assert pod_health(_pod_with_init(0)).state is PodState.PENDING


def test_an_init_container_exit_wakes_the_owners_controller() -> None:
    from gm.runtime.predicates import pod_state_changed

    assert pod_state_changed(_pod_with_init(None), _pod_with_init(1))


def test_on_one_machine_a_local_path_stays_as_it_is_and_urls_are_still_downloaded() -> None:
    local, url = ".sedna/models/digits/edge.onnx", "http://127.0.0.1:8000/digits/cloud.onnx"

    injection = storage.plan([env_value("MODEL_URL", local), env_value("OTHER", url)],
                             [storage.Mount("MODEL_URL", (local,)), storage.Mount("OTHER", (url,))], {},
                             host_paths=False)
    spec = _pod(injection)

    downloaded = "/downloads/127.0.0.1:8000/digits/cloud.onnx"
    assert injection.env == [env_value("MODEL_URL", local), env_value("OTHER", downloaded)]
    assert spec["volumes"] == [{"name": "sedna-storage-initializer", "emptyDir": {}}]  # no hostPath
    assert spec["initContainers"][0]["args"] == [url, downloaded]


@pytest.mark.parametrize(("backend", "host_paths"), [("local", False), ("kube", True)])
def test_both_backends_inject_storage_and_only_kube_mounts_host_paths(
        tmp_path: Any, backend: str, host_paths: bool) -> None:
    from gm.settings import from_args

    (tmp_path / "token").write_text("t")
    settings = from_args(["--state-dir", str(tmp_path), "--backend", backend, "--nodes", "cloud"], environ={})

    assert settings.controllers.storage_injection is True
    assert settings.controllers.storage_host_paths is host_paths
