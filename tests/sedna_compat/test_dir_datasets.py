"""Sedna's ``Dataset.format: dir`` (a directory of samples): the CRD and the GM accept it, the LC counts
the files under it and the count reaches ``status.numberOfSamples``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gm import schema
from gm.cluster.interface import DATASET
from gm.cluster.local.store import LocalStore
from gm.controllers.dataset.validation import validate
from lc.managers.dataset import IndexProblem, count_samples
from tests.hub.harness import GM, LC, dataset, wait_until


def coco_like(root: Path) -> Path:
    """Sedna's mistnet example keeps COCO images in a directory tree; hidden files are not samples."""
    (root / "images" / "train2017").mkdir(parents=True)
    for i in range(5):
        (root / "images" / "train2017" / f"{i:012d}.jpg").write_bytes(b"\xff\xd8")
    (root / "README.txt").write_text("coco128")
    (root / ".DS_Store").write_bytes(b"")
    (root / ".cache").mkdir()
    (root / ".cache" / "x.bin").write_bytes(b"")
    return root


def test_the_crd_schema_and_the_gm_accept_format_dir() -> None:
    obj = dataset("coco", "edge-0", "/data/1/COCO", fmt="dir")

    assert schema.validate(obj) == []
    assert validate(obj, ("edge-0",)) == []


def test_files_under_the_directory_are_the_samples(tmp_path: Path) -> None:
    root = coco_like(tmp_path / "COCO")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "not-mine.jpg").write_bytes(b"")
    os.symlink(elsewhere, root / "linked-dir")  # a symlinked directory is not walked
    os.symlink(root / "README.txt", root / "linked-file.txt")  # a symlink to a file is a file

    assert count_samples(root, "dir") == 7


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p, "does not exist"),
    (lambda p: (p.write_text("x"), p)[1], "is not a directory"),
])
def test_a_missing_directory_or_a_file_is_a_problem(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path / "COCO")

    with pytest.raises(IndexProblem, match=f"spec.url '{path}' {message} \\(spec.format dir names a directory"):
        count_samples(path, "dir")


@pytest.mark.processes
def test_the_count_reaches_the_dataset_status(tmp_path: Path) -> None:
    root = coco_like(tmp_path / "COCO")
    store = LocalStore(tmp_path / "gm.db")
    store.create(dataset("coco", "edge-0", str(root), fmt="dir"))
    gm = GM(tmp_path, {"edge-0": "t0"}).start()
    lc = LC(tmp_path, gm.address, "edge-0", "t0", "--dataset-period", "0.2").start()
    try:
        wait_until(lambda: (store.get(DATASET, "default", "coco").get("status") or {}).get("numberOfSamples") == 6,
                   message="dir count")
        (root / "images" / "train2017" / "new.jpg").write_bytes(b"")
        wait_until(lambda: store.get(DATASET, "default", "coco")["status"]["numberOfSamples"] == 7,
                   message="new dir count")
    finally:
        lc.stop()
        gm.stop()
        store.close()
