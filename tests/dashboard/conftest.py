"""A real Global Manager (``python -m gm``, local backend, ``--dry-run``: no worker processes) and a browser."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dashboard.browser import chromium, require_chromium
from tests.support.procs import start_module, stop

ROOT = Path(__file__).resolve().parents[2]
EDGE_TOKEN = "edge-0-hub-token"


@dataclass
class GM:
    """The running GM: its API, dashboard URL, token and state dir."""

    proc: subprocess.Popen[bytes]
    state: Path
    token: str
    api: str
    hub: str
    dashboard: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api, headers={"Authorization": f"Bearer {self.token}"}, timeout=15)

    def sedna(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sedna", *args, "--state-dir", str(self.state)],
                              capture_output=True, text=True, timeout=60, cwd=ROOT)

    def patch_status(self, plural: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        with self.client() as client:
            resp = client.patch(f"/apis/sedna.io/v1alpha1/namespaces/default/{plural}/{name}/status",
                                json={"status": status})
            resp.raise_for_status()
            return dict(resp.json())


@pytest.fixture(scope="module")
def gm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GM]:
    state = tmp_path_factory.mktemp("gm-state")
    token = secrets.token_urlsafe(24)
    (state / "token").write_text(token + "\n")
    (state / "node-tokens").write_text(f"edge-0={EDGE_TOKEN}\n")
    proc = start_module("gm", {"LOG_LEVEL": "WARNING"}, state / "gm.log",
                        ["--backend", "local", "--state-dir", str(state), "--api-port", "0", "--hub-port", "0",
                         "--nodes", "cloud,edge-0", "--dry-run"])
    try:
        ready = _wait_ready(state, proc)
        yield GM(proc, state, token, ready["api"], ready["hub"], ready["dashboard"])
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    with chromium() as context:
        yield context


def _wait_ready(state: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the GM exited with {proc.returncode}: {(state / 'gm.log').read_text()[-3000:]}")
        try:
            ready = json.loads((state / "gm.ready.json").read_text())
            if ready.get("pid") == proc.pid:
                return dict(ready)
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the GM was not ready within {timeout}s: {(state / 'gm.log').read_text()[-3000:]}")
