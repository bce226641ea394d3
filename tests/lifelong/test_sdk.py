"""LifelongLearning in one process: two task arrivals, evaluation, reports, bad algorithm names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from examples.lifelong_learning.digits_cameras.simulate import simulate
from examples.lifelong_learning.digits_cameras.stream import build_stream
from sedna.common.config import WorkerConfig
from sedna.common.errors import ConfigError, RegistryError
from sedna.core.lifelong_learning import LifelongLearning
from tests.incremental.fake_lc import FakeLC
from workers.lifelong.model import TaskSoftmax

SITE = {"method": "TaskDefinitionByDataAttr", "param": {"attribute": ["site"]}}


@pytest.fixture(scope="module")
def tasks() -> list:
    return build_stream()


def learner(tmp: Path, lc: FakeLC | None = None, **env: str) -> LifelongLearning:
    base = {"OUTPUT_URL": str(tmp / "cloud"), "EDGE_KB_DIR": str(tmp / "edge"),
            "MODEL_URLS": str(tmp / "cloud" / "index.json"), "JOB_NAME": "cams", "WORKER_NAME": "w-1", **env}
    if lc is not None:
        base["LC_SERVER"] = lc.url
    return LifelongLearning(TaskSoftmax, task_definition=SITE, config=WorkerConfig.from_env(base))


def test_two_task_arrivals_are_learned_and_served(tmp_path: Path, tasks: list) -> None:
    upright, rotated, inverted = tasks[0], tasks[1], tasks[2]
    with FakeLC() as lc:
        learner(tmp_path, lc).train(upright.train, epochs=20)
        [train] = lc.wait(1)
        edge = learner(tmp_path)
        _, unseen_rotated, answered = edge.inference(rotated.test)
        assert unseen_rotated.mean() > 0.95 and set(answered) == {"upright"}
        learner(tmp_path, lc, HAS_COMPLETED_INITIAL_TRAINING="true").train(rotated.train, epochs=20)
        learner(tmp_path, lc, HAS_COMPLETED_INITIAL_TRAINING="true").train(inverted.train, epochs=20)
        reports = lc.wait(3)
    assert edge.edge().refresh()
    for data, entry in ((upright, "upright"), (rotated, "rotated"), (inverted, "inverted")):
        result, unseen, answered = edge.inference(data.test)
        assert float((result.argmax(axis=1) == data.test.y).mean()) > 0.8
        assert unseen.mean() < 0.1 and answered.count(entry) > 0.9 * len(answered)
    one, flag, who = edge.inference(upright.test.x[:1])
    assert one.shape == (1, 10) and flag is False and who == ["upright"]
    assert (train["ownerKind"], train["ownerName"], train["kind"], train["status"]) == (
        "lifelonglearningjob", "cams", "train", "completed")
    record = reports[-1]["results"][0]
    assert record["version"] == 3 and record["format"] == "json" and record["number_of_model"] == 3
    assert set(record["current_metric"]) == {"upright", "rotated", "inverted"}
    assert record["number_of_labeled_unseen_sample"] == len(inverted.train)
    assert record["url"] == str(tmp_path / "cloud" / "index.json")


def test_unseen_samples_are_kept_for_labelling_as_npz(tmp_path: Path, tasks: list) -> None:
    learner(tmp_path).train(tasks[0].train, epochs=10)
    edge = learner(tmp_path, unseen_save_url=str(tmp_path / "unseen"))
    _, unseen, _ = edge.inference(tasks[2].test.subset(np.arange(5)))
    files = list((tmp_path / "unseen").glob("*.npz"))
    assert unseen.all() and len(files) == 1
    with np.load(files[0], allow_pickle=False) as saved:
        assert saved["x"].shape == (5, 64)


def test_evaluate_drops_groups_below_the_threshold_and_inference_skips_them(tmp_path: Path, tasks: list) -> None:
    learner(tmp_path).train(tasks[0].train, epochs=20)
    learner(tmp_path, HAS_COMPLETED_INITIAL_TRAINING="true").train(tasks[1].train.subset(np.arange(40)), epochs=1)
    from sedna.algorithms.lifelong.samples import TaskSamples

    data = TaskSamples.concat([tasks[0].test, tasks[1].test])
    with FakeLC() as lc:
        result = learner(tmp_path, lc, operator="<", model_threshold="0.85").evaluate(data)
        [report] = lc.wait(1)
    assert result["tasks"]["upright"]["accuracy"] > 0.85 > result["tasks"]["rotated"]["accuracy"]
    assert result["dropped"] == ["rotated"]
    assert report["kind"] == "eval" and report["results"][0]["deployed"] == ["upright"]
    _, unseen, answered = learner(tmp_path).inference(tasks[1].test)
    assert set(answered) == {"upright"} and unseen.mean() > 0.9


def test_an_unknown_algorithm_name_names_the_argument_and_suggests_one(tmp_path: Path) -> None:
    cfg = WorkerConfig.from_env({"OUTPUT_URL": str(tmp_path)})
    with pytest.raises(RegistryError, match=r"task_definition\.method: .*Did you mean 'TaskDefinitionByDataAttr'"):
        LifelongLearning(TaskSoftmax, task_definition={"method": "TaskDefinitionByDataAtr"}, config=cfg)
    with pytest.raises(RegistryError, match=r"unseen_sample_recognition\.method: no unseen_task_detect plug-in"):
        LifelongLearning(TaskSoftmax, unseen_sample_recognition="Random", config=cfg)


def test_param_may_be_json_and_bad_json_or_values_name_the_field(tmp_path: Path) -> None:
    cfg = WorkerConfig.from_env({"OUTPUT_URL": str(tmp_path)})
    ll = LifelongLearning(TaskSoftmax, task_definition={"method": "TaskDefinitionByCluster",
                                                        "param": '{"n_class": 3}'}, config=cfg)
    assert ll.definition.n_class == 3
    with pytest.raises(ConfigError, match=r"task_definition\.param: not valid JSON"):
        LifelongLearning(TaskSoftmax, task_definition={"method": "TaskDefinitionByCluster", "param": "{n"},
                         config=cfg)
    with pytest.raises(ConfigError, match=r"unseen_sample_recognition\.param: param 'score' must be one of"):
        LifelongLearning(TaskSoftmax, unseen_sample_recognition={"method": "SampleRecognitionByConfidence",
                                                                 "param": {"score": "vibes"}}, config=cfg)


def test_unseen_task_detection_on_the_example_stream_meets_its_stated_precision_and_recall(tmp_path: Path) -> None:
    # Stated in docs/lifelong.md: on the digits-cameras stream (four new sites, 700 samples each)
    # the distance recognizer flags unseen samples with precision >= 0.9 and recall >= 0.8.
    figures = simulate(tmp_path).figures()
    assert figures["unseen_precision"] >= 0.9
    assert figures["unseen_recall"] >= 0.8


def test_a_restarted_edge_serves_its_local_copy_when_the_kb_server_is_unreachable(tmp_path: Path, tasks: list) -> None:
    from sedna.service.kb.sources import LocalKB, open_source
    from tests.support.procs import free_port

    learner(tmp_path).train(tasks[0].train, epochs=10)
    LocalKB(tmp_path / "edge").sync(open_source(str(tmp_path / "cloud" / "index.json")))
    dead = f"http://127.0.0.1:{free_port()}/knowledgebase/index"
    edge = learner(tmp_path, MODEL_URLS=dead)
    result, _, answered = edge.inference(tasks[0].test)
    assert edge.edge().last_error.startswith("KBUnavailableError")
    assert float((result.argmax(axis=1) == tasks[0].test.y).mean()) > 0.8 and set(answered) == {"upright"}


def test_a_hot_update_config_naming_another_index_is_followed(tmp_path: Path, tasks: list) -> None:
    import json
    import time

    learner(tmp_path / "a").train(tasks[0].train, epochs=10)
    learner(tmp_path / "b").train(tasks[1].train, epochs=10)
    config = tmp_path / "model_config.json"
    edge = learner(tmp_path / "a", MODEL_HOT_UPDATE="true", MODEL_POLL_PERIOD_SECONDS="1",
                   MODEL_HOT_UPDATE_CONFIG=str(config))
    _, unseen, _ = edge.inference(tasks[1].test)
    assert unseen.mean() > 0.9
    config.write_text(json.dumps({"model_config": {"model_path": str(tmp_path / "b" / "cloud" / "index.json"),
                                                   "model_update_time": "t1"}}))
    deadline = time.monotonic() + 10
    while edge.inference(tasks[1].test)[1].mean() > 0.1:
        assert time.monotonic() < deadline, "the edge did not follow the hot-update config"
        time.sleep(0.1)
    assert set(edge.inference(tasks[1].test)[2]) == {"rotated"}
    edge.close()

