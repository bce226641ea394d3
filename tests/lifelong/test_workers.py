"""The lifelong workers as real processes: KB server, train -> eval -> infer, a new version picked up."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from examples.lifelong_learning.digits_cameras.stream import build_stream
from sedna.service.inference.rest_client import RestInferenceClient
from sedna.service.kb.client import KBClient
from tests.incremental.fake_lc import FakeLC
from tests.support.procs import free_port, running
from workers.lifelong import eval as eval_worker
from workers.lifelong import train as train_worker
from workers.lifelong.data import save_table

TOKEN = "kb-t"
DEFINITION = '{"method": "TaskDefinitionByDataAttr", "param": {"attribute": ["site"]}}'


@pytest.fixture(scope="module")
def tasks() -> list:
    return build_stream()


@pytest.mark.processes
def test_train_eval_infer_and_a_published_version_reaches_the_serving_worker(tmp_path: Path, tasks: list) -> None:
    kb_port, rest_port = free_port(), free_port()
    kb_url = f"http://127.0.0.1:{kb_port}"
    data = {name: save_table(tmp_path / f"{name}.csv", samples, ["site"]) for name, samples in (
        ("train0", tasks[0].train), ("test0", tasks[0].test), ("train1", tasks[1].train),
        ("test01", type(tasks[0].test).concat([tasks[0].test, tasks[1].test])))}
    with running("workers.lifelong.kb", {"KB_BIND_PORT": str(kb_port), "KB_PATH": str(tmp_path / "kb"),
                                         "KB_TOKEN": TOKEN}, tmp_path / "kb.log", port=kb_port), \
            FakeLC() as lc, KBClient(kb_url, TOKEN) as kb:
        common = {"KB_SERVER": kb_url, "KB_TOKEN": TOKEN, "JOB_NAME": "cams", "WORKER_NAME": "w", "LC_SERVER": lc.url,
                  "attribute": "site", "task_definition": DEFINITION, "epochs": "20"}
        assert train_worker.main({**common, "TRAIN_DATASET_URL": str(data["train0"]),
                                  "OUTPUT_URL": str(tmp_path / "out" / "train-0")}) == 0
        assert eval_worker.main({**common, "MODEL_URLS": f"{kb_url}/knowledgebase/index/1",
                                 "TEST_DATASET_URL": str(data["test0"]),
                                 "OUTPUT_URL": str(tmp_path / "out" / "eval-0")}) == 0
        assert [(v["version"], v["published"]) for v in kb.versions()] == [(1, True)]
        infer_env = {**common, "MODEL_URLS": f"{kb_url}/knowledgebase/index", "EDGE_KB_DIR": str(tmp_path / "edge"),
                     "MODEL_HOT_UPDATE": "true", "MODEL_POLL_PERIOD_SECONDS": "1", "EDGE_BIND_PORT": str(rest_port),
                     "EDGE_GRPC_PORT": str(free_port()), "LC_PERIOD": "0.5"}
        with running("workers.lifelong.infer", infer_env, tmp_path / "infer.log", port=rest_port), \
                RestInferenceClient(f"http://127.0.0.1:{rest_port}") as edge:
            before = edge.infer("cams", {"features": tasks[1].test.x})
            assert before.parameters["kb_version"] == 1 and before.outputs["unseen"].mean() > 0.95
            assert train_worker.main({**common, "TRAIN_DATASET_URL": str(data["train1"]),
                                      "HAS_COMPLETED_INITIAL_TRAINING": "true",
                                      "CLOUD_KB_INDEX": f"{kb_url}/knowledgebase/index/1",
                                      "OUTPUT_URL": str(tmp_path / "out" / "train-1")}) == 0
            assert eval_worker.main({**common, "MODEL_URLS": f"{kb_url}/knowledgebase/index/2",
                                     "TEST_DATASET_URL": str(data["test01"]),
                                     "OUTPUT_URL": str(tmp_path / "out" / "eval-1")}) == 0
            deadline = time.monotonic() + 15
            while (after := edge.infer("cams", {"features": tasks[1].test.x})).parameters["kb_version"] != 2:
                assert time.monotonic() < deadline, "the inference worker did not pick up version 2"
                time.sleep(0.1)
            accuracy = float((after.outputs["probabilities"].argmax(axis=1) == tasks[1].test.y).mean())
            assert after.outputs["unseen"].mean() < 0.1 and accuracy > 0.8
            assert set(after.parameters["tasks"].split(",")) == {"rotated"}
            deadline = time.monotonic() + 10
            while not [r for r in lc.reports if r["kind"] == "inference"
                       and r["ownerInfo"].get("kbVersion") == 2]:
                assert time.monotonic() < deadline, f"no inference report for version 2: {lc.reports}"
                time.sleep(0.1)
        kinds = [(r["kind"], r["status"]) for r in lc.reports if r["kind"] != "inference"]
        inference = [r for r in lc.reports if r["kind"] == "inference"][-1]["ownerInfo"]
    assert kinds[:4] == [("train", "completed"), ("eval", "completed"), ("train", "completed"), ("eval", "completed")]
    assert ("deploy", "completed") in kinds
    assert inference["inferenceNumber"] >= 2 * len(tasks[1].test) and inference["unseenSampleNumber"] > 0.9 * len(
        tasks[1].test)
    assert np.isfinite(accuracy)


def test_a_bad_algorithm_name_in_the_env_exits_2_and_tells_the_lc_which_field(tmp_path: Path, tasks: list) -> None:
    data = save_table(tmp_path / "t.csv", tasks[0].train, ["site"])
    with FakeLC() as lc:
        code = train_worker.main({"TRAIN_DATASET_URL": str(data), "OUTPUT_URL": str(tmp_path), "LC_SERVER": lc.url,
                                  "WORKER_NAME": "w", "JOB_NAME": "cams", "task_definition": "TaskDefinitionByDataAtr"})
        [report] = lc.wait(1)
    assert code == 2
    assert (report["kind"], report["status"]) == ("train", "failed")
    assert "task_definition.method" in report["ownerInfo"]["error"]
    assert "Did you mean 'TaskDefinitionByDataAttr'?" in report["ownerInfo"]["error"]


def test_a_training_failure_is_reported_and_exits_1(tmp_path: Path, tasks: list) -> None:
    data = save_table(tmp_path / "t.csv", tasks[0].train, ["site"])
    with FakeLC() as lc:
        code = train_worker.main({"TRAIN_DATASET_URL": str(data), "OUTPUT_URL": str(tmp_path / "o"),
                                  "LC_SERVER": lc.url, "WORKER_NAME": "w", "JOB_NAME": "cams", "attribute": "site",
                                  "HAS_COMPLETED_INITIAL_TRAINING": "true",
                                  "CLOUD_KB_INDEX": str(tmp_path / "missing" / "index.json")})
        [report] = lc.wait(1)
    assert code == 1 and report["status"] == "failed" and "missing" in report["ownerInfo"]["error"]


def test_the_version_an_answer_names_is_the_one_that_computed_it() -> None:
    """A hot update landing right after a request was computed must not relabel that answer."""
    import threading
    from types import SimpleNamespace

    from workers.lifelong.infer import LifelongServedModel

    edge = SimpleNamespace(lock=threading.RLock(), knowledge=SimpleNamespace(version=1))
    learner = SimpleNamespace(knowledge=edge.knowledge, edge=lambda: edge)

    def hot_update() -> None:
        with edge.lock:
            edge.knowledge = learner.knowledge = SimpleNamespace(version=2)

    def inference(rows):  # as LifelongLearning.inference: computes under the edge lock
        with edge.lock:
            version = edge.knowledge.version
        swap = threading.Thread(target=hot_update)
        swap.start()
        swap.join(0.5)  # the update lands now unless the caller still holds the lock
        return np.full((len(rows), 2), version, np.float32), [False] * len(rows), ["t"] * len(rows)

    learner.inference = inference
    answer = LifelongServedModel(learner, "cams").predict({"features": np.zeros((1, 3), np.float32)})

    assert answer.parameters["kb_version"] == int(answer.outputs["probabilities"][0, 0])
