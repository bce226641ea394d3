"""The issue's failure and restart cases through the real GM controller and LCs in the local backend.

One ``sedna local up`` (nodes ``cloud``, ``edge-0``, ``edge-1``) serves every test of the module;
each test applies its own jobs (their own data directories) and asserts on their status:

- each bad input names its field: an unknown operator or an unparseable time is refused by the
  API server's schema (the error names the field, nothing is stored); a malformed metric
  expression, a missing dataset or a missing model yields a job condition naming the field;
- a train worker that exits 1 fails its stage with the log file's path, and the job waits for the
  next trigger (whose round gets the failed round's samples back);
- ``hotUpdateEnabled: false`` deploys by recreating the inference Pod, and the new model answers;
- the LC of the job's node killed with SIGKILL mid-round and restarted: the round completes, and
  every sample is counted exactly once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.incremental_learning.digits.prepare import Layout, accuracy, feed, prepare
from examples.incremental_learning.digits.run import measure, sedna
from sedna.cli.local import MARKER
from tests.support.procs import free_port, wait_for_port

pytestmark = [pytest.mark.slow, pytest.mark.processes]
Data = Callable[[str], Layout]


class Cluster:
    """The module's local control plane: apply YAML, read job and Pod objects over the local API."""

    def __init__(self, root: Path) -> None:
        self.root, self.state = root, root / "state"
        ready = json.loads((self.state / "gm.ready.json").read_text())
        self.api = ready["api"]
        self.headers = {"Authorization": f"Bearer {(self.state / 'token').read_text().strip()}"}

    def apply(self, text: str, name: str) -> None:
        path = self.root / f"{name}.yaml"
        path.write_text(text)
        sedna("apply", "-f", str(path), state_dir=self.state)

    def get(self, plural: str, name: str, group: str = "apis/sedna.io/v1alpha1") -> dict[str, Any] | None:
        response = httpx.get(f"{self.api}/{group}/namespaces/default/{plural}/{name}", headers=self.headers,
                             timeout=10)
        return response.json() if response.status_code == 200 else None

    def job(self, name: str) -> dict[str, Any]:
        return (self.get("incrementallearningjobs", name) or {}).get("status") or {}

    def pod(self, name: str) -> dict[str, Any] | None:
        return self.get("pods", name, "api/v1")

    def wait(self, name: str, predicate: Callable[[list[dict[str, Any]]], bool], what: str,
             timeout: float = 90) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        conditions: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            conditions = self.job(name).get("conditions") or []
            if predicate(conditions):
                return conditions
            time.sleep(0.1)
        brief = [(c["stage"], c["type"], c["reason"], c["message"]) for c in conditions[-5:]]
        raise AssertionError(f"{name}: timed out waiting for {what}; last conditions {brief}")


