"""FileOps and fetch over s3:// against a real S3 server (moto in server mode, 127.0.0.1)."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sedna.common import s3
from sedna.common.downloads import DownloadError, fetch
from sedna.common.errors import ConfigError
from sedna.common.file_ops import FileOps
from tests.support.procs import free_port, running

pytestmark = pytest.mark.processes

pytest.importorskip("moto")


@pytest.fixture
def bucket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A bucket on a moto server; the endpoint has no scheme, as a Sedna secret's s3-endpoint."""
    port = free_port()
    with running("moto.server", {}, tmp_path / "moto.log", port, ["-H", "127.0.0.1", "-p", str(port)]):
        monkeypatch.setenv("S3_ENDPOINT_URL", f"127.0.0.1:{port}")
        monkeypatch.setenv("S3_USE_HTTPS", "0")
        monkeypatch.setenv("ACCESS_KEY_ID", "sedna-test")
        monkeypatch.setenv("SECRET_ACCESS_KEY", "sedna-test-secret")
        s3.S3Settings.from_env().client().create_bucket(Bucket="models")
        yield "s3://models"


def test_endpoint_follows_the_usehttps_convention() -> None:
    env = {"S3_ENDPOINT_URL": "minio.local:9000", "ACCESS_KEY_ID": "ak", "SECRET_ACCESS_KEY": "sk"}
    assert s3.S3Settings.from_env(env).endpoint_url == "https://minio.local:9000"
    assert s3.S3Settings.from_env({**env, "S3_USE_HTTPS": "0"}).endpoint_url == "http://minio.local:9000"
    assert s3.S3Settings.from_env({"S3_ENDPOINT_URL": "http://h:1"}).endpoint_url == "http://h:1"
    assert s3.S3Settings.from_env({}).endpoint_url is None
    with pytest.raises(ConfigError, match="S3_ENDPOINT_URL='ftp://h' must be an http"):
        s3.S3Settings.from_env({"S3_ENDPOINT_URL": "ftp://h"})


def test_a_missing_boto3_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install sedna-py\[s3\]"):
        s3.S3Settings.from_env({}).client()


def test_files_and_folders_go_up_and_come_back(tmp_path: Path, bucket: str) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx-bytes" * 1000)
    assert FileOps.upload(str(model), f"{bucket}/v1/model.onnx", clean=False) == f"{bucket}/v1/model.onnx"
    folder = tmp_path / "ckpt"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    FileOps.upload(str(folder), f"{bucket}/ckpt", clean=False)

    got = FileOps.download(f"{bucket}/v1/model.onnx", str(tmp_path / "back" / "model.onnx"),
                           sha256=hashlib.sha256(model.read_bytes()).hexdigest())
    assert Path(got).read_bytes() == model.read_bytes()
    back = Path(FileOps.download(f"{bucket}/ckpt", str(tmp_path / "ckpt-back")))
    assert (back / "a.txt").read_text() == "a" and (back / "sub" / "b.txt").read_text() == "b"
    assert s3.exists(f"{bucket}/ckpt") and s3.exists(f"{bucket}/v1/model.onnx") and not s3.exists(f"{bucket}/nope")


def test_dump_to_s3_and_load_back_without_pickle(bucket: str) -> None:
    url = FileOps.dump({"round": 3, "metrics": {"acc": 0.9}}, f"{bucket}/state/info.json")
    assert FileOps.load(url) == {"round": 3, "metrics": {"acc": 0.9}}


def test_errors_name_the_s3_url(tmp_path: Path, bucket: str) -> None:
    with pytest.raises(s3.S3Error, match=r"'s3://models/absent' names no object and no folder"):
        FileOps.download(f"{bucket}/absent", str(tmp_path / "x"))
    with pytest.raises(s3.S3Error, match=r"s3 transfer of 's3://models/none.bin' failed"):
        fetch(f"{bucket}/none.bin", tmp_path / "none.bin")
    (tmp_path / "m.bin").write_bytes(b"1")
    FileOps.upload(str(tmp_path / "m.bin"), f"{bucket}/m.bin", clean=False)
    with pytest.raises(DownloadError, match=r"'s3://models/m.bin' has sha256"):
        fetch(f"{bucket}/m.bin", tmp_path / "m2.bin", sha256="0" * 64)
    assert not (tmp_path / "m2.bin").exists()
