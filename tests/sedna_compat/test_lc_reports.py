"""Sedna's LC client against a real LC: no longer silently broken.

A Sedna-style reporter without a token is refused with a message saying what to set, and keeps
running; with the token (``LC_TOKEN`` for this SDK, or inside ``LC_SERVER`` for a Sedna image,
sent as HTTP Basic) its reports land, and Sedna's owner defaults (``ownerName`` ``sedna``,
``ownerKind`` ``default``) reach the resource this node runs. A default that names no single
resource is refused, saying which env to set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

from gm.cluster.interface import JOINT_INFERENCE_SERVICE
from gm.cluster.local.store import LocalStore
from lc import owners
from lc.store import Store
from sedna.controlplane.edgehub import ObjectKey
from sedna.controlplane.errors import BadReport
from sedna.controlplane.reports import WorkerReport
from tests.hub.harness import LC, WORKER_TOKEN, dataset, joint_inference, model, wait_until
from tests.sedna_compat.conftest import run_program

pytestmark = pytest.mark.processes

KINDS = ("federatedlearningjob", "incrementallearningjob", "jointinferenceservice", "lifelonglearningjob")


def federated(name: str, dataset_name: str) -> dict[str, Any]:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "FederatedLearningJob",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"aggregationWorker": {"model": {"name": "fl-model"}, "template": {"spec": {"containers": []}}},
                     "trainingWorkers": [{"dataset": {"name": dataset_name},
                                          "template": {"spec": {"containers": []}}}]}}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LC, LocalStore]]:
    """A hub with a joint-inference service and a federated job on edge-0, and edge-0's real LC."""
    from gm.hub.server import start_hub

    root = tmp_path_factory.mktemp("lc-reports")
    store = LocalStore(root / "gm.db", poll_interval=0.05)
    for obj in (model("edge-model"), model("cloud-model"), model("fl-model"), joint_inference("helmet", "edge-0"),
                dataset("mnist", "edge-0", str(root / "mnist.txt")), federated("mnist-fl", "mnist")):
        store.create(obj)
    hub = start_hub(store, "127.0.0.1", 0, {"edge-0": "t0"})
    lc = LC(root, f"127.0.0.1:{hub.port}", "edge-0", "t0").start()
    try:
        wait_until(lambda: {"jointinferenceservice/default/helmet", "federatedlearningjob/default/mnist-fl"}
                   <= set(lc.objects()), message="edge-0 holds the service and the job")
        yield lc, store
    finally:
        lc.stop()
        hub.stop()
        store.close()


