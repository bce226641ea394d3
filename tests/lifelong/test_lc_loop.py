"""The LC's lifelong-learning loop on a real LC store: trigger explanations, eval and deploy decisions."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Any

from lc.incremental.loop import IncrementalLoop
from lc.lifelong.loop import LifelongLoop
from lc.store import Store
from sedna.controlplane import il_protocol as ilp
from sedna.controlplane.edgehub import ObjectKey

KB = "http://127.0.2.9:9020/knowledgebase/index"
KEY = ObjectKey("lifelonglearningjob", "default", "ll")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def job(tmp: Path, state: ilp.JobState | None = None, threshold: int = 5) -> dict[str, Any]:
    notes = {ilp.STATE_ANNOTATION: state.to_json()} if state is not None else {}
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "LifelongLearningJob",
            "metadata": {"name": "ll", "namespace": "default", "uid": "u1", "annotations": notes},
            "spec": {"dataset": {"name": "ds", "trainProb": 0.8}, "outputDir": str(tmp / "out"),
                     "trainSpec": {"trigger": {"checkPeriodSeconds": 10, "condition": {
                         "operator": ">=", "threshold": threshold, "metric": "num_of_samples"}}}}}


def setup(tmp: Path, lines: int) -> tuple[Store, Path]:
    store = Store(tmp / "lc.db")
    index = tmp / "index.csv"
    index.write_text("site,f0,label\n" + "".join(f"north,{i},{i % 10}\n" for i in range(lines)))
    store.put_object(ObjectKey("dataset", "default", "ds"), "1",
                     {"metadata": {"name": "ds", "namespace": "default"}, "spec": {"url": str(index), "format": "csv"}})
    return store, index


def reports(store: Store) -> list[dict[str, Any]]:
    return [payload for _, _, payload in store.outbox_after(0)]


def loop_of(store: Store, clock: Clock) -> LifelongLoop:
    return LifelongLoop(store, lambda: None, clock=clock, local_time=lambda: time(12, 0))


def test_a_trigger_that_does_not_fire_is_explained_once_per_change_then_fires(tmp_path: Path) -> None:
    store, index = setup(tmp_path, 5)  # 4 train samples, 1 eval
    clock = Clock()
    loop = loop_of(store, clock)
    store.put_object(KEY, "1", job(tmp_path))

    assert loop.check() == 1
    clock.now += 11
    assert loop.check() == 0  # the same explanation is not sent twice
    with index.open("a") as handle:
        handle.write("south,5,5\n")  # the second batch of one sample goes to eval (int(0.8 * 1) = 0 train)
    clock.now += 11
    assert loop.check() == 0  # still 4 train samples: the same words
    with index.open("a") as handle:
        handle.write("".join(f"south,{i},{i % 10}\n" for i in range(6, 11)))  # 4 more train, 1 eval
    clock.now += 11
    assert loop.check() == 1

    waiting, fired = reports(store)
    assert waiting == {"source": "lc", "phase": "train", "status": "waiting", "round": 1, "input": {},
                       "message": "num_of_samples = 4 does not satisfy num_of_samples >= 5"}
    assert (fired["phase"], fired["status"], fired["round"]) == ("train", "ready", 1)
    assert fired["input"]["outputDir"] == str(tmp_path / "out" / "train" / "1")
    rows = Path(fired["input"]["dataURL"]).read_text().splitlines()
    assert rows[0] == "site,f0,label" and len(rows) == 1 + 8


def test_eval_names_the_one_version_the_round_trained(tmp_path: Path) -> None:
    store, _ = setup(tmp_path, 10)  # 8 train, 2 eval
    clock = Clock()
    loop = loop_of(store, clock)
    store.put_object(KEY, "1", job(tmp_path))
    assert loop.check() == 1  # train ready, round 1
    state = ilp.JobState(ilp.EVAL, ilp.WAITING, 1, f"{KB}/3", 1)
    store.put_object(KEY, "2", job(tmp_path, state))

    assert loop.check() == 1
    assert loop.check() == 0  # sent once

    report = reports(store)[-1]
    assert (report["phase"], report["status"], report["round"]) == ("eval", "ready", 1)
    assert report["input"]["models"] == [f"{KB}/3"]
    rows = Path(report["input"]["dataURL"]).read_text().splitlines()
    assert rows[0] == "site,f0,label" and len(rows) == 1 + 2
    assert report["message"] == "2 eval samples"


def record(version: int, deployed: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"format": "json", "url": f"{KB}/{version}", "version": version}
    if deployed is not None:
        out["deployed"] = deployed
    return out


def test_deploy_decisions_follow_what_the_eval_approved(tmp_path: Path) -> None:
    store, _ = setup(tmp_path, 0)
    clock = Clock()
    outcomes = []
    for round_, results in ((1, [record(4, ["north", "south"])]), (2, [record(5, [])]), (3, [])):
        state = ilp.JobState(ilp.DEPLOY, ilp.WAITING, round_, f"{KB}/{round_}", round_, results)
        store.put_object(KEY, str(round_), job(tmp_path, state))
        assert loop_of(store, clock).check() == 1
        report = reports(store)[-1]
        outcomes.append((report["status"], report["round"], report["message"], report["input"]))

    assert outcomes == [
        ("ready", 1, "deploy knowledge base version 4 (task groups north, south)",
         {"models": [f"{KB}/4"], "version": 4}),
        ("completed", 2, "not deployed: the eval approved no task group of version 5", {}),
        ("failed", 3, "the eval stage reported no knowledge base to deploy", {}),
    ]


def test_incremental_and_lifelong_jobs_keep_to_their_own_loop(tmp_path: Path) -> None:
    store, _ = setup(tmp_path, 10)
    clock = Clock()
    il = job(tmp_path)
    il["kind"] = "IncrementalLearningJob"
    store.put_object(ObjectKey("incrementallearningjob", "default", "ll"), "1", il)
    store.put_object(KEY, "1", job(tmp_path))

    assert loop_of(store, clock).check() == 1
    assert IncrementalLoop(store, lambda: None, clock=clock, local_time=lambda: time(12, 0)).check() == 1

    keys = [str(key) for _, key, _ in store.outbox_after(0)]
    assert keys == ["lifelonglearningjob/default/ll", "incrementallearningjob/default/ll"]
    assert store.get_meta("lifelong/default/ll") and store.get_meta("incremental/default/ll")
