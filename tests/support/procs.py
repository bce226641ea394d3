"""Start real child processes on 127.0.0.1 and wait for them to listen."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None,
                  log: Path | None = None) -> None:
    """Block until 127.0.0.1:``port`` accepts connections; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            detail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}:\n{detail}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    detail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout}s\n{detail}")


def start_module(module: str, env: Mapping[str, str], log: Path,
                 args: list[str] | None = None) -> subprocess.Popen[bytes]:
    """Run ``python -m module`` with ``env`` added to this environment, output to ``log``."""
    full_env = {**os.environ, **env}
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    handle = log.open("ab")
    try:
        return subprocess.Popen([sys.executable, "-m", module, *(args or [])], env=full_env,
                                stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        handle.close()


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate ``proc`` (SIGTERM, then SIGKILL) and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


@contextlib.contextmanager
def running(module: str, env: Mapping[str, str], log: Path, port: int | None = None,
            args: list[str] | None = None, timeout: float = 60.0) -> Iterator[subprocess.Popen[bytes]]:
    """Context manager: a child process that is listening on ``port`` (if given) and stopped on exit."""
    proc = start_module(module, env, log, args)
    try:
        if port is not None:
            wait_for_port(port, timeout, proc, log)
        yield proc
    finally:
        stop(proc)
