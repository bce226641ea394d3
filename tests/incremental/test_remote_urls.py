"""Incremental learning with ``s3://`` and ``http(s)://`` datasets and outputs, against real servers.

A moto S3 server and a plain HTTP server run on 127.0.0.1. The LC's dataset counter and job loop
read remote indexes (and name the URL when they cannot), round sample files and deploys go to
``s3://`` outputs, and the SDK's train step uploads to an ``s3://`` ``MODEL_URL``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lc.incremental.loop import IncrementalLoop
from lc.managers.dataset import DatasetManager
from lc.store import Store
from sedna.common import s3
from sedna.common.config import WorkerConfig
from sedna.common.errors import DataSourceError
from sedna.controlplane import il_protocol as ilp
from sedna.controlplane.edgehub import ObjectKey
from sedna.core.incremental_learning import IncrementalLearning
from tests.support.procs import free_port, running
from tests.support.s3 import moto_s3

pytest.importorskip("moto")
pytestmark = pytest.mark.processes

HEADER = "a,b,label\n"


def rows(start: int, stop: int) -> str:
    return "".join(f"{i},{i},{i % 10}\n" for i in range(start, stop))


@pytest.fixture
def s3_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Sedna's S3 env (also set in this process: the LC reads its own env) for a moto server on 127.0.0.1."""
    with moto_s3(tmp_path, ("data", "out")) as env:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield env


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()
    port = free_port()
    with running("http.server", {}, tmp_path / "http.log", port, ["-b", "127.0.0.1", "-d", str(root), str(port)]):
        yield root, f"http://127.0.0.1:{port}"


def put(url: str, body: bytes | str) -> None:
    bucket, key = s3.split_url(url)
    s3.S3Settings.from_env().client().put_object(Bucket=bucket, Key=key,
                                                 Body=body.encode() if isinstance(body, str) else body)


def get(url: str) -> bytes:
    bucket, key = s3.split_url(url)
    return bytes(s3.S3Settings.from_env().client().get_object(Bucket=bucket, Key=key)["Body"].read())


def dataset_obj(url: str) -> dict[str, Any]:
    return {"metadata": {"name": "ds", "namespace": "default"}, "spec": {"url": url, "format": "csv"}}


def counts(store: Store) -> list[dict[str, Any]]:
    return [payload for _, _, payload in store.outbox_after(0)]


# -- the dataset counter ---------------------------------------------------------------------------
def test_the_lc_counts_an_s3_index_and_sees_it_grow(tmp_path: Path, s3_env: dict[str, str]) -> None:
    put("s3://data/digits/index.csv", HEADER + rows(0, 5))
    store = Store(tmp_path / "lc.db")
    store.put_object(ObjectKey("dataset", "default", "ds"), "1", dataset_obj("s3://data/digits/index.csv"))
    manager = DatasetManager(store, lambda: None, 60.0)
    assert manager.check() == 1 and counts(store)[-1] == {"numberOfSamples": 5}
    assert manager.check() == 0  # unchanged: no second report
    put("s3://data/digits/index.csv", HEADER + rows(0, 12))
    assert manager.check() == 1 and counts(store)[-1] == {"numberOfSamples": 12}


def test_an_unfetchable_index_is_a_problem_naming_the_url_and_the_reason(
        tmp_path: Path, s3_env: dict[str, str], http_root: tuple[Path, str]) -> None:
    root, base = http_root
    (root / "index.csv").write_text(HEADER + rows(0, 3))
    store = Store(tmp_path / "lc.db")
    store.put_object(ObjectKey("dataset", "default", "ds"), "1", dataset_obj(f"{base}/index.csv"))
    store.put_object(ObjectKey("dataset", "default", "gone"), "1",
                     {**dataset_obj("s3://data/missing/index.csv"), "metadata": {"name": "gone",
                                                                                 "namespace": "default"}})
    manager = DatasetManager(store, lambda: None, 60.0)
    assert manager.check() == 2
    first, second = counts(store)
    by_problem = first if "problem" in first else second
    assert {"numberOfSamples": 3} in (first, second)
    assert "s3://data/missing/index.csv" in by_problem["problem"] and "cannot fetch" in by_problem["problem"]
    (root / "index.csv").unlink()  # the server loses the file: a problem, and the cached copy is kept
    assert manager.check() == 1
    problem = counts(store)[-1]["problem"]
    assert f"{base}/index.csv" in problem and "404" in problem


