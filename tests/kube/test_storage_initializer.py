"""python -m workers.storage against a real S3-wire server (moto, 127.0.0.1) and a real HTTP server."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sedna.common import s3
from tests.support.procs import free_port, running
from tests.support.s3 import moto_s3

pytest.importorskip("moto")
pytestmark = pytest.mark.processes

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def s3_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Sedna's S3 env for a moto server on 127.0.0.1 holding s3://models/digits/{edge.onnx,cloud/...}."""
    with moto_s3(tmp_path, ("models",)) as env:
        client = s3.S3Settings.from_env(env).client()
        client.put_object(Bucket="models", Key="digits/edge.onnx", Body=PAYLOAD)
        client.put_object(Bucket="models", Key="digits/cloud/model.onnx", Body=b"cloud")
        client.put_object(Bucket="models", Key="digits/cloud/labels.txt", Body=b"0\n1\n")
        yield env


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "www"
    (root / "digits").mkdir(parents=True)
    (root / "digits" / "edge.onnx").write_bytes(PAYLOAD)
    port = free_port()
    with running("http.server", {}, tmp_path / "http.log", port, ["-b", "127.0.0.1", "-d", str(root), str(port)]):
        yield f"http://127.0.0.1:{port}"


def initializer(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "workers.storage", *args], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=120)


def test_s3_objects_and_folders_land_where_the_worker_reads_them(tmp_path: Path, s3_env: dict[str, str]) -> None:
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    edge, cloud = tmp_path / "downloads/models/digits/edge.onnx", tmp_path / "downloads/models/digits/cloud"

    done = initializer(["--sha256", f"0={sha}", "s3://models/digits/edge.onnx", str(edge),
                        "s3://models/digits/cloud", str(cloud)], s3_env)

    assert done.returncode == 0, done.stderr
    assert edge.read_bytes() == PAYLOAD
    assert (cloud / "model.onnx").read_bytes() == b"cloud" and (cloud / "labels.txt").read_text() == "0\n1\n"
    assert not list(tmp_path.rglob("*.part"))


def test_http_with_a_wrong_checksum_fails_naming_the_url_and_leaves_no_file(tmp_path: Path, http_root: str) -> None:
    url = f"{http_root}/digits/edge.onnx"
    dest = tmp_path / "downloads/edge.onnx"

    done = initializer(["--sha256", "0=" + "0" * 64, url, str(dest)])

    assert done.returncode == 1
    assert f"cannot fetch {url!r}" in done.stderr and "sha256" in done.stderr
    assert not dest.exists()
    assert initializer([url, str(dest)]).returncode == 0 and dest.read_bytes() == PAYLOAD


def test_a_missing_http_file_names_the_url_and_the_status(tmp_path: Path, http_root: str) -> None:
    url = f"{http_root}/digits/nope.onnx"

    done = initializer([url, str(tmp_path / "x.onnx")])

    assert done.returncode == 1 and url in done.stderr and "404" in done.stderr


def test_an_unreachable_s3_endpoint_names_the_url(tmp_path: Path) -> None:
    env = {"S3_ENDPOINT_URL": f"127.0.0.1:{free_port()}", "S3_USE_HTTPS": "0", "ACCESS_KEY_ID": "a",
           "SECRET_ACCESS_KEY": "b", "AWS_MAX_ATTEMPTS": "1"}

    done = initializer(["s3://models/digits/edge.onnx", str(tmp_path / "edge.onnx")], env)

    assert done.returncode == 1
    assert "s3://models/digits/edge.onnx" in done.stderr
    assert not (tmp_path / "edge.onnx").exists()


def test_wrong_s3_credentials_name_the_url(tmp_path: Path, s3_env: dict[str, str]) -> None:
    done = initializer(["s3://nobucket/edge.onnx", str(tmp_path / "edge.onnx")], s3_env)

    assert done.returncode == 1 and "s3://nobucket/edge.onnx" in done.stderr


def test_a_second_run_keeps_what_is_already_complete(tmp_path: Path, http_root: str) -> None:
    dest = tmp_path / "edge.onnx"
    dest.write_bytes(PAYLOAD)
    sha = hashlib.sha256(PAYLOAD).hexdigest()

    done = initializer(["--sha256", f"0={sha}", f"{http_root}/digits/gone.onnx", str(dest)])

    assert done.returncode == 0, done.stderr  # nothing fetched: the file is there and matches


def test_bad_arguments_exit_2() -> None:
    assert initializer(["only-a-source"]).returncode == 2
    assert initializer(["--sha256", "3=abc", "a", "b"]).returncode == 2


def test_a_broken_s3_transfer_resumes_from_the_part_file(tmp_path: Path, s3_env: dict[str, str]) -> None:
    from workers.storage.initializer import fetch_s3_object

    dest = tmp_path / "edge.onnx"
    dest.with_name("edge.onnx.part").write_bytes(PAYLOAD[:1000])  # what a killed init container left

    fetch_s3_object("s3://models/digits/edge.onnx", dest, hashlib.sha256(PAYLOAD).hexdigest(), s3_env)

    assert dest.read_bytes() == PAYLOAD and not dest.with_name("edge.onnx.part").exists()


def test_a_wrong_s3_checksum_leaves_nothing(tmp_path: Path, s3_env: dict[str, str]) -> None:
    from sedna.common.downloads import DownloadError
    from workers.storage.initializer import fetch_s3_object

    with pytest.raises(DownloadError, match=r"s3://models/digits/edge\.onnx"):
        fetch_s3_object("s3://models/digits/edge.onnx", tmp_path / "out" / "e.onnx", "0" * 64, s3_env)
    assert list((tmp_path / "out").iterdir()) == []
