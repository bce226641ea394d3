"""The LC's dataset manager counts TXT and CSV index files and reports only when the count changes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gm.cluster.interface import DATASET
from gm.cluster.local.store import LocalStore
from lc.managers.dataset import IndexProblem, count_samples
from tests.hub.harness import GM, LC, dataset, wait_until


@pytest.mark.parametrize(("text", "fmt", "expected"), [
    ("a.jpg 1\n\n# comment\n  b.jpg 0\n", "txt", 2),
    ("", "txt", 0),
    ("path,label\na.jpg,1\n\"multi\nline.jpg\",0\n\n", "csv", 2),
    ("path,label\n", "csv", 0),
])
def test_index_files_are_counted(tmp_path: Path, text: str, fmt: str, expected: int) -> None:
    index = tmp_path / f"index.{fmt}"
    index.write_text(text)
    assert count_samples(index, fmt) == expected


def test_missing_and_unknown_index_files_are_problems_not_crashes(tmp_path: Path) -> None:
    with pytest.raises(IndexProblem, match="does not exist"):
        count_samples(tmp_path / "missing.txt", "txt")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(IndexProblem, match=r"spec\.format 'json' is not supported"):
        count_samples(tmp_path / "x.json", "json")


def _status(store: LocalStore, name: str) -> dict:
    return store.get(DATASET, "default", name).get("status") or {}


@pytest.mark.processes
def test_counts_reach_dataset_status_only_when_they_change(tmp_path: Path) -> None:
    txt, csv = tmp_path / "train.txt", tmp_path / "train.csv"
    txt.write_text("a 1\nb 2\nc 3\n")
    csv.write_text("path,label\na,1\nb,0\nc,1\nd,0\n")
    store = LocalStore(tmp_path / "gm.db")
    store.create(dataset("txt", "edge-0", str(txt)))
    store.create(dataset("csv", "edge-0", str(csv), fmt="csv"))
    store.create(dataset("gone", "edge-0", str(tmp_path / "missing.txt")))
    gm = GM(tmp_path, {"edge-0": "t0"}).start()
    lc = LC(tmp_path, gm.address, "edge-0", "t0", "--dataset-period", "0.2").start()
    try:
        wait_until(lambda: _status(store, "txt").get("numberOfSamples") == 3, message="TXT count")
        wait_until(lambda: _status(store, "csv").get("numberOfSamples") == 4, message="CSV count")
        problem = wait_until(lambda: _status(store, "gone").get("conditions"), message="missing-file condition")
        assert problem[0]["status"] == "False" and "does not exist" in problem[0]["message"]
        wait_until(lambda: lc.health()["outbox"] == 0, message="reports applied")
        applied = gm.metric("sedna_edgehub_reports_total", kind="dataset", result="applied")
        assert applied == 3

        # Unchanged files over many periods: no new report.
        time.sleep(1.5)  # about seven counting periods
        assert gm.metric("sedna_edgehub_reports_total", kind="dataset", result="applied") == 3

        txt.write_text("a 1\nb 2\nc 3\nd 4\ne 5\n")
        wait_until(lambda: _status(store, "txt").get("numberOfSamples") == 5, message="new TXT count")
        assert gm.metric("sedna_edgehub_reports_total", kind="dataset", result="applied") == 4
        assert lc.health()["status"] == "ok"
    finally:
        lc.stop()
        gm.stop()
        store.close()
