"""IncrementalLearning SDK: train / evaluate / inference / hot update, against a recording LC client."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from sedna.common.config import WorkerConfig
from sedna.common.errors import ConfigError
from sedna.core.hot_update import HotUpdateWatcher, read_model_config
from sedna.core.incremental_learning import IncrementalLearning
from tests.support.waiting import eventually


class RecordingLC:
    def __init__(self) -> None:
        self.reports: list = []

    def send(self, report) -> bool:
        self.reports.append(report)
        return True


class Offset:
    """predict(x) = x + offset; the model file is an npz holding the offset."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.loads: list[str] = []

    def load(self, model_url: str) -> None:
        with np.load(model_url, allow_pickle=False) as data:
            self.offset = float(data["offset"])
        self.loads.append(model_url)

    def save(self, model_path: str) -> None:
        np.savez(model_path, offset=np.float64(self.offset))

    def train(self, train_data, epochs: int = 1) -> dict:
        self.offset += float(np.mean(train_data)) * epochs
        return {"loss": np.float32(0.25), "per_class": np.array([0.5, 1.0])}

    def evaluate(self, data) -> dict:
        return {"accuracy": 1.0 / (1.0 + abs(self.offset)), "precision": [self.offset, 2 * self.offset]}

    def predict(self, data):
        return np.asarray(data, dtype=np.float64) + self.offset


def write_model(path: Path, offset: float) -> str:
    np.savez(path, offset=np.float64(offset))
    return str(path)


def config(**env: str) -> WorkerConfig:
    return WorkerConfig.from_env({"JOB_NAME": "il-job", "WORKER_NAME": "w-1", "NAMESPACE": "ns", **env})


def test_train_fine_tunes_the_base_model_saves_into_the_output_dir_and_reports(tmp_path: Path) -> None:
    base = write_model(tmp_path / "base.npz", 1.0)
    lc = RecordingLC()
    il = IncrementalLearning(Offset, config=config(BASE_MODEL_URL=base, MODEL_URL=str(tmp_path / "out" / "1")),
                             lc_client=lc)
    est = il.train(np.array([2.0, 4.0]), epochs=2, unknown_kwarg="dropped")
    saved = tmp_path / "out" / "1" / "model.npz"
    assert est.offset == 7.0  # 1 (base) + mean 3 * 2 epochs
    with np.load(saved, allow_pickle=False) as data:
        assert float(data["offset"]) == 7.0
    [report] = lc.reports
    assert (report.owner_kind, report.owner_name, report.kind, report.status) == (
        "incrementallearningjob", "il-job", "train", "completed")
    assert report.results == [{"format": "npz", "url": str(saved),
                               "metrics": {"loss": 0.25, "per_class": [0.5, 1.0]}}]


def test_train_failure_is_reported_then_raised(tmp_path: Path) -> None:
    lc = RecordingLC()
    il = IncrementalLearning(Offset, config=config(BASE_MODEL_URL=str(tmp_path / "missing.npz"),
                                                   MODEL_URL=str(tmp_path / "out")), lc_client=lc)
    with pytest.raises(FileNotFoundError):
        il.train(np.array([1.0]))
    [report] = lc.reports
    assert report.status == "failed" and "missing.npz" in report.owner_info["error"]


def test_train_without_model_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="MODEL_URL is empty"):
        IncrementalLearning(Offset, config=config()).train(np.array([1.0]))


def test_evaluate_reports_every_model_in_order(tmp_path: Path) -> None:
    new, old = write_model(tmp_path / "new.npz", 1.0), write_model(tmp_path / "old.npz", 3.0)
    lc = RecordingLC()
    il = IncrementalLearning(Offset, config=config(MODEL_URLS=f"{new};{old}"), lc_client=lc)
    results = il.evaluate(np.zeros(3))
    assert [r["url"] for r in results] == [new, old]
    assert results[0]["metrics"] == {"accuracy": 0.5, "precision": [1.0, 2.0]}
    assert results[1]["metrics"] == {"accuracy": 0.25, "precision": [3.0, 6.0]}
    [report] = lc.reports
    assert (report.kind, report.status, report.results) == ("eval", "completed", results)


def test_evaluate_with_no_models_reports_failure() -> None:
    lc = RecordingLC()
    with pytest.raises(ConfigError, match="MODEL_URLS is empty"):
        IncrementalLearning(Offset, config=config(), lc_client=lc).evaluate(np.zeros(1))
    assert lc.reports[0].status == "failed"


def test_inference_returns_result_post_processed_and_hardness(tmp_path: Path) -> None:
    model = write_model(tmp_path / "m.npz", 0.5)
    il = IncrementalLearning(Offset, hard_example_mining=lambda value: value > 1.0, config=config(MODEL_URL=model))
    result, processed, hard = il.inference(np.array([0.25]), post_process=lambda r: float(r[0]) * 2)
    assert result.tolist() == [0.75] and processed == 1.5 and hard is True
    assert il.inference(np.array([0.0]))[2] is False  # 0.5 is not > 1
    assert (il.inference_count, il.hard_example_count) == (2, 1)


def test_hem_comes_from_the_env_when_not_given(tmp_path: Path) -> None:
    il = IncrementalLearning(Offset, config=config(HEM_NAME="Threshold", HEM_PARAMETERS='[{"key":"threshold",'
                                                                                     '"value":"0.9"}]'))
    assert type(il.hem).__name__ == "ThresholdFilter"


def deploy(config_path: Path, model: str, stamp: str, round_: int) -> None:
    tmp = config_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"model_config": {"model_path": model, "model_update_time": stamp, "round": round_}}))
    os.replace(tmp, config_path)


