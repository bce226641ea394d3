"""Start the example's processes (KB server, workers) on 127.0.0.1 and stop them."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(module: str, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``python -m module`` with ``env`` added, output appended to ``log``."""
    with log.open("ab") as handle:
        return subprocess.Popen([sys.executable, "-m", module], env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                                stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def run(module: str, env: Mapping[str, str], log: Path, timeout: float = 300.0) -> None:
    """Run a worker to completion; RuntimeError with its log's tail when it fails."""
    proc = start(module, env, log)
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        stop(proc)
        raise RuntimeError(f"{module} did not finish within {timeout}s; see {log}") from None
    if code != 0:
        raise RuntimeError(f"{module} exited with {code}:\n{log.read_text(errors='replace')[-3000:]}")


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout}s; see {log}")


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
