"""A real local API (SQLite store + REST server on 127.0.0.1) and the real ``sedna`` CLI as a process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gm.cluster.interface import Obj
from gm.cluster.local.api import ServerHandle, create_api, serve_api
from gm.cluster.local.store import LocalStore

TOKEN = "cli-test-token"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Api:
    """The server, its store and how to run the CLI against it."""

    store: LocalStore
    handle: ServerHandle
    server: str

    def args(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "sedna", *args, "--server", self.server, "--token", TOKEN]

    def sedna(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.args(*args), capture_output=True, text=True, timeout=timeout, cwd=ROOT)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.args(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=ROOT, bufsize=1)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    store = LocalStore(tmp_path / "state.db", keep_changes=50)
    handle = serve_api(create_api(store, TOKEN))
    try:
        yield Api(store, handle, f"http://127.0.0.1:{handle.port}")
    finally:
        handle.stop()
        store.close()


def model(name: str, **status: Any) -> Obj:
    obj: Obj = {"apiVersion": "sedna.io/v1alpha1", "kind": "Model", "metadata": {"name": name, "namespace": "default"},
                "spec": {"url": f"/models/{name}.onnx", "format": "onnx"}}
    return obj