def accepted(lc: LC, kind: str) -> float:
    text = httpx.get(f"{lc.url}/metrics", timeout=5).text
    match = re.search(rf'^sedna_lc_worker_reports_total{{owner_kind="{kind}",result="accepted"}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def reporter(tmp_path: Path, lc: LC, **env: str) -> dict[str, Any]:
    out = run_program("lc/edge_reporter.py", {"WORKER_NAME": "helmet-edge-7d9f", "NAMESPACE": "default",
                                               "LC_SERVER": lc.url, "LC_PERIOD": "0.3", "wait": "10", **env},
                      tmp_path / "reporter.log")
    return dict(json.loads(out.strip().splitlines()[-1]))


def test_without_a_token_the_report_is_refused_saying_what_to_set_and_the_reporter_lives_on(
        tmp_path: Path, node: tuple[LC, LocalStore]) -> None:
    lc, _ = node
    done = reporter(tmp_path, lc)

    assert done["alive"] and done["sent"] == 0 and done["refused"] >= 2
    log = (tmp_path / "reporter.log").read_text()
    assert "refused the report (401)" in log and "set the worker's env LC_TOKEN" in log
    reply = httpx.post(f"{lc.url}/sedna/workers/w/info", json={})
    assert reply.status_code == 401 and "LC_SERVER as http://sedna:<token>@<host>:<port>" in reply.json()["Message"]


def test_with_lc_token_sednas_default_owner_reaches_the_services_status(tmp_path: Path,
                                                                        node: tuple[LC, LocalStore]) -> None:
    lc, store = node
    done = reporter(tmp_path, lc, LC_TOKEN=WORKER_TOKEN)  # JOB_NAME unset: ownerName is Sedna's "sedna"

    assert done["alive"] and done["sent"] >= 1 and done["refused"] == 0
    inference = wait_until(lambda: (store.get(JOINT_INFERENCE_SERVICE, "default", "helmet").get("status") or {})
                           .get("inference"), message="the service's counters")
    assert (inference["count"], inference["hardExamples"]) == (20, 5)


def test_a_sedna_image_carries_the_token_in_lc_server(node: tuple[LC, LocalStore]) -> None:
    lc, _ = node
    before = accepted(lc, "federatedlearningjob")
    lc_server = lc.url.replace("http://", f"http://sedna:{WORKER_TOKEN}@")
    message = {"name": "mnist-fl-train-0", "namespace": "default", "ownerName": "mnist-fl", "ownerKind": "default",
               "kind": "train", "status": "running",
               "ownerInfo": {"currentRound": 1, "sampleCount": 60, "startTime": "2024-05-01 10:00:00",
                             "updateTime": "2024-05-01 10:00:09"},
               "results": [{"format": "pb", "url": "/model/model.pb", "metrics": {}}]}

    # What Sedna's LCClient.send does: requests, JSON body, no headers of its own.
    reply = requests.post(f"{lc_server}/sedna/workers/mnist-fl-train-0/info", json=message, timeout=10)

    assert reply.status_code == 200 and reply.json() == {"Status": 200, "Message": "OK"}
    assert accepted(lc, "federatedlearningjob") == before + 1  # ownerKind "default" resolved to the job


def test_a_default_owner_that_names_no_resource_is_refused_saying_what_to_set(node: tuple[LC, LocalStore]) -> None:
    lc, _ = node
    message = {"name": "cam-3", "namespace": "default", "ownerName": "nothing-here", "ownerKind": "default",
               "kind": "train", "status": "running"}

    reply = lc.post("cam-3", message)

    assert reply.status_code == 400
    assert reply.json()["Message"].startswith("field 'ownerKind': ownerKind 'default', ownerName 'nothing-here'")
    assert "set the worker's env JOB_NAME to its resource's name" in reply.json()["Message"]


class TestResolution:
    @pytest.fixture
    def held(self, tmp_path: Path) -> Iterator[Store]:
        store = Store(tmp_path / "lc.db")
        for kind, ns, name in (("jointinferenceservice", "default", "helmet"),
                               ("jointinferenceservice", "default", "helmet-v2"),
                               ("jointinferenceservice", "prod", "door"),
                               ("federatedlearningjob", "default", "mnist")):
            store.put_object(ObjectKey(kind, ns, name), "1", {"metadata": {"namespace": ns, "name": name}})
        yield store
        store.close()

    @staticmethod
    def report(worker: str, name: str, kind: str = "jointinferenceservice", namespace: str = "default") -> WorkerReport:
        return WorkerReport(worker=worker, namespace=namespace, owner_name=name, owner_kind=kind)

    @pytest.mark.parametrize(("worker", "namespace", "expected"), [
        ("helmet-v2-edge-abc", "default", ("default", "helmet-v2")),  # the longest name the worker's name starts with
        ("helmet-edge-abc", "default", ("default", "helmet")),
        ("camera-1", "prod", ("prod", "door")),  # the only one in its namespace
    ])
    def test_sedna_as_owner_name_is_the_service_the_worker_belongs_to(self, held: Store, worker: str,
                                                                       namespace: str, expected: tuple) -> None:
        found = owners.resolve(self.report(worker, "sedna", namespace=namespace), KINDS, held)

        assert (found.namespace, found.owner_name, found.owner_kind) == (*expected, "jointinferenceservice")

    def test_sedna_as_owner_name_that_could_be_either_is_refused(self, held: Store) -> None:
        with pytest.raises(BadReport, match=r"this node runs .*jointinferenceservice/default/helmet, "):
            owners.resolve(self.report("camera-1", "sedna"), KINDS, held)

    def test_default_kind_takes_the_kind_of_the_named_resource(self, held: Store) -> None:
        assert owners.resolve(self.report("t0", "mnist", "default"), KINDS, held).owner_kind == "federatedlearningjob"

    def test_real_owners_pass_unchanged_even_before_the_lc_holds_them(self, held: Store) -> None:
        report = self.report("w", "not-yet-routed")

        assert owners.resolve(report, KINDS, held) is report
