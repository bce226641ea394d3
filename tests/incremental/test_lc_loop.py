"""The LC job loop on a real LC store: split, triggers, per-round files, deploy decisions, restarts."""

from __future__ import annotations

import json
import os
from datetime import time
from pathlib import Path

import numpy as np

from lc.incremental.loop import IncrementalLoop
from lc.incremental.samples import read_index, split
from lc.incremental.watching import FileWatch
from lc.store import Store
from sedna.controlplane import il_protocol as ilp
from sedna.controlplane.edgehub import ObjectKey


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def job(tmp: Path, state: ilp.JobState | None = None, deploy_metric: str = "precision_delta", **annotations: str):
    notes = dict(annotations)
    if state is not None:
        notes[ilp.STATE_ANNOTATION] = state.to_json()
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "IncrementalLearningJob",
            "metadata": {"name": "il", "namespace": "default", "uid": "u1", "annotations": notes},
            "spec": {"dataset": {"name": "ds", "trainProb": 0.8}, "initialModel": {"name": "initial"},
                     "outputDir": str(tmp / "out"),
                     "trainSpec": {"trigger": {"checkPeriodSeconds": 30, "timer": {"start": "22:00", "end": "06:00"},
                                               "condition": {"operator": ">=", "threshold": 8,
                                                             "metric": "num_of_samples"}}},
                     "deploySpec": {"model": {"name": "deploy", "hotUpdateEnabled": True},
                                    "trigger": {"condition": {"operator": "gt", "threshold": 0.0,
                                                              "metric": deploy_metric}}}}}


def setup(tmp: Path, lines: int) -> tuple[Store, Path]:
    store = Store(tmp / "lc.db")
    index = tmp / "index.csv"
    index.write_text("a,b,label\n" + "".join(f"{i},{i},{i % 10}\n" for i in range(lines)))
    store.put_object(ObjectKey("dataset", "default", "ds"), "1",
                     {"metadata": {"name": "ds", "namespace": "default"}, "spec": {"url": str(index), "format": "csv"}})
    for name in ("initial", "deploy"):
        path = tmp / f"{name}.npz"
        np.savez(path, W=np.zeros(1))
        store.put_object(ObjectKey("model", "default", name), "1",
                         {"metadata": {"name": name, "namespace": "default"}, "spec": {"url": str(path)}})
    return store, index


def reports(store: Store) -> list[dict]:
    return [payload for _, _, payload in store.outbox_after(0)]


def test_split_is_exact_disjoint_and_repeatable() -> None:
    train, evaluation = split(100, 50, 0.8)
    assert len(train) == 40 and len(evaluation) == 10 and not set(train) & set(evaluation)
    assert set(train) | set(evaluation) == set(range(100, 150)) and split(100, 50, 0.8) == (train, evaluation)


def test_train_trigger_honours_window_condition_and_check_period(tmp_path: Path) -> None:
    store, index = setup(tmp_path, 9)  # 7 train (int(0.8 * 9)), 2 eval
    moment, clock = [time(12, 0)], Clock()
    loop = IncrementalLoop(store, lambda: None, clock=clock, local_time=lambda: moment[0])
    store.put_object(ObjectKey("incrementallearningjob", "default", "il"), "1", job(tmp_path))
    assert loop.check() == 0                      # outside 22:00-06:00
    moment[0] = time(23, 0)
    assert loop.check() == 0                      # inside, but the check period has not passed
    clock.now += 31
    assert loop.check() == 0                      # 7 samples are not >= 8
    with index.open("a") as handle:
        handle.write("".join(f"{i},{i},{i % 10}\n" for i in range(9, 14)))  # 5 more: 4 train, 1 eval
    clock.now += 31
    assert loop.check() == 1
    [report] = reports(store)
    assert (report["phase"], report["status"], report["round"]) == ("train", "ready", 1)
    assert "num_of_samples = 11 satisfies num_of_samples >= 8" in report["message"]
    assert report["input"]["model"] == str(tmp_path / "initial.npz")
    assert report["input"]["outputDir"] == str(tmp_path / "out" / "train" / "1")
    rows = Path(report["input"]["dataURL"]).read_text().splitlines()
    assert rows[0] == "a,b,label" and len(rows) == 12
    clock.now += 31
    assert loop.check() == 0                      # already sent; the GM has not moved yet


