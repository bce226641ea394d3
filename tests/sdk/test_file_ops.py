"""FileOps: Sedna's path helpers, pickle-free dump/load, and downloads from a real HTTP server."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sedna.common.downloads import DownloadError, fetch
from sedna.common.file_ops import FileOps
from tests.support.procs import free_port, running

pytestmark = pytest.mark.processes

BLOB = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def served(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    (root / "models").mkdir(parents=True)
    (root / "models" / "model.bin").write_bytes(BLOB)
    (root / "data.json").write_text(json.dumps({"a": [1, 2]}))
    (root / "evil.pkl").write_bytes(pickle.dumps({"x": 1}))
    return root


def _server(tmp_path: Path, root: Path, *flags: str) -> Iterator[str]:
    port = free_port()
    with running("tests.sdk.range_server", {}, tmp_path / "server.log", port, [str(root), str(port), *flags]):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def http(tmp_path: Path, served: Path) -> Iterator[str]:
    yield from _server(tmp_path, served)


def test_join_path_keeps_sedna_rules() -> None:
    assert FileOps.join_path("/data", "/models", "m.pb") == "/data/models/m.pb"
    assert FileOps.join_path("out", "a") == "out/a"
    assert FileOps.join_path("s3://bucket", "/dir", "f.txt") == "s3://bucket/dir/f.txt"
    assert FileOps.join_path("only") == "only"
    assert FileOps.remove_path_prefix("/home/data/x/y.pb", "/home/data/") == "/x/y.pb"
    assert FileOps.remove_path_prefix("/other/y.pb", "/home/data") == "/other/y.pb"


def test_clean_folder_creates_skips_none_and_empties_on_request(tmp_path: Path) -> None:
    keep, wipe = tmp_path / "keep", tmp_path / "wipe"
    wipe.mkdir()
    (wipe / "old.txt").write_text("old")
    FileOps.clean_folder([str(keep), None, str(wipe)], clean=False)
    assert keep.is_dir() and (wipe / "old.txt").exists()
    FileOps.clean_folder(str(wipe))
    assert wipe.is_dir() and not any(wipe.iterdir())
    assert FileOps.exists(str(keep)) and FileOps.exists(f"file://{keep}") and not FileOps.exists("")


def test_http_download_streams_into_place_with_progress(tmp_path: Path, http: str) -> None:
    seen: list[tuple[int, int | None]] = []
    path = fetch(f"{http}/models/model.bin", tmp_path / "got" / "model.bin",
                 sha256=hashlib.sha256(BLOB).hexdigest(), progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == BLOB and not (tmp_path / "got" / "model.bin.part").exists()
    assert seen[-1] == (len(BLOB), len(BLOB)) and len(seen) > 1


def test_a_broken_transfer_resumes_with_a_range_request(tmp_path: Path, served: Path) -> None:
    for base in _server(tmp_path, served, "--break-after", "300000"):
        got = FileOps.download(f"{base}/models/model.bin", str(tmp_path / "model.bin"))
        assert Path(got).read_bytes() == BLOB
    first, second = (tmp_path / "requests.log").read_text().splitlines()
    assert first == "/models/model.bin range=None"
    offset = int(second.removeprefix("/models/model.bin range=bytes=").rstrip("-"))
    assert 0 < offset <= 300_000  # only the missing bytes were asked for again


def test_a_server_without_ranges_is_read_again_from_the_start(tmp_path: Path, served: Path) -> None:
    for base in _server(tmp_path, served, "--break-after", "1000", "--no-ranges"):
        assert fetch(f"{base}/models/model.bin", tmp_path / "m.bin").read_bytes() == BLOB


def test_checksum_mismatch_and_http_errors_name_the_url(tmp_path: Path, http: str) -> None:
    dest = tmp_path / "model.bin"
    with pytest.raises(DownloadError, match=r"model\.bin' has sha256 [0-9a-f]{64}, expected 00+"):
        fetch(f"{http}/models/model.bin", dest, sha256="0" * 64)
    assert not dest.exists() and not (tmp_path / "model.bin.part").exists()
    with pytest.raises(DownloadError, match=r"cannot download 'http://127\.0\.0\.1:\d+/nope\.bin': HTTP 404"):
        fetch(f"{http}/nope.bin", dest)
    with pytest.raises(DownloadError, match="no such file"):
        FileOps.download(str(tmp_path / "absent.bin"), str(dest))


def test_download_into_a_folder_or_a_temp_dir_keeps_the_name(tmp_path: Path, http: str) -> None:
    folder = tmp_path / "into"
    folder.mkdir()
    assert FileOps.download(f"{http}/data.json", str(folder)) == str(folder / "data.json")
    copied = FileOps.upload(f"{http}/data.json", str(tmp_path / "copied.json"))  # remote source: via a temp copy
    assert FileOps.load(copied) == {"a": [1, 2]}
    temp = FileOps.download(f"{http}/data.json")
    try:
        assert Path(temp).name == "data.json" and FileOps.load(temp) == {"a": [1, 2]}
    finally:
        FileOps.delete(str(Path(temp).parent))


def test_dump_and_load_never_need_pickle_for_data(tmp_path: Path) -> None:
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert FileOps.load(FileOps.dump({"lr": 0.1, "names": ["a"]}, str(tmp_path / "cfg.json"))) == \
        {"lr": 0.1, "names": ["a"]}
    assert np.array_equal(FileOps.load(FileOps.dump(array, str(tmp_path / "w.npy"))), array)
    weights = FileOps.load(FileOps.dump({"w": array, "b": np.zeros(3)}, str(tmp_path / "w.npz")))
    assert sorted(weights) == ["b", "w"] and np.array_equal(weights["w"], array)
    with pytest.raises(TypeError, match="cannot store a object without pickle"):
        FileOps.dump(object(), str(tmp_path / "x.bin"))


def test_pickle_only_for_local_files_the_caller_allows(tmp_path: Path, http: str, served: Path) -> None:
    local = FileOps.dump({1, 2}, str(tmp_path / "set.pkl"), allow_pickle=True)
    with pytest.raises(ValueError, match="is a pickle; it is not loaded"):
        FileOps.load(local)
    assert FileOps.load(local, allow_pickle=True) == {1, 2}
    with pytest.raises(ValueError, match=r"evil\.pkl' is a pickle; it is not loaded"):
        FileOps.load(f"{http}/evil.pkl", allow_pickle=True)  # downloaded: never unpickled
    with pytest.raises(ValueError, match="never unpickled"):
        FileOps.load_pickle(f"{http}/evil.pkl")
    FileOps.dump_pickle([1], str(tmp_path / "p" / "l.pkl"))
    assert FileOps.load_pickle(str(tmp_path / "p" / "l.pkl")) == [1]


def test_upload_copies_and_by_default_removes_the_source_as_sedna_did(tmp_path: Path) -> None:
    src = tmp_path / "model.pb"
    src.write_bytes(b"weights")
    kept = FileOps.upload(str(src), str(tmp_path / "out" / "model.pb"), clean=False)
    assert Path(kept).read_bytes() == b"weights" and src.exists()
    moved = FileOps.upload(str(src), str(tmp_path / "final.pb"))
    assert Path(moved).read_bytes() == b"weights" and not src.exists()
    with pytest.raises(DownloadError, match="only local paths and s3:// are writable"):
        FileOps.upload(moved, "http://127.0.0.1:1/x", clean=False)


def test_unzip_refuses_members_that_escape_the_folder(tmp_path: Path) -> None:
    good = tmp_path / "good.tar.gz"
    with tarfile.open(good, "w:gz") as archive:
        data = b"hello"
        info = tarfile.TarInfo("pkg/readme.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    FileOps.download(str(good), str(tmp_path / "dl" / "good.tar.gz"), unzip=True)
    assert (tmp_path / "dl" / "pkg" / "readme.txt").read_text() == "hello"

    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as archive:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(DownloadError, match="would escape"):
        FileOps.download(str(evil), str(tmp_path / "dl2" / "evil.tar.gz"), unzip=True)
    assert not (tmp_path / "escaped.txt").exists() and not os.path.exists(tmp_path / "dl2" / ".." / "escaped.txt")
