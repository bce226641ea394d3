"""Lifelong learning end to end in the local backend, from the example's YAML.

Real processes: the ``sedna`` CLI, the GM, one LC per node (``cloud``, ``edge-0``, ``edge-1``),
the job's knowledge-base server, and the train, eval and inference workers the runtime starts.
The module runs the control-plane example once (two new camera sites, i.e. two task arrivals
after the first knowledge base) and leaves the cluster up for the tests that follow: the status
in Sedna's shape, the edge serving while the KB is stopped, the KB surviving a restart, reports
from the wrong node or worker refused, and an accepted job saying why it waits (and why it
failed, when a worker cannot start because of an algorithm name).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from examples.lifelong_learning.digits_cameras.control_plane import JOB, Api, run, sedna
from examples.lifelong_learning.digits_cameras.stream import build_stream
from sedna.cli._local_secrets import edge_token
from sedna.cli.local import RECORD
from sedna.service.inference.rest_client import RestInferenceClient
from sedna.service.kb.client import KBClient
from sedna.service.kb.errors import KBError
from tests.support.waiting import eventually
from workers.lifelong.data import save_table

pytestmark = [pytest.mark.slow, pytest.mark.processes]
KB_LABELS = "lifelonglearningjob.sedna.io/worker-type=kb,lifelonglearningjob.sedna.io/name="


class Cluster:
    """The module's control plane after the example ran: its API, its LCs, the edge worker."""

    def __init__(self, root: Path, result: dict[str, Any]) -> None:
        self.root, self.result = root, result
        self.state = Path(result["state_dir"])
        self.api = Api(self.state)
        record = json.loads((self.state / RECORD).read_text())
        self.lcs = {node: info["server"] for node, info in record["lc"].items()}
        tokens = (self.state / "worker-tokens").read_text().split()
        self.worker_tokens = dict(line.split("=", 1) for line in tokens)
        self.edge = RestInferenceClient(f"http://127.0.0.1:{result['edge_port']}", token=edge_token(self.state) or None)

    def ask(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        answer = self.edge.infer(JOB, {"features": x}, timeout=30)
        return answer.outputs["probabilities"], int(answer.parameters["kb_version"])

    def report(self, node: str, worker: str, body: dict[str, Any]) -> httpx.Response:
        """Post a worker report to ``node``'s LC with that node's worker token."""
        return httpx.post(f"{self.lcs[node]}/sedna/workers/{worker}/info", json={"name": worker, **body},
                          headers={"Authorization": f"Bearer {self.worker_tokens[node]}"}, timeout=10)

    def apply(self, text: str, name: str) -> None:
        path = self.root / f"{name}.yaml"
        path.write_text(text)
        sedna("apply", "-f", str(path), state_dir=self.state)

    def kb_pod(self, job: str = JOB) -> dict[str, Any]:
        [pod] = [p for p in self.api.pods(KB_LABELS + job) if not p["metadata"].get("deletionTimestamp")]
        return pod

    def kb_pid(self, pod: dict[str, Any]) -> int:
        entries = json.loads((self.state / "pids.json").read_text())
        return int(entries[f"{pod['metadata']['uid']}/kb"][0])

    def kb_client(self, job: str = JOB) -> KBClient:
        deployment = self.api.get(f"/apis/apps/v1/namespaces/default/deployments/{job}-kb") or {}
        env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        return KBClient(self.api.status(job)["knowledgeBaseServer"]["url"], env["KB_TOKEN"], timeout=5)

    def until(self, predicate: Callable[[], Any], timeout: float, what: str, **kwargs: Any) -> Any:
        return eventually(predicate, timeout, interval=0.1, message=what, **kwargs)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("ll-e2e")
    result: dict[str, Any] = {"state_dir": str(root / "state")}
    try:
        result = run(root, sites=2, log=lambda _: None, keep=True, nodes="cloud,edge-0,edge-1")
        cluster = Cluster(root, result)
        yield cluster
        cluster.edge.close()
        cluster.api.close()
    finally:
        sedna("local", "down", state_dir=Path(result["state_dir"]), check=False)


def test_two_task_arrivals_are_detected_learned_published_and_served(cluster: Cluster) -> None:
    second, third = cluster.result["rounds"]

    assert (second["site"], third["site"]) == ("rotated", "inverted")
    for arrival in (second, third):
        assert arrival["labelled"] >= 100 and arrival["flagged"] <= 0.5 * arrival["seen"]
        assert arrival["accuracy"] > 0.7 and arrival["still_unseen"] < 0.15
    assert 1 < second["version"] < third["version"]
    status = cluster.result["status"]
    assert status["kbVersions"] == {"trained": third["version"], "evaluated": third["version"],
                                    "published": third["version"], "served": third["version"]}
    served = [json.loads(c["data"])["round"] for c in status["conditions"] if c["reason"] == "Serving"]
    assert served[-2:] == [2, 3]  # the history keeps the last 50 entries: round 1's may be gone


def test_status_knowledge_base_has_sednas_shape(cluster: Cluster) -> None:
    status = cluster.api.status()
    kb = status["knowledgeBase"]

    assert set(kb) == {"AIModels", "AIClasses", "samples"}
    models = kb["AIModels"]["listOfAIModels"]
    assert kb["AIModels"]["numberOfAIModels"] == len(models) == 3
    assert {m["modelID"] for m in models} == {"upright", "rotated", "inverted"}
    assert all(set(m) == {"modelID", "averagePrecision", "numberOfTrainSamples"} for m in models)
    assert all(0.5 < m["averagePrecision"] <= 1 and m["numberOfTrainSamples"] >= 50 for m in models)
    assert kb["AIClasses"] == {"numberOfAIClasses": 10, "listOfAIClasses": [str(d) for d in range(10)]}
    samples = kb["samples"]
    assert samples["numberOfLabeledUnseenSample"] >= 288 + 2 * 50  # the first site, then two new tasks
    assert samples["numberOfUnseenSample"] == status["inference"]["unseenSamples"] > 0


def test_the_edge_serves_while_the_kb_is_down(cluster: Cluster) -> None:
    test = build_stream()[1].test
    version = cluster.api.status()["kbVersions"]["served"]
    pid = cluster.kb_pid(cluster.kb_pod())
    answers: list[int] = []

    def served_while_the_gm_sees_the_kb_down() -> dict[str, Any] | None:
        probabilities, served = cluster.ask(test.x)
        assert served == version
        assert (probabilities.argmax(axis=1) == test.y).mean() > 0.7
        answers.append(served)
        status = cluster.api.status()
        return status if len(answers) >= 5 and not status["knowledgeBaseServer"]["ready"] else None

    os.kill(pid, signal.SIGSTOP)  # the KB neither answers nor refuses
    try:  # across many of the edge's 0.5 s polls, each of which fails
        status = eventually(served_while_the_gm_sees_the_kb_down, 60, interval=0.5,
                            message="the GM to see the KB down while the edge answers")
        assert status["knowledgeBaseServer"]["reason"] == "Starting"
        assert status["inferenceWorker"]["state"] == "Running"
    finally:
        os.kill(pid, signal.SIGCONT)
    cluster.until(lambda: cluster.api.status()["knowledgeBaseServer"]["ready"], 30, "the KB to answer again")


def test_the_kb_survives_a_restart(cluster: Cluster) -> None:
    with cluster.kb_client() as client:
        before = client.versions()
    old = cluster.kb_pod()

    cluster.api.http.delete(f"/api/v1/namespaces/default/pods/{old['metadata']['name']}")

    def uids() -> set[str]:
        return {p["metadata"]["uid"] for p in cluster.api.pods(KB_LABELS + JOB)}

    # the old Pod gone (its process stopped, so the Service cannot reach it) and a new one in its place
    cluster.until(lambda: (found := uids()) and old["metadata"]["uid"] not in found, 60, "the old KB Pod replaced")

    def after_the_restart() -> tuple[list[Any], int]:
        with cluster.kb_client() as client:
            return client.versions(), client.index()[0]["version"]

    # the status may still say "ready" from before the deletion: ask the KB itself, through its Service
    versions, served = cluster.until(after_the_restart, 60, "the new KB to answer", ignoring=(KBError,))
    assert versions == before
    assert served == cluster.api.status()["kbVersions"]["published"]
    assert cluster.kb_pod()["metadata"]["uid"] != old["metadata"]["uid"]
    cluster.until(lambda: cluster.api.status()["knowledgeBaseServer"]["ready"], 60, "the GM to see the KB ready")


def test_reports_from_another_node_or_worker_are_refused(cluster: Cluster) -> None:
    info = {"inferenceNumber": 5, "unseenSampleNumber": 1, "kbVersion": 99}
    body = {"namespace": "default", "ownerName": JOB, "ownerKind": "lifelonglearningjob", "kind": "inference",
            "status": "running", "ownerInfo": info}

    elsewhere = cluster.report("edge-1", f"{JOB}-infer", body)  # edge-1 does not hold the job
    assert elsewhere.status_code == 403  # identity's contract: work placed on another node is forbidden
    message = elsewhere.json()["Message"]
    assert message.startswith("ownerName: ") and "is not held by this LC (node 'edge-1')" in message

    # edge-0 holds the job, so its LC forwards; the GM refuses a worker that is not one of the job's Pods
    assert cluster.report("edge-0", "intruder", body).status_code == 200
    served = cluster.api.status()["kbVersions"]["served"]
    genuine = {**body, "ownerInfo": {**info, "inferenceNumber": 123456, "kbVersion": served}}
    assert cluster.report("edge-0", f"{JOB}-infer", genuine).status_code == 200  # after it, in order

    status = cluster.until(lambda: (s := cluster.api.status())["inference"]["count"] == 123456 and s, 30,
                           "the genuine report")
    assert status["edgeReports"]["inference"]["worker"] == f"{JOB}-infer"
    assert status["kbVersions"]["served"] == served != 99


WAITING_JOB = """
apiVersion: sedna.io/v1alpha1
kind: Dataset
metadata: {{name: waiting-samples}}
spec: {{url: {index}, format: csv, nodeName: edge-0}}
---
apiVersion: sedna.io/v1alpha1
kind: LifelongLearningJob
metadata: {{name: {name}}}
spec:
  dataset: {{name: waiting-samples, trainProb: 0.8}}
  outputDir: {out}
  trainSpec:
    template:
      spec:
        nodeName: cloud
        containers:
        - name: train
          image: sedna-py
          command: [python, -c, "import runpy; runpy.run_module('workers.lifelong.train', run_name='__main__')"]
          env: [{{name: attribute, value: site}}, {{name: unseen_sample_recognition, value: {bad}}}]
    trigger:
      checkPeriodSeconds: 1
      condition: {{operator: ">=", threshold: 40, metric: num_of_samples}}
  evalSpec:
    template:
      spec:
        containers: [{{name: eval, image: sedna-py, command: [python, -m, workers.lifelong.eval]}}]
  deploySpec:
    template:
      spec:
        containers: [{{name: infer, image: sedna-py, command: [python, -m, workers.lifelong.infer]}}]
"""


def test_an_accepted_job_says_why_it_waits_and_a_bad_algorithm_name_fails_naming_the_field(
        cluster: Cluster) -> None:
    """The train command hides the worker module from the GM's own check, so the worker's startup report
    is what names the field here."""
    first = build_stream()[0].train
    index = save_table(cluster.root / "waiting" / "index.csv", first.subset(np.arange(0)), ["site"])
    cluster.apply(WAITING_JOB.format(name="waiting", index=index, out=cluster.root / "waiting" / "out",
                                     bad="SampleRecognitionByDistanse"), "waiting")

    def waiting() -> dict[str, str] | None:
        return cluster.api.status("waiting").get("waiting")

    assert cluster.until(lambda: (w := waiting()) and w["reason"] == "TrainTrigger" and w, 60, "TrainTrigger")[
        "message"] == ("waiting for the LC on edge-0 to fire the train trigger (num_of_samples >= 40, checked every "
                       "1s) on new samples of Dataset waiting-samples")

    with index.open("a") as handle:  # 10 rows: 8 train samples, 2 eval
        handle.write("".join(f"upright,{','.join(['1'] * 64)},{d}\n" for d in range(10)))
    assert cluster.until(lambda: (w := waiting()) and "does not satisfy" in w["message"] and w, 30, "explanation")[
        "message"] == "train trigger on edge-0: num_of_samples = 8 does not satisfy num_of_samples >= 40"

    with index.open("a") as handle:
        handle.write("".join(f"upright,{','.join(['2'] * 64)},{d % 10}\n" for d in range(50)))
    failed = cluster.until(lambda: [c for c in cluster.api.status("waiting").get("conditions") or []
                                    if c["stage"] == "Train" and c["type"] == "Failed"], 90, "the train stage to fail")
    message = failed[0]["message"]
    # the worker's report (WorkerFailed) or its Pod's exit with the log's last lines (PodFailed), whichever the GM
    # sees first: both name the field
    assert failed[0]["reason"] in ("WorkerFailed", "PodFailed") and message.startswith("waiting-train-1")
    assert "unseen_sample_recognition.method" in message and "'SampleRecognitionByDistance'" in message
    sedna("delete", "ll", "waiting", state_dir=cluster.state, check=False)


def test_a_bad_algorithm_name_in_a_lifelong_worker_is_refused_before_anything_runs(cluster: Cluster) -> None:
    index = cluster.root / "waiting" / "index.csv"
    text = WAITING_JOB.format(name="refused", index=index, out=cluster.root / "refused",
                              bad="SampleRecognitionByDistanse").replace(
        "command: [python, -c, \"import runpy; runpy.run_module('workers.lifelong.train', run_name='__main__')\"]",
        "command: [python, -m, workers.lifelong.train]")
    cluster.apply(text, "refused")

    failed = cluster.until(lambda: [c for c in cluster.api.status("refused").get("conditions") or []
                                    if c["type"] == "Failed"], 30, "the job to fail")

    assert (failed[0]["reason"], failed[0]["message"]) == ("InvalidSpec", (
        "spec.trainSpec.template.spec.containers[0].env.unseen_sample_recognition: unknown algorithm "
        "'SampleRecognitionByDistanse' (did you mean 'SampleRecognitionByDistance'?)"))
    assert cluster.api.pods("lifelonglearningjob.sedna.io/name=refused") == []