# -- the job loop ----------------------------------------------------------------------------------
def il_job(out: str, state: ilp.JobState | None = None, hot: bool = False) -> dict[str, Any]:
    notes = {ilp.STATE_ANNOTATION: state.to_json()} if state is not None else {}
    return {"metadata": {"name": "il", "namespace": "default", "uid": "u1", "annotations": notes},
            "spec": {"dataset": {"name": "ds", "trainProb": 0.8}, "initialModel": {"name": "initial"},
                     "outputDir": out,
                     "trainSpec": {"trigger": {"condition": {"operator": ">=", "threshold": 8,
                                                             "metric": "num_of_samples"}}},
                     "deploySpec": {"model": {"name": "deploy", "hotUpdateEnabled": hot},
                                    "trigger": {"condition": {"operator": "gt", "threshold": 0.0,
                                                              "metric": "precision_delta"}}}}}


def models(store: Store, initial: str, deploy: str) -> None:
    for name, url in (("initial", initial), ("deploy", deploy)):
        store.put_object(ObjectKey("model", "default", name), "1",
                         {"metadata": {"name": name, "namespace": "default"}, "spec": {"url": url}})


def test_rounds_of_an_s3_dataset_are_written_to_an_s3_output_dir(tmp_path: Path, s3_env: dict[str, str]) -> None:
    put("s3://data/digits/index.csv", HEADER + rows(0, 20))  # 16 train, 4 eval
    store = Store(tmp_path / "lc.db")
    store.put_object(ObjectKey("dataset", "default", "ds"), "1", dataset_obj("s3://data/digits/index.csv"))
    models(store, "s3://out/models/initial.npz", "s3://out/models/deploy.npz")
    store.put_object(ObjectKey("incrementallearningjob", "default", "il"), "1", il_job("s3://out/il"))
    loop = IncrementalLoop(store, lambda: None, local_time=lambda: time(12, 0))
    assert loop.check() == 1
    [report] = counts(store)
    assert (report["phase"], report["status"], report["round"]) == ("train", "ready", 1)
    assert report["input"] == {"model": "s3://out/models/initial.npz", "dataURL": "s3://out/il/data/train/1/data.csv",
                               "dataIndexURL": "", "outputDir": "s3://out/il/train/1"}
    body = get("s3://out/il/data/train/1/data.csv").decode().splitlines()
    assert body[0] == HEADER.strip() and len(body) == 17
    assert not list((tmp_path / "remote").rglob("outgoing/**/*.csv"))  # staged copies are removed
    assert list((tmp_path / "remote" / "incremental").rglob("index.csv"))  # the loop's own cached copy


def test_an_unreadable_remote_index_loses_no_progress(tmp_path: Path, s3_env: dict[str, str]) -> None:
    put("s3://data/digits/index.csv", HEADER + rows(0, 5))
    store = Store(tmp_path / "lc.db")
    store.put_object(ObjectKey("dataset", "default", "ds"), "1", dataset_obj("s3://data/digits/index.csv"))
    models(store, "s3://out/models/initial.npz", "s3://out/models/deploy.npz")
    store.put_object(ObjectKey("incrementallearningjob", "default", "il"), "1", il_job("s3://out/il"))
    clock = [1000.0]
    loop = IncrementalLoop(store, lambda: None, local_time=lambda: time(12, 0), remote_period=0.0,
                           clock=lambda: clock[0])
    assert loop.check() == 0  # 4 train samples: not >= 8
    before = store.get_meta("incremental/default/il")
    s3.S3Settings.from_env().client().delete_object(Bucket="data", Key="digits/index.csv")
    assert loop.check() == 0 and store.get_meta("incremental/default/il") == before
    put("s3://data/digits/index.csv", HEADER + rows(0, 15))  # 10 new: 4 + 8 train samples
    clock[0] += 3600  # past the trigger's check period
    assert loop.check() == 1 and counts(store)[-1]["status"] == "ready"


