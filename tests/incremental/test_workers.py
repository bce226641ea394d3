"""The digits train / eval / infer workers, with real files, a real inference process and a fake LC."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from examples.incremental_learning.digits.prepare import Layout, accuracy, feed, prepare
from sedna.service.inference.rest_client import RestInferenceClient
from tests.incremental.fake_lc import FakeLC
from tests.support.procs import free_port, running
from workers.incremental import eval as eval_worker
from workers.incremental import train as train_worker
from workers.incremental.model import load_samples


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    layout = prepare(tmp_path_factory.mktemp("il-digits"))
    feed(layout, 0, 300)
    return layout


def env(lc: FakeLC, **extra: str) -> dict[str, str]:
    return {"JOB_NAME": "digits", "NAMESPACE": "default", "WORKER_NAME": "worker-1", "LC_SERVER": lc.url, **extra}


def test_train_then_eval_report_the_new_model_and_both_metrics_in_order(layout: Layout, tmp_path: Path) -> None:
    out = tmp_path / "train" / "1"
    with FakeLC() as lc:
        assert train_worker.main(env(lc, BASE_MODEL_URL=str(layout.initial_model), MODEL_URL=str(out),
                                     TRAIN_DATASET_URL=str(layout.index), epochs="10")) == 0
        [train] = lc.wait(1)
        trained = out / "model.npz"
        assert (train["_path"], train["kind"], train["status"]) == ("/sedna/workers/worker-1/info", "train",
                                                                    "completed")
        assert train["results"][0]["url"] == str(trained)
        assert accuracy(trained, layout.test) > accuracy(layout.initial_model, layout.test) + 0.2
        urls = f"{trained};{layout.initial_model}"
        assert eval_worker.main(env(lc, MODEL_URLS=urls, TEST_DATASET_URL=str(layout.test))) == 0
        evaluation = lc.wait(2)[1]
    assert [r["url"] for r in evaluation["results"]] == [str(trained), str(layout.initial_model)]
    new, old = (r["metrics"] for r in evaluation["results"])
    assert new["accuracy"] == pytest.approx(accuracy(trained, layout.test))
    assert len(new["precision"]) == 10 and new["accuracy"] > old["accuracy"]


def test_a_missing_sample_file_is_a_config_error_exit_2(tmp_path: Path) -> None:
    with FakeLC() as lc:
        code = train_worker.main(env(lc, MODEL_URL=str(tmp_path), TRAIN_DATASET_URL=str(tmp_path / "nope.csv")))
    assert code == 2


def test_a_failing_train_is_reported_and_exits_1(layout: Layout, tmp_path: Path) -> None:
    with FakeLC() as lc:
        code = train_worker.main(env(lc, BASE_MODEL_URL=str(tmp_path / "missing.npz"), MODEL_URL=str(tmp_path),
                                     TRAIN_DATASET_URL=str(layout.index)))
        [report] = lc.wait(1)
    assert code == 1
    assert report["status"] == "failed" and "missing.npz" in report["ownerInfo"]["error"]


def write_config(path: Path, model: Path, round_: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"model_config": {"model_path": str(model), "model_update_time": f"t{round_}",
                                                "round": round_}}))
    os.replace(tmp, path)


@pytest.mark.processes
def test_infer_serves_oip_and_follows_every_hot_update(layout: Layout, tmp_path: Path) -> None:
    better = tmp_path / "better.npz"
    with FakeLC() as lc:
        assert train_worker.main(env(lc, BASE_MODEL_URL=str(layout.initial_model), MODEL_URL=str(better),
                                     TRAIN_DATASET_URL=str(layout.index))) == 0
        hot, port = tmp_path / "hot" / "model_config.json", free_port()
        hot.parent.mkdir()
        test = load_samples(layout.test)
        worker_env = env(lc, MODEL_URL=str(layout.initial_model), MODEL_HOT_UPDATE="true",
                         MODEL_HOT_UPDATE_CONFIG=str(hot), MODEL_POLL_PERIOD_SECONDS="1",
                         EDGE_BIND_IP="127.0.0.1", EDGE_BIND_PORT=str(port), EDGE_GRPC_PORT=str(free_port()),
                         HEM_NAME="CrossEntropy", HEM_PARAMETERS='[{"key":"threshold_cross_entropy","value":"0.5"}]')
        with running("workers.incremental.infer", worker_env, tmp_path / "infer.log", port=port), \
                RestInferenceClient(f"http://127.0.0.1:{port}") as client:

            def ask() -> tuple[float, float, object]:
                result = client.infer("digits", {"pixels": test.x})
                acc = float((result.outputs["probabilities"].argmax(axis=1) == test.y).mean())
                return acc, float(result.outputs["hard_example"].mean()), result.parameters.get("model_round")

            acc0, hard0, round0 = ask()
            assert acc0 == pytest.approx(accuracy(layout.initial_model, layout.test), abs=1e-6) and round0 is None
            served = []
            for round_, model in ((1, better), (2, layout.initial_model), (3, better)):
                write_config(hot, model, round_)
                deadline = time.monotonic() + 10
                while (answer := ask())[2] != round_ and time.monotonic() < deadline:
                    time.sleep(0.1)
                served.append(answer)
        reports = [r for r in lc.reports if r["kind"] == "deploy"]
    assert [s[2] for s in served] == [1, 2, 3]
    assert served[0][0] == pytest.approx(accuracy(better, layout.test), abs=1e-6) and served[0][0] > acc0 + 0.2
    assert served[1][0] == pytest.approx(acc0, abs=1e-6)
    assert served[0][1] < hard0  # the better model is confident on more digits
    assert [(r["status"], r["ownerInfo"]["round"]) for r in reports] == [("completed", 1), ("completed", 2),
                                                                         ("completed", 3)]
    assert np.isfinite(served[2][0])