def deploys(lc: RecordingLC) -> list:
    return [r for r in lc.reports if r.kind == "deploy"]


def test_hot_update_reloads_on_every_change_not_just_the_first(tmp_path: Path) -> None:
    initial = write_model(tmp_path / "initial.npz", 0.0)
    hot = tmp_path / "model_config.json"
    lc = RecordingLC()
    il = IncrementalLearning(Offset, config=config(MODEL_URL=initial, MODEL_HOT_UPDATE="true",
                                                   MODEL_HOT_UPDATE_CONFIG=str(hot)), lc_client=lc, poll_period=0.05)
    try:
        assert il.inference(np.array([1.0]))[0].tolist() == [1.0]
        for round_ in (1, 2, 3):
            model = write_model(tmp_path / f"r{round_}.npz", float(round_ * 10))
            deploy(hot, model, f"t{round_}", round_)
            eventually(lambda r=round_: il.inference(np.array([1.0]))[0].tolist() == [1.0 + r * 10])
        eventually(lambda: len(deploys(lc)) == 3)
        assert [(r.kind, r.status, r.owner_info["round"]) for r in deploys(lc)] == [
            ("deploy", "completed", 1), ("deploy", "completed", 2), ("deploy", "completed", 3)]
        assert deploys(lc)[-1].results[0]["url"] == str(tmp_path / "r3.npz")
    finally:
        il.close()


def test_a_broken_model_is_reported_failed_and_the_old_one_keeps_serving(tmp_path: Path) -> None:
    hot = tmp_path / "model_config.json"
    deploy(hot, write_model(tmp_path / "good.npz", 5.0), "t1", 1)
    lc = RecordingLC()
    il = IncrementalLearning(Offset, config=config(MODEL_HOT_UPDATE="true", MODEL_HOT_UPDATE_CONFIG=str(hot)),
                             lc_client=lc, poll_period=0.05)
    try:
        assert il.inference(np.array([0.0]))[0].tolist() == [5.0]  # a restarted worker starts from the config
        (tmp_path / "bad.npz").write_bytes(b"not a model")
        deploy(hot, str(tmp_path / "bad.npz"), "t2", 2)
        eventually(lambda: len(deploys(lc)) == 1)
        assert (deploys(lc)[0].status, deploys(lc)[0].owner_info["round"]) == ("failed", 2)
        assert il.inference(np.array([0.0]))[0].tolist() == [5.0]
    finally:
        il.close()


def test_hot_update_needs_the_config_path() -> None:
    with pytest.raises(ConfigError, match="MODEL_HOT_UPDATE_CONFIG"):
        IncrementalLearning(Offset, config=config(MODEL_HOT_UPDATE="true"))


def test_watcher_resolves_relative_paths_and_tolerates_garbage(tmp_path: Path) -> None:
    hot = tmp_path / "model_config.json"
    hot.write_text("{not json")
    seen: list = []
    watcher = HotUpdateWatcher(hot, seen.append, period=1)
    assert watcher.check() is False
    deploy(hot, "r1/model.npz", "t1", 1)
    assert watcher.check() is True and watcher.check() is False
    assert seen[0].model_path == str(tmp_path / "r1" / "model.npz")
    hot.write_text(json.dumps({"model_config": {"model_update_time": "x"}}))
    with pytest.raises(ValueError, match=r"model_config\.model_path must be a non-empty string"):
        read_model_config(hot)


def test_a_deploy_is_picked_up_at_once_not_at_the_next_poll_period(tmp_path: Path) -> None:
    hot = tmp_path / "model_config.json"
    il = IncrementalLearning(Offset, config=config(MODEL_URL=write_model(tmp_path / "m0.npz", 0.0),
                                                   MODEL_HOT_UPDATE="true", MODEL_HOT_UPDATE_CONFIG=str(hot)),
                             poll_period=60)
    try:
        il.load()
        deploy(hot, write_model(tmp_path / "m1.npz", 7.0), "t1", 1)
        eventually(lambda: il.inference(np.array([0.0]))[0].tolist() == [7.0], timeout=3)  # stat every 0.1 s
    finally:
        il.close()


def test_inference_counters_and_the_served_round_are_reported_when_they_change(tmp_path: Path) -> None:
    hot = tmp_path / "model_config.json"
    deploy(hot, write_model(tmp_path / "m.npz", 1.0), "t1", 4)
    lc = RecordingLC()
    il = IncrementalLearning(Offset, hard_example_mining=lambda value: value[0] > 1.5,
                             config=config(MODEL_HOT_UPDATE="true", MODEL_HOT_UPDATE_CONFIG=str(hot)),
                             lc_client=lc, report_period=0.05)
    try:
        il.load()
        eventually(lambda: any(r.kind == "inference" for r in lc.reports))  # at once: the worker serves round 4
        il.inference(np.array([0.0]))
        il.inference(np.array([1.0]))
        eventually(lambda: counters(lc)[-1][:2] == (2, 1))
        time.sleep(0.2)
        assert counters(lc) == [(0, 0, 4), (2, 1, 4)]  # nothing new: nothing sent
    finally:
        il.close()
    assert counters(lc) == [(0, 0, 4), (2, 1, 4)]


def counters(lc: RecordingLC) -> list[tuple[int, int, int]]:
    return [(r.owner_info["inferenceNumber"], r.owner_info["hardExampleNumber"], r.owner_info["round"])
            for r in lc.reports if (r.kind, r.status) == ("inference", "running")]