def test_deploy_copies_an_s3_trained_model_to_local_and_s3_deploy_models(
        tmp_path: Path, s3_env: dict[str, str]) -> None:
    put("s3://out/il/train/2/model.npz", b"trained-weights")
    put("s3://out/models/deploy.npz", b"old")
    evals = [{"url": "new", "metrics": {"precision": [0.9]}}, {"url": "old", "metrics": {"precision": [0.5]}}]
    state = ilp.JobState(ilp.DEPLOY, ilp.WAITING, 2, "s3://out/il/train/2/model.npz", 2, evals)
    for deploy in ("s3://out/models/deploy.npz", str(tmp_path / "serve" / "deploy.npz")):
        store = Store(tmp_path / f"lc-{len(deploy)}.db")
        put("s3://data/digits/index.csv", HEADER)
        store.put_object(ObjectKey("dataset", "default", "ds"), "1", dataset_obj("s3://data/digits/index.csv"))
        models(store, "s3://out/models/initial.npz", deploy)
        store.put_object(ObjectKey("incrementallearningjob", "default", "il"), "2", il_job("s3://out/il", state))
        assert IncrementalLoop(store, lambda: None).check() == 1
        report = counts(store)[-1]
        assert (report["phase"], report["status"]) == ("deploy", "ready"), report
    assert get("s3://out/models/deploy.npz") == b"trained-weights"
    assert (tmp_path / "serve" / "deploy.npz").read_bytes() == b"trained-weights"


def test_hot_update_with_an_s3_output_dir_fails_the_deploy_naming_why(tmp_path: Path, s3_env: dict[str, str]) -> None:
    put("s3://out/il/train/2/model.npz", b"w")
    put("s3://data/digits/index.csv", HEADER)
    evals = [{"url": "new", "metrics": {"precision": [0.9]}}, {"url": "old", "metrics": {"precision": [0.5]}}]
    state = ilp.JobState(ilp.DEPLOY, ilp.WAITING, 2, "s3://out/il/train/2/model.npz", 2, evals)
    store = Store(tmp_path / "lc.db")
    store.put_object(ObjectKey("dataset", "default", "ds"), "1", dataset_obj("s3://data/digits/index.csv"))
    models(store, "s3://out/models/initial.npz", str(tmp_path / "deploy.npz"))
    store.put_object(ObjectKey("incrementallearningjob", "default", "il"), "2", il_job("s3://out/il", state, hot=True))
    assert IncrementalLoop(store, lambda: None).check() == 1
    report = counts(store)[-1]
    assert report["status"] == "failed" and "hot update needs a local spec.outputDir" in report["message"]
    assert not (tmp_path / "deploy.npz").exists()


# -- the SDK ---------------------------------------------------------------------------------------
class Weights:
    """A tiny estimator: its model file is an npz of one array."""

    def __init__(self) -> None:
        self.w = np.zeros(3)

    def load(self, model_url: str) -> None:
        with np.load(model_url, allow_pickle=False) as data:
            self.w = data["w"]

    def train(self, train_data: Any, **_: Any) -> dict[str, float]:
        self.w = self.w + 1
        return {"loss": 0.5}

    def evaluate(self, data: Any, **_: Any) -> dict[str, float]:
        return {"accuracy": float(self.w.sum())}

    def save(self, path: str) -> None:
        with open(path, "wb") as handle:
            np.savez(handle, w=self.w)


class Reports:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, report: Any) -> bool:
        self.sent.append({"kind": report.kind, "status": report.status, "results": report.results})
        return True


def test_the_sdk_trains_from_and_saves_to_s3_and_evaluates_s3_models(s3_env: dict[str, str]) -> None:
    base = Weights()
    base.w = np.full(3, 2.0)
    handle = io.BytesIO()
    np.savez(handle, w=base.w)
    put("s3://out/models/initial.npz", handle.getvalue())
    env = {**s3_env, "JOB_NAME": "il", "BASE_MODEL_URL": "s3://out/models/initial.npz",
           "MODEL_URL": "s3://out/il/train/1"}
    lc = Reports()
    il = IncrementalLearning(Weights, config=WorkerConfig.from_env(env), lc_client=lc)
    try:
        il.train([1, 2, 3])
    finally:
        il.close()
    assert lc.sent[-1]["status"] == "completed"
    assert lc.sent[-1]["results"][0]["url"] == "s3://out/il/train/1/model.npz"
    with np.load(io.BytesIO(get("s3://out/il/train/1/model.npz")), allow_pickle=False) as saved:
        assert saved["w"].tolist() == [3.0, 3.0, 3.0]  # loaded from S3, trained once, uploaded
    evaluator = IncrementalLearning(Weights, config=WorkerConfig.from_env(
        {**s3_env, "JOB_NAME": "il", "MODEL_URLS": "s3://out/il/train/1/model.npz;s3://out/models/initial.npz"}),
        lc_client=lc)
    try:
        results = evaluator.evaluate([1])
        downloads = evaluator._downloads
        assert downloads is not None and Path(downloads).is_dir()
    finally:
        evaluator.close()
    assert [r["metrics"]["accuracy"] for r in results] == [9.0, 6.0]
    assert [r["url"] for r in results] == ["s3://out/il/train/1/model.npz", "s3://out/models/initial.npz"]
    assert not Path(downloads).exists()  # close() removes the downloaded copies


