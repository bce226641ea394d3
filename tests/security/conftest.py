"""Real parties for the attacks: mosquitto, a GM process, the digits models, an RSS probe."""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from sedna.service.mqtt.testing import Mosquitto, find_mosquitto
from tests.support.procs import free_port, start_module, stop, wait_for_port

TOKEN = "security-test-token"


def eventually(predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.05) -> Any:
    """Poll ``predicate`` until truthy (returning its value); None after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return None


class PeakRss:
    """Samples a process's RSS in a thread; ``growth_mb`` is the peak over the RSS at start."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 2**20


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One mosquitto for the attacks (127.0.0.1, anonymous, persistence in tmp)."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto binary not installed (apt-get install mosquitto)")
    with Mosquitto(tmp_path_factory.mktemp("mosquitto")) as broker:
        yield broker


@pytest.fixture(scope="session")
def digits_models(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The digits edge and cloud models (scikit-learn's bundled data, no download)."""
    from examples.joint_inference.digits.models import build_models

    cache = getattr(pytestconfig, "cache", None)
    directory = cache.mkdir("digits-models") if cache is not None else tmp_path_factory.mktemp("digits-models")
    with (Path(directory) / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return build_models(Path(directory))


class GMProcess:
    """``python -m gm`` (local backend) on free loopback ports, with an HTTP client of its API."""

    def __init__(self, root: Path) -> None:
        self.state = root / "gm-state"
        self.state.mkdir(parents=True)
        (self.state / "token").write_text(TOKEN + "\n")
        self.port = free_port()
        self.log = root / "gm.log"
        self.proc = start_module("gm", {"LOG_LEVEL": "WARNING"}, self.log,
                                 ["--backend", "local", "--state-dir", str(self.state), "--api-port", str(self.port),
                                  "--hub-port", "0", "--nodes", "cloud"])
        wait_for_port(self.port, 60, self.proc, self.log)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30, trust_env=False,
                                 headers={"Authorization": f"Bearer {TOKEN}"})

    def healthy(self) -> bool:
        return self.proc.poll() is None and self.http.get("/healthz").text == "ok"

    def close(self) -> None:
        self.http.close()
        stop(self.proc)


@pytest.fixture(scope="module")
def gm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GMProcess]:
    process = GMProcess(tmp_path_factory.mktemp("gm"))
    try:
        yield process
    finally:
        process.close()