def test_eval_gets_every_eval_sample_once_and_both_models(tmp_path: Path) -> None:
    store, _ = setup(tmp_path, 20)
    state = ilp.JobState(ilp.EVAL, ilp.WAITING, 1, str(tmp_path / "out/train/1/model.npz"), 1)
    store.put_object(ObjectKey("incrementallearningjob", "default", "il"), "2", job(tmp_path, state))
    loop = IncrementalLoop(store, lambda: None)
    assert loop.check() == 1 and loop.check() == 0
    [report] = reports(store)
    assert report["input"]["models"] == [state.trained_model, str(tmp_path / "deploy.npz")]
    rows = Path(report["input"]["dataURL"]).read_text().splitlines()[1:]
    assert len(rows) == 4 and len(set(rows)) == 4


def evals(new: dict, old: dict) -> list[dict]:
    return [{"url": "new", "metrics": new}, {"url": "old", "metrics": old}]


def test_deploy_compares_new_with_deployed_and_hot_updates(tmp_path: Path) -> None:
    store, _ = setup(tmp_path, 0)
    trained = tmp_path / "trained.npz"
    np.savez(trained, W=np.ones(1))
    state = ilp.JobState(ilp.DEPLOY, ilp.WAITING, 3, str(trained), 3,
                         evals({"precision": [0.5, 0.9]}, {"precision": [0.4, 0.9]}))
    store.put_object(ObjectKey("incrementallearningjob", "default", "il"), "2", job(tmp_path, state))
    assert IncrementalLoop(store, lambda: None).check() == 1
    [report] = reports(store)
    assert (report["phase"], report["status"], report["round"]) == ("deploy", "ready", 3)
    assert "reduced by mean" in report["message"]
    config = json.loads((tmp_path / "out/deploy/model_config.json").read_text())["model_config"]
    assert config["round"] == 3 and Path(config["model_path"]).read_bytes() == trained.read_bytes()
    assert (tmp_path / "deploy.npz").read_bytes() == trained.read_bytes()


def test_deploy_not_needed_and_missing_metric(tmp_path: Path) -> None:
    store, _ = setup(tmp_path, 0)
    worse = ilp.JobState(ilp.DEPLOY, ilp.WAITING, 2, "t", 2, evals({"precision": [0.1]}, {"precision": [0.2]}))
    store.put_object(ObjectKey("incrementallearningjob", "default", "il"), "2", job(tmp_path, worse))
    IncrementalLoop(store, lambda: None).check()
    missing = ilp.JobState(ilp.DEPLOY, ilp.WAITING, 3, "t", 3, evals({"accuracy": 0.9}, {"accuracy": 0.8}))
    store.put_object(ObjectKey("incrementallearningjob", "default", "il"), "3", job(tmp_path, missing))
    IncrementalLoop(store, lambda: None).check()
    first, second = reports(store)
    assert first["status"] == "completed" and first["message"].startswith("not deployed: precision_delta")
    assert second["status"] == "failed" and "'precision_delta' is missing" in second["message"]
    assert "have: accuracy, accuracy_delta" in second["message"]


def test_manual_trigger_and_counters_survive_a_restart(tmp_path: Path) -> None:
    store, _ = setup(tmp_path, 10)
    store.put_object(ObjectKey("incrementallearningjob", "default", "il"), "1", job(tmp_path))
    loop = IncrementalLoop(store, lambda: None, local_time=lambda: time(12, 0))
    assert loop.check() == 0
    store.close()
    store = Store(tmp_path / "lc.db")  # the LC restarts: nothing consumed twice, nothing lost
    store.put_object(ObjectKey("incrementallearningjob", "default", "il"), "2",
                     job(tmp_path, **{ilp.TRIGGER_TRAIN: "now-1"}))
    restarted = IncrementalLoop(store, lambda: None, local_time=lambda: time(12, 0))
    assert restarted.check() == 1 and restarted.check() == 0
    [report] = reports(store)
    assert report["message"] == "manual trigger sedna.io/trigger-train='now-1'"
    assert len(Path(report["input"]["dataURL"]).read_text().splitlines()) == 1 + 8
    # the round fails: its samples come back for the next one
    failed = ilp.JobState(ilp.TRAIN, ilp.WAITING, 1)
    store.put_object(ObjectKey("incrementallearningjob", "default", "il"), "3",
                     job(tmp_path, failed, **{ilp.TRIGGER_TRAIN: "now-2"}))
    assert IncrementalLoop(store, lambda: None, local_time=lambda: time(12, 0)).check() == 1
    second = reports(store)[1]
    assert second["round"] == 2 and len(Path(second["input"]["dataURL"]).read_text().splitlines()) == 1 + 8


