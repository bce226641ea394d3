"""With the kube backend the dashboard runs on its own server over KubeCluster (a kmock API emulator)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import kubernetes.client
import pytest

from gm import schema
from gm.cluster import interface
from gm.cluster.interface import JOINT_INFERENCE_SERVICE
from gm.cluster.kube import KubeCluster
from gm.dashboard import start_dashboard
from tests.gm.kube_emulator import EmulatedApiServer

TOKEN = "kube-dashboard-token"
VALIDATORS = {f"{k.group}/{k.version}/{k.plural}": schema.validate for k in interface.SEDNA_KINDS}


@pytest.fixture
def cluster() -> Iterator[KubeCluster]:
    with EmulatedApiServer(VALIDATORS) as server:
        configuration = kubernetes.client.Configuration()
        configuration.host = server.url
        kube = KubeCluster(kubernetes.client.ApiClient(configuration), watch_timeout=1)
        try:
            yield kube
        finally:
            kube.close()


def ji(name: str) -> dict:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "JointInferenceService",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"edgeWorker": {"model": {"name": "e"}, "hardExampleMining": {"name": "IBT"},
                                    "template": {"spec": {"nodeName": "edge-0", "containers": [
                                        {"name": "edge", "image": "sedna-py"}]}}},
                     "cloudWorker": {"model": {"name": "c"}, "template": {"spec": {"containers": [
                         {"name": "cloud", "image": "sedna-py"}]}}}}}


def test_the_dashboard_serves_kube_objects_and_follows_their_changes(cluster: KubeCluster) -> None:
    cluster.create(ji("kube-ji"))
    cluster.patch_status(JOINT_INFERENCE_SERVICE, "default", "kube-ji", {"phase": "Running", "inference": {
        "count": 77, "offloadRatio": 0.5}})
    handle = start_dashboard(cluster, TOKEN, None)
    try:
        assert handle.url.startswith("http://127.0.0.1:") and handle.url.endswith("/dashboard/")
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(headers=headers, timeout=10) as http:
            page = http.get(handle.url + "kinds/jointinferenceservices")
            assert page.status_code == 200
            assert 'data-name="kube-ji"' in page.text and '<td data-col="INFERENCES">77</td>' in page.text
            assert http.get(handle.url.replace("/dashboard/", "/healthz")).text == "ok"
            assert httpx.get(handle.url).status_code == 303  # no credentials: to the login

            cluster.patch_status(JOINT_INFERENCE_SERVICE, "default", "kube-ji", {"inference": {"count": 78}})
            deadline = time.monotonic() + 10
            while '<td data-col="INFERENCES">78</td>' not in http.get(handle.url).text:
                assert time.monotonic() < deadline, "the dashboard never saw the change through the kube watch"
                time.sleep(0.1)
            nodes = http.get(handle.url + "api/nodes").json()
            assert nodes == {"hub": False, "items": []}
    finally:
        handle.stop()
