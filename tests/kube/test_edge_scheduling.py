"""Edge workers on KubeEdge nodes: the edge taint tolerated, hostNetwork for the JI edge worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gm.cluster.interface import DEPLOYMENT, Cluster
from gm.settings import ControllerSettings
from gm.workloads.scheduling import EDGE_TOLERATION, place_on_edge
from tests.gm.ji_fixtures import Harness, env_of, ji, model

KUBE = ControllerSettings(storage_injection=True, edge_scheduling=True)  # python -m gm --backend kube


@pytest.fixture
def kube() -> Iterator[Cluster]:
    from tests.gm.test_cluster_contract import kube_backend

    with kube_backend() as cluster:
        cluster.create(model("small", "/models/edge.onnx"))
        cluster.create(model("big", "/models/cloud.onnx"))
        yield cluster


def test_the_edge_worker_tolerates_the_edge_taint_and_shares_the_node_network(kube: Cluster) -> None:
    service = ji()
    edge_pod = service["spec"]["edgeWorker"]["template"]["spec"]
    edge_pod["containers"][0]["resources"] = {"limits": {"cpu": "500m", "memory": "256Mi"}}
    kube.create(service)

    Harness(kube, KUBE).reconcile()

    edge = kube.get(DEPLOYMENT, "default", "digits-edge")["spec"]["template"]["spec"]
    cloud = kube.get(DEPLOYMENT, "default", "digits-cloud")["spec"]["template"]["spec"]
    assert edge["nodeName"] == "edge-0"
    assert edge["tolerations"] == [EDGE_TOLERATION]
    assert edge["hostNetwork"] is True and edge["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert edge["containers"][0]["resources"] == {"limits": {"cpu": "500m", "memory": "256Mi"}}
    assert "tolerations" not in cloud and "hostNetwork" not in cloud  # the scheduler places cloud workers
    env = env_of(kube.get(DEPLOYMENT, "default", "digits-edge"))
    assert {"NAMESPACE", "SERVICE_NAME", "WORKER_NAME", "MODEL_URL", "LC_SERVER", "BIG_MODEL_IP", "BIG_MODEL_PORT",
            "HEM_NAME", "HEM_PARAMETERS"} <= set(env)


def test_the_templates_own_choices_are_kept() -> None:
    spec = {"hostNetwork": False, "tolerations": [{"operator": "Exists"}]}

    place_on_edge(spec, host_network=True)

    assert spec == {"hostNetwork": False, "tolerations": [{"operator": "Exists"}]}


def test_the_local_backend_is_unchanged(kube: Cluster) -> None:
    kube.create(ji())

    Harness(kube, ControllerSettings()).reconcile()

    edge = kube.get(DEPLOYMENT, "default", "digits-edge")["spec"]["template"]["spec"]
    assert "tolerations" not in edge and "hostNetwork" not in edge
    assert env_of(kube.get(DEPLOYMENT, "default", "digits-edge"))["MODEL_URL"] == "/models/edge.onnx"
