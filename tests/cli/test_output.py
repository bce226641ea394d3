"""``sedna get -o``: json, yaml, name, and wide with real extra columns (workers, nodes, images)."""

from __future__ import annotations

import json

import pytest
import yaml

from gm.cluster.interface import JOINT_INFERENCE_SERVICE, NODE, POD
from tests.cli.conftest import Api, model

pytestmark = pytest.mark.processes

JI = {"apiVersion": "sedna.io/v1alpha1", "kind": "JointInferenceService",
      "metadata": {"name": "digits", "namespace": "default"},
      "spec": {"edgeWorker": {"model": {"name": "e"}, "hardExampleMining": {"name": "CrossEntropy"},
                              "template": {"spec": {"nodeName": "edge-0", "containers": [
                                  {"name": "edge", "image": "sedna-py/edge:1"}]}}},
               "cloudWorker": {"model": {"name": "c"}, "template": {"spec": {"nodeName": "cloud", "containers": [
                   {"name": "cloud", "image": "sedna-py/cloud:1"}]}}}},
      "status": {}}


def pod(name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default",
                         "labels": {"jointinferenceservice.sedna.io/name": "digits"}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "sedna-py/x:1"}]}}


def table(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_wide_counts_running_workers_and_their_nodes(api: Api) -> None:
    api.store.create(JI)
    api.store.patch_status(JOINT_INFERENCE_SERVICE, "default", "digits", {"phase": "Running", "readyWorkers": "1/2"})
    api.store.create(pod("digits-edge", "edge-0"))
    api.store.create(pod("digits-cloud", "cloud"))
    api.store.patch_status(POD, "default", "digits-edge", {"phase": "Running"})
    api.store.patch_status(POD, "default", "digits-cloud", {"phase": "Pending"})

    narrow = table(api.sedna("get", "ji").stdout)
    wide = table(api.sedna("get", "ji", "-o", "wide").stdout)

    assert narrow[0] == ["NAME", "PHASE", "READY", "OFFLOAD", "INFERENCES", "AGE"]
    assert wide[0] == ["NAME", "PHASE", "READY", "OFFLOAD", "INFERENCES", "HEM", "IMAGES", "WORKERS", "NODES", "AGE"]
    row = dict(zip(wide[0], wide[1], strict=True))
    assert (row["NAME"], row["PHASE"], row["HEM"]) == ("digits", "Running", "CrossEntropy")
    assert row["IMAGES"] == "sedna-py/edge:1,sedna-py/cloud:1"
    assert (row["WORKERS"], row["NODES"]) == ("1/2", "cloud,edge-0")


def test_json_yaml_and_name(api: Api) -> None:
    api.store.create(model("b"))
    api.store.create(model("a"))

    one = json.loads(api.sedna("get", "models", "a", "-o", "json").stdout)
    assert (one["kind"], one["metadata"]["name"]) == ("Model", "a")
    listing = yaml.safe_load(api.sedna("get", "models", "-o", "yaml").stdout)
    assert listing["kind"] == "List"
    assert [i["metadata"]["name"] for i in listing["items"]] == ["a", "b"]
    assert api.sedna("get", "models", "-o", "name").stdout.splitlines() == ["model/a", "model/b"]


def test_empty_listing_says_so_on_stderr(api: Api) -> None:
    out = api.sedna("get", "fl")
    assert (out.returncode, out.stdout, out.stderr.strip()) == (0, "", "No federatedlearningjobs found in namespace "
                                                                       "default.")


def test_nodes_are_cluster_scoped(api: Api) -> None:
    api.store.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "edge-0"}})
    api.store.patch_status(NODE, "", "edge-0", {"conditions": [{"type": "Ready", "status": "True"}]})
    rows = table(api.sedna("get", "no").stdout)
    assert rows[0][:2] == ["NAME", "STATUS"]
    assert rows[1][:2] == ["edge-0", "True"]
