"""The LifelongLearningJob controller against the kmock Kubernetes API emulator, through KubeCluster.

The emulator allocates no clusterIP and runs no Pods: these tests hold the controller's objects
(the KB Deployment and Service, the stage Pods) and status to what Kubernetes would get. The KB
access reaches nothing (no DNS lookup of ``<job>-kb.<namespace>`` leaves this machine).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gm.cluster.interface import DEPLOYMENT, LIFELONG_LEARNING_JOB, POD, SERVICE, Cluster
from gm.controllers.lifelong_learning.knowledge_base import UnreachableKB
from gm.settings import ControllerSettings
from tests.lifelong.ll_fixtures import LABEL, Harness, dataset, env_of, job

KUBE = ControllerSettings()  # no default node, no clusterIP wait: as on Kubernetes


@pytest.fixture
def kube() -> Iterator[Cluster]:
    from tests.gm.test_cluster_contract import kube_backend

    with kube_backend() as cluster:
        cluster.create(dataset())
        cluster.create(job())
        yield cluster


def test_the_kb_deployment_and_service_are_owned_labelled_and_reached_by_dns(kube: Cluster) -> None:
    harness = Harness(kube, KUBE, UnreachableKB())

    harness.reconcile()

    owner = kube.get(LIFELONG_LEARNING_JOB, "default", "ll")
    deployment, service = kube.get(DEPLOYMENT, "default", "ll-kb"), kube.get(SERVICE, "default", "ll-kb")
    for obj in (deployment, service):
        assert obj["metadata"]["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]
        assert obj["metadata"]["labels"][f"{LABEL}/uid"] == owner["metadata"]["uid"]
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"][f"{LABEL}/worker-type"] == "kb"
    assert template["spec"]["nodeName"] == "cloud"  # the train template's node
    assert template["spec"]["containers"][0]["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 9020}
    assert env_of(deployment)["KB_BIND_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    status = owner["status"]
    assert status["knowledgeBaseServer"]["url"] == "http://ll-kb.default:9020"
    assert status["waiting"]["reason"] == "KnowledgeBaseStarting"
    assert (status["stage"], status["stageState"]) == ("Train", "Waiting")
    assert kube.list(POD, "default") == []


def test_reconciling_again_creates_nothing_and_a_deleted_service_comes_back(kube: Cluster) -> None:
    harness = Harness(kube, KUBE, UnreachableKB())
    harness.reconcile()
    uid = kube.get(DEPLOYMENT, "default", "ll-kb")["metadata"]["uid"]
    token = env_of(kube.get(DEPLOYMENT, "default", "ll-kb"))["KB_TOKEN"]

    Harness(kube, KUBE, UnreachableKB()).reconcile()
    kube.delete(SERVICE, "default", "ll-kb")
    harness.reconcile()

    deployment = kube.get(DEPLOYMENT, "default", "ll-kb")
    assert deployment["metadata"]["uid"] == uid and env_of(deployment)["KB_TOKEN"] == token
    assert kube.get(SERVICE, "default", "ll-kb")["metadata"]["labels"][f"{LABEL}/worker-type"] == "kb"
    assert len(kube.list(DEPLOYMENT, "default")) == 1 and len(kube.list(SERVICE, "default")) == 1


def test_a_missing_dataset_is_a_waiting_reason_naming_the_field(kube: Cluster) -> None:
    from gm.cluster.interface import DATASET

    kube.delete(DATASET, "default", "samples")
    harness = Harness(kube, KUBE, UnreachableKB())

    harness.reconcile()

    status = kube.get(LIFELONG_LEARNING_JOB, "default", "ll")["status"]
    assert status["waiting"] == {"reason": "MissingReference",
                                 "message": "spec.dataset.name: Dataset 'samples' not found in namespace 'default'"}
    assert kube.list(DEPLOYMENT, "default") == []