def test_the_first_samples_of_a_round_are_judged_at_once_then_every_check_period(tmp_path: Path) -> None:
    store, index = setup(tmp_path, 0)
    clock = Clock()
    loop = IncrementalLoop(store, lambda: None, clock=clock, local_time=lambda: time(23, 0))
    store.put_object(ObjectKey("incrementallearningjob", "default", "il"), "1", job(tmp_path))
    assert loop.check() == 0                      # nothing waits: no check, no check period started
    with index.open("a") as handle:
        handle.write("".join(f"{i},{i},{i % 10}\n" for i in range(5)))  # 4 train samples: not >= 8
    assert loop.check() == 0                      # judged at once (and not enough)
    with index.open("a") as handle:
        handle.write("".join(f"{i},{i},{i % 10}\n" for i in range(5, 15)))  # now 12 train samples
    assert loop.check() == 0                      # the 30 s check period runs since the last judgement
    clock.now += 31
    assert loop.check() == 1


def test_an_unfinished_last_index_line_is_left_for_the_next_read(tmp_path: Path) -> None:
    index = tmp_path / "index.txt"
    index.write_text("a.png 1\nb.png 2\nc.pn")
    assert read_index(str(index), "txt").lines == ["a.png 1", "b.png 2"]
    os.utime(index, (1_000_000, 1_000_000))       # unchanged for long: a file without its final newline
    assert read_index(str(index), "txt").lines == ["a.png 1", "b.png 2", "c.pn"]


def test_file_watch_sees_appends_replacements_and_new_files_once(tmp_path: Path) -> None:
    path = tmp_path / "index.csv"
    path.write_text("h\n")
    watch = FileWatch()
    watch.watch([str(path), ""])
    assert watch.paths == [str(path)]
    assert watch.changed() is True and watch.changed() is False  # new to the watch: looked at once
    with path.open("a") as handle:
        handle.write("1\n")
    assert watch.changed() is True and watch.changed() is False
    path.unlink()
    assert watch.changed() is True and watch.changed() is False


def test_after_a_failure_the_train_trigger_waits_for_the_gms_back_off(tmp_path: Path) -> None:
    store, index = setup(tmp_path, 20)
    wall = Clock()
    backing_off = ilp.JobState(ilp.TRAIN, ilp.WAITING, 1, retry_at=wall.now + 20)
    store.put_object(ObjectKey("incrementallearningjob", "default", "il"), "1", job(tmp_path, backing_off))
    loop = IncrementalLoop(store, lambda: None, local_time=lambda: time(23, 0), wall=wall)
    assert loop.check() == 0                      # 16 train samples wait, but the back-off has not ended
    with index.open("a") as handle:             # samples labelled meanwhile join the round
        handle.write("".join(f"{i},{i},{i % 10}\n" for i in range(20, 30)))
    wall.now += 19.9
    assert loop.check() == 0
    wall.now += 0.2
    assert loop.check() == 1
    [report] = reports(store)
    assert (report["phase"], report["round"]) == ("train", 2)
    assert len(Path(report["input"]["dataURL"]).read_text().splitlines()) == 1 + 16 + 8


def test_records_that_fail_validation_are_quarantined_with_their_lines_never_trained(tmp_path: Path) -> None:
    store, index = setup(tmp_path, 10)           # lines 2..11 are samples 0..9
    with index.open("a") as handle:
        handle.write("1,2\n" + "".join(f"{i},{i},{i % 10}\n" for i in range(10, 14)) + "1,2,3,4\n")
    store.put_object(ObjectKey("incrementallearningjob", "default", "il"), "1",
                     job(tmp_path, **{ilp.TRIGGER_TRAIN: "now"}))
    loop = IncrementalLoop(store, lambda: None, local_time=lambda: time(12, 0))

    assert loop.check() == 2                      # the train decision and the quarantine report
    decision, quarantine = reports(store)
    rows = Path(decision["input"]["dataURL"]).read_text().splitlines()[1:]
    assert "1,2" not in rows and "1,2,3,4" not in rows
    assert quarantine[ilp.QUARANTINE] == {"index": str(index), "count": 2, "samples": [
        {"line": 12, "reason": "2 fields, the header has 3"}, {"line": 17, "reason": "4 fields, the header has 3"}]}
    with index.open("a") as handle:
        handle.write("".join(f"{i},{i},{i % 10}\n" for i in range(14, 20)))
    assert loop.check() == 0                      # nothing new to quarantine; the round is in flight
    assert len(reports(store)) == 2
