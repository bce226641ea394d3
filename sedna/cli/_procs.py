"""Process helpers for ``sedna local``: spawn detached, wait for ports, stop whole trees."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import psutil


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def module_available(name: str) -> bool:
    """Whether ``python -m <name>`` would find a ``__main__`` (the package is located, not imported)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return False
    return any((Path(p) / "__main__.py").exists() for p in spec.submodule_search_locations)


def spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session (it outlives this CLI), output appended to ``log``."""
    with log.open("ab") as handle:
        return subprocess.Popen(cmd, env=env, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (and is not a zombie)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_port(port: int, timeout: float, pid: int | None = None) -> bool:
    """Wait until 127.0.0.1:``port`` accepts; False on timeout or when ``pid`` dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
        if pid is not None and not alive(pid):
            return False
        time.sleep(0.1)
    return False


def _marked(marker: tuple[str, str]) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get(marker[0]) == marker[1]:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def terminate(pids: Iterable[int], timeout: float) -> None:
    """SIGTERM ``pids``, wait up to ``timeout``, then SIGKILL the survivors."""
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(pid))
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, survivors = psutil.wait_procs(procs, timeout=timeout)
    for proc in survivors:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(survivors, timeout=5)


def _recorded(pid_file: Path | None) -> list[psutil.Process]:
    """Worker process groups the local runtime recorded in ``pid_file`` (``{key: [pid, start time]}``) that
    still run, with their children (a recycled pid has another start time: it belongs to someone else).
    They outlive a GM killed with ``kill -9``; this is how ``down`` still finds them."""
    if pid_file is None or not pid_file.exists():
        return []
    try:
        data = json.loads(pid_file.read_text())
    except (OSError, ValueError):
        return []
    found = []
    for value in (data.values() if isinstance(data, dict) else []):
        try:
            pid, started = int(value[0]), float(value[1])
        except (TypeError, ValueError, IndexError):
            continue
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if abs(proc.create_time() - started) < 1.0:
                found.append(proc)
                found.extend(proc.children(recursive=True))
    return found


def stop_all(pids: list[int], marker: tuple[str, str], pid_file: Path | None = None, timeout: float = 20.0) -> int:
    """Stop ``pids`` gracefully (they stop their own children), then anything left of their trees, of the
    runtime's ``pid_file`` or carrying ``marker`` in its environment; return how many processes were stopped."""
    tree: dict[int, psutil.Process] = {}
    for proc in _recorded(pid_file):
        tree[proc.pid] = proc
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            tree[pid] = root
            for child in root.children(recursive=True):
                tree[child.pid] = child
    for proc in _marked(marker):
        tree.setdefault(proc.pid, proc)
    terminate([p for p in pids if p in tree], timeout)
    leftovers = [p for p in tree.values() if alive(p.pid) and p.is_running()]
    leftovers += [p for p in _marked(marker) if p.pid not in {q.pid for q in leftovers}]
    terminate([p.pid for p in leftovers], 5.0)
    return len(tree)