def seen(conditions: list[dict[str, Any]], round_: int, stage: str, type_: str, reason: str = "") -> bool:
    return any(c["stage"] == stage and c["type"] == type_ and json.loads(c["data"]).get("round") == round_
               and (not reason or c["reason"] == reason) for c in conditions)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("il-cases")
    sedna("local", "up", "--nodes", "cloud,edge-0,edge-1", state_dir=root / "state")
    try:
        yield Cluster(root)
    finally:
        sedna("local", "down", state_dir=root / "state", check=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    """A fresh copy of the example's data (prepared once) per job."""
    template = prepare(tmp_path_factory.mktemp("il-data") / "template")

    def copy(job: str) -> Layout:
        target = template.root.parent / job
        shutil.copytree(template.root, target)
        return Layout(target)

    return copy


def resources(job: str, layout: Layout, node: str, *, train_command: str = "", hot: bool = True,
              threshold: int = 40, port: int = 0, operator: str = ">=", start: str = "00:00",
              deploy_metric: str = "accuracy_delta", dataset: str = "", initial: str = "") -> str:
    """A Dataset, two Models and a job over ``layout`` (see the example's resources.yaml)."""
    train = train_command or "[python, -m, workers.incremental.train]"
    port = port or free_port()
    return f"""
apiVersion: sedna.io/v1alpha1
kind: Dataset
metadata: {{name: {job}-samples}}
spec: {{url: {layout.index}, format: csv, nodeName: {node}}}
---
apiVersion: sedna.io/v1alpha1
kind: Model
metadata: {{name: {job}-initial}}
spec: {{url: {layout.initial_model}, format: npz}}
---
apiVersion: sedna.io/v1alpha1
kind: Model
metadata: {{name: {job}-deploy}}
spec: {{url: {layout.deploy_model}, format: npz}}
---
apiVersion: sedna.io/v1alpha1
kind: IncrementalLearningJob
metadata: {{name: {job}}}
spec:
  dataset: {{name: {dataset or job + '-samples'}, trainProb: 0.8}}
  initialModel: {{name: {initial or job + '-initial'}}}
  outputDir: {layout.output}
  trainSpec:
    template:
      spec:
        containers:
        - name: train
          image: sedna-py
          command: {train}
          env: [{{name: epochs, value: "20"}}]
    trigger:
      checkPeriodSeconds: 1
      timer: {{start: "{start}", end: "24:00"}}
      condition: {{operator: "{operator}", threshold: {threshold}, metric: num_of_samples}}
  evalSpec:
    template:
      spec:
        containers:
        - {{name: eval, image: sedna-py, command: [python, -m, workers.incremental.eval]}}
  deploySpec:
    model: {{name: {job}-deploy, hotUpdateEnabled: {str(hot).lower()}, pollPeriodSeconds: 1}}
    trigger:
      condition: {{operator: ">=", threshold: -1, metric: "{deploy_metric}"}}
    template:
      spec:
        containers:
        - name: infer
          image: sedna-py
          command: [python, -m, workers.incremental.infer]
          env: [{{name: EDGE_BIND_IP, value: 127.0.0.1}}, {{name: EDGE_BIND_PORT, value: "{port}"}},
                {{name: EDGE_GRPC_PORT, value: "{free_port()}"}}]
"""


def test_each_bad_input_is_refused_or_gets_a_condition_naming_its_field(cluster: Cluster, data: Data) -> None:
    layout = data("bad")
    refused = {"bad-operator": (dict(operator="approx"), "spec.trainSpec.trigger.condition.operator"),
               "bad-time": (dict(start="25:99"), "spec.trainSpec.trigger.timer.start")}
    flagged = {"bad-metric": (dict(deploy_metric="precision_delta["), "spec.deploySpec.trigger.condition.metric"),
               "no-dataset": (dict(dataset="nowhere"), "spec.dataset.name"),
               "no-model": (dict(initial="nothing"), "spec.initialModel.name")}
    # the API server's schema refuses what it can express: the error names the field, nothing is stored
    path = cluster.root / "refused.yaml"
    path.write_text("---".join(resources(job, layout, "edge-0", **kwargs) for job, (kwargs, _) in refused.items()))
    done = sedna("apply", "-f", str(path), state_dir=cluster.state, check=False)
    assert done.returncode != 0
    for job, (_, field) in refused.items():
        assert f"incrementallearningjob/{job}: " in done.stderr and field in done.stderr
        assert cluster.get("incrementallearningjobs", job) is None
    # the controller flags the rest (the same parser as the LC's) with a condition naming the field
    cluster.apply("---".join(resources(job, layout, "edge-0", **kwargs) for job, (kwargs, _) in flagged.items()),
                  "flagged")

    for job, (_, field) in flagged.items():
        conditions = cluster.wait(job, lambda cs, f=field: any(f in c["message"] for c in cs), field)
        last = conditions[-1]
        assert field in last["message"]
        assert (last["type"], last["reason"]) in (("Failed", "InvalidSpec"), ("Waiting", "MissingReference"))
        assert cluster.pod(f"{job}-infer") is None  # nothing runs for an invalid job


def test_a_failing_train_worker_fails_its_stage_naming_its_log_and_the_job_waits(cluster: Cluster, data: Data) -> None:
    layout = data("failing")
    cluster.apply(resources("failing", layout, "edge-0", threshold=1,
                            train_command='[python, -c, "import sys; sys.exit(1)"]'), "failing")
    feed(layout, 0, 5)  # 4 train samples

    conditions = cluster.wait("failing", lambda cs: seen(cs, 1, "Train", "Waiting", "StageFailed"), "round 1 failed")
    [failed] = [c for c in conditions if c["stage"] == "Train" and c["type"] == "Failed"]
    log = cluster.state / "logs" / "default_failing-train-1_train.log"
    assert failed["reason"] == "PodFailed" and f"log: {log}" in failed["message"]
    assert "exit code 1" in failed["message"]
    status = cluster.job("failing")
    assert (status["stage"], status["stageState"], status["round"]) == ("Train", "Waiting", 1)
    # the next trigger opens round 2 with the failed round's samples given back
    feed(layout, 5, 5)
    cluster.wait("failing", lambda cs: seen(cs, 2, "Train", "Failed"), "round 2 tried")
    rows = (layout.output / "data" / "train" / "2" / "data.csv").read_text().splitlines()
    assert len(rows) == 1 + 8


def test_without_hot_update_the_inference_pod_is_recreated_with_the_new_model(cluster: Cluster, data: Data) -> None:
    layout = data("restart")
    port = free_port()
    cluster.apply(resources("restart", layout, "edge-0", hot=False, port=port), "restart")
    wait_for_port(port, 60)
    before = (cluster.pod("restart-infer") or {})["metadata"]["uid"]
    initial_accuracy, _ = measure(port, _test(layout), "restart")
    feed(layout, 0, 300)

    conditions = cluster.wait("restart", lambda cs: seen(cs, 1, "Deploy", "Completed"), "round 1 deployed", 120)
    [done] = [c for c in conditions if c["stage"] == "Deploy" and c["type"] == "Completed"]
    assert done["reason"] == "InferenceRestarted"
    pod = cluster.pod("restart-infer") or {}
    assert pod["metadata"]["uid"] != before and pod["metadata"]["labels"]["sedna.io/deploy-round"] == "1"
    wait_for_port(port, 60)  # the old pod has exited (the runtime starts the new one after it): this is the new one
    served, _ = measure(port, _test(layout), "restart")
    trained = accuracy(layout.output / "train" / "1" / "model.npz", layout.test)
    assert served == pytest.approx(trained) and served > initial_accuracy + 0.3
    assert cluster.job("restart")["deployedRound"] == 1


def test_an_lc_killed_mid_round_and_restarted_completes_it_counting_samples_once(cluster: Cluster, data: Data) -> None:
    layout = data("resume")
    cluster.apply(resources("resume", layout, "edge-1"), "resume")
    feed(layout, 0, 60)  # 48 train, 12 eval
    cluster.wait("resume", lambda cs: seen(cs, 1, "Train", "Starting"), "round 1 training")

    restarted = _kill_and_restart_lc(cluster, "edge-1", during=lambda: feed(layout, 60, 30))  # fed while it is down
    try:
        conditions = cluster.wait("resume", lambda cs: seen(cs, 1, "Deploy", "Completed"), "round 1 deployed", 120)
        assert [c["reason"] for c in conditions if c["stage"] == "Deploy" and c["type"] == "Completed"] == \
            ["HotUpdated"]
        assert sum(1 for c in conditions if (c["stage"], c["type"]) == ("Train", "Ready")) == 1  # sent once

        lines = layout.index.read_text().splitlines()[1:]
        progress = _progress(cluster.state / "lc" / "edge-1" / "lc.db", "incremental/default/resume")
        assert progress["consumed"] == len(lines) == 90 and progress["in_flight"] == []
        train_1 = (layout.output / "data" / "train" / "1" / "data.csv").read_text().splitlines()[1:]
        pending = [lines[i] for i in progress["pending_train"]]
        evaluation = [lines[i] for version in progress["eval_versions"] for i in version]
        assert (len(train_1), len(pending), len(evaluation)) == (48, 24, 18)
        assert Counter(train_1) + Counter(pending) + Counter(evaluation) == Counter(lines)  # each sample once
    finally:
        _stop(restarted)


def _test(layout: Layout) -> Any:
    from workers.incremental.model import load_samples

    return load_samples(layout.test)


def _kill_and_restart_lc(cluster: Cluster, node: str, during: Callable[[], object]) -> subprocess.Popen[bytes]:
    """SIGKILL the node's LC, run ``during``, start it again as ``sedna local up`` did; return the new one."""
    record_path = cluster.state / "local.json"
    record = json.loads(record_path.read_text())
    pid = int(record["lc"][node]["pid"])
    command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    os.kill(pid, signal.SIGKILL)
    during()
    tokens = dict(line.split("=", 1) for line in (cluster.state / "worker-tokens").read_text().splitlines() if line)
    env = {**os.environ, MARKER: str(cluster.state), "PYTHONUNBUFFERED": "1", "LC_WORKER_TOKEN": tokens[node]}
    with (cluster.state / "logs" / f"lc-{node}.log").open("ab") as log:
        proc = subprocess.Popen([c.decode() for c in command], env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    record["lc"][node]["pid"] = proc.pid  # `sedna local down` stops it too
    record_path.write_text(json.dumps(record))
    wait_for_port(int(record["lc"][node]["server"].rsplit(":", 1)[1]), 30, proc)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _progress(db: Path, key: str) -> dict[str, Any]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    conn.close()
    assert row is not None, f"no LC progress under {key!r}"
    return dict(json.loads(row[0]))