# -- sample files of a remote dataset ----------------------------------------------------------------
def test_relative_sample_paths_of_a_remote_index_are_fetched_once_into_a_local_cache(
        s3_env: dict[str, str], http_root: tuple[Path, str]) -> None:
    from sedna.datasources import TxtDataParse
    from sedna.datasources.samples import SampleCache

    root, base = http_root
    (root / "ds" / "img").mkdir(parents=True)
    (root / "ds" / "img" / "a.bin").write_bytes(b"A")
    (root / "ds" / "index.txt").write_text("img/a.bin 1\n")
    put("s3://data/ds/img/b.bin", b"B")
    parsed = TxtDataParse(data_type="train")
    with SampleCache() as cache:
        parsed.parse(cache.local("index.txt", f"{base}/ds/index.txt"))  # the index itself, via http
        [[entry, label]] = [[x, y] for x, y in zip(parsed.x, parsed.y, strict=True)]
        assert Path(cache.local(entry, f"{base}/ds/index.txt")).read_bytes() == b"A" and int(label) == 1
        (root / "ds" / "img" / "a.bin").write_bytes(b"changed")  # fetched once: the copy is reused
        assert Path(cache.local(entry, f"{base}/ds/index.txt")).read_bytes() == b"A"
        assert Path(cache.local("img/b.bin", "s3://data/ds/index.txt")).read_bytes() == b"B"
        with pytest.raises(DataSourceError, match=r"img/missing\.bin"):
            cache.local("img/missing.bin", "s3://data/ds/index.txt")
        folder = cache.root
    assert not folder.exists()


# -- lifelong learning shares the LC side ------------------------------------------------------------
def test_a_lifelong_job_splits_an_http_index_into_local_round_files(
        tmp_path: Path, http_root: tuple[Path, str]) -> None:
    from lc.lifelong.loop import LifelongLoop

    root, base = http_root
    (root / "index.csv").write_text("site,f0,label\n" + "".join(f"north,{i},{i % 10}\n" for i in range(10)))
    store = Store(tmp_path / "lc.db")
    store.put_object(ObjectKey("dataset", "default", "ds"), "1", dataset_obj(f"{base}/index.csv"))
    store.put_object(ObjectKey("lifelonglearningjob", "default", "ll"), "1", {
        "metadata": {"name": "ll", "namespace": "default", "uid": "u1"},
        "spec": {"dataset": {"name": "ds", "trainProb": 0.8}, "outputDir": str(tmp_path / "out"),
                 "trainSpec": {"trigger": {"condition": {"operator": ">=", "threshold": 5,
                                                         "metric": "num_of_samples"}}}}})
    assert LifelongLoop(store, lambda: None, local_time=lambda: time(12, 0)).check() == 1
    report = counts(store)[-1]
    assert (report["phase"], report["status"]) == ("train", "ready")
    assert len(Path(report["input"]["dataURL"]).read_text().splitlines()) == 1 + 8


def test_a_lifelong_job_refuses_a_remote_output_dir_naming_it() -> None:
    from gm.controllers.lifelong_learning.validation import validate

    job = {"metadata": {"name": "ll", "namespace": "default"},
           "spec": {"dataset": {"name": "ds", "trainProb": 0.8}, "outputDir": "s3://out/ll"}}
    dataset = {"metadata": {"name": "ds"}, "spec": {"url": "s3://data/index.csv", "nodeName": "edge-0"}}
    problems = [p for p in validate(job, lambda name: dataset) if p.field == "spec.outputDir"]
    assert len(problems) == 1 and "'s3://out/ll'" in problems[0].message


def test_an_unreachable_s3_endpoint_is_a_problem_naming_the_url(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_ENDPOINT_URL", f"127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("S3_USE_HTTPS", "0")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("ACCESS_KEY_ID", "k")
    monkeypatch.setenv("SECRET_ACCESS_KEY", "s")
    store = Store(tmp_path / "lc.db")
    store.put_object(ObjectKey("dataset", "default", "ds"), "1", dataset_obj("s3://data/digits/index.csv"))
    assert DatasetManager(store, lambda: None, 60.0).check() == 1
    problem = counts(store)[-1]["problem"]
    assert "cannot fetch 's3://data/digits/index.csv'" in problem and "127.0.0.1" in problem
