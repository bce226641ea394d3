"""A moto S3 server process on 127.0.0.1 for tests that need a real S3 wire."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from sedna.common import s3
from tests.support.procs import free_port, running


@contextlib.contextmanager
def moto_s3(log_dir: Path, buckets: Iterable[str] = ()) -> Iterator[dict[str, str]]:
    """Run moto until exit; yield Sedna's S3 env for it, with ``buckets`` created."""
    port = free_port()
    env = {"S3_ENDPOINT_URL": f"127.0.0.1:{port}", "S3_USE_HTTPS": "0", "ACCESS_KEY_ID": "sedna-test",
           "SECRET_ACCESS_KEY": "sedna-test-secret"}
    with running("moto.server", {}, log_dir / "moto.log", port, ["-H", "127.0.0.1", "-p", str(port)]):
        client = s3.S3Settings.from_env(env).client()
        for bucket in buckets:
            client.create_bucket(Bucket=bucket)
        yield env
