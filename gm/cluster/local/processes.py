"""Turning a Pod's container spec into a running process group, and taking it down again.

:func:`container_env` resolves ``env`` (plain values, ``valueFrom.fieldRef`` and ``secretKeyRef``) and
:func:`container_argv` builds the command line (``$(VAR)`` expanded as Kubernetes does; a
leading ``python``/``python3`` becomes this interpreter, since images are not run); a container
with no ``command`` runs what the image catalog (:mod:`.images`) says its image runs. Each
container runs in its own session so :func:`kill_group` reaches its children too.
:class:`PidFile` remembers what is running so a restarted runtime can adopt what a previous one
left running (:class:`Adopted`), and kill what no Pod claims. Used by :mod:`.runtime`, which owns
restart policy and status.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gm.cluster.interface import Invalid, Obj
from gm.cluster.local.images import ImageEntry

BASE_ENV_KEYS = ("PATH", "PYTHONPATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "VIRTUAL_ENV", "SYSTEMROOT")
FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "status.podIP",
               "status.hostIP", "spec.serviceAccountName")
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def default_base_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The part of ``environ`` (default: this process's) every container inherits."""
    source = os.environ if environ is None else environ
    env = {k: source[k] for k in BASE_ENV_KEYS if k in source}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _field(pod: Obj, path: str, where: str) -> str:
    if path.startswith("metadata.labels['") or path.startswith("metadata.annotations['"):
        section, _, key = path.partition("['")
        return str(((pod.get("metadata") or {}).get(section.split(".")[1]) or {}).get(key.rstrip("']"), ""))
    if path not in FIELD_PATHS:
        raise Invalid(f"{where}: unsupported fieldPath {path!r} (supported: {', '.join(FIELD_PATHS)})",
                      [(where, f"unsupported fieldPath {path!r}")])
    value: Any = pod
    for part in path.split("."):
        value = (value or {}).get(part)
    return "" if value is None else str(value)


def container_env(pod: Obj, container: Obj, index: int, base: Mapping[str, str],
                  secret: Callable[[Mapping[str, Any], str], str | None] | None = None,
                  section: str = "containers") -> dict[str, str]:
    """``base`` plus the container's ``env``; raises :class:`Invalid` naming the bad entry.

    ``secret`` resolves a ``valueFrom.secretKeyRef`` (None for an optional one that is absent); without
    it such a reference is invalid. ``section`` names the container list in messages (``initContainers``).
    """
    env = dict(base)
    for i, item in enumerate(container.get("env") or []):
        where = f"spec.{section}[{index}].env[{i}]"
        if not isinstance(item, Mapping) or not item.get("name"):
            raise Invalid(f"{where}.name: required", [(f"{where}.name", "Required value")])
        if "valueFrom" in item:
            source = item["valueFrom"] or {}
            key_ref = source.get("secretKeyRef")
            if isinstance(key_ref, Mapping) and key_ref.get("name") and key_ref.get("key") and secret is not None:
                value = secret(key_ref, f"{where}.valueFrom.secretKeyRef")
                if value is not None:
                    env[item["name"]] = value
                continue
            ref = source.get("fieldRef")
            if not isinstance(ref, Mapping) or not ref.get("fieldPath"):
                msg = ("only valueFrom.fieldRef and valueFrom.secretKeyRef (name, key) are supported by the local "
                       "runtime")
                raise Invalid(f"{where}.valueFrom: {msg}", [(f"{where}.valueFrom", msg)])
            env[item["name"]] = _field(pod, str(ref["fieldPath"]), f"{where}.valueFrom.fieldRef.fieldPath")
        else:
            env[item["name"]] = _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), str(item.get("value", "")))
    return env


def container_argv(container: Obj, index: int, env: Mapping[str, str], image: ImageEntry | None = None) -> list[str]:
    """``command`` + ``args`` with ``$(VAR)`` expanded; ``python`` means this interpreter.

    Without a ``command``, ``image`` (the image's catalog entry) supplies it, and its ``args``
    too unless the container gives its own (Kubernetes' ENTRYPOINT/CMD rules).
    """
    command = [str(c) for c in container.get("command") or []]
    args = container.get("args")
    if not command and image is not None:
        command = list(image.command)
        if args is None:
            args = list(image.args)
    if not command:
        field = f"spec.containers[{index}].command"
        msg = "a command is required: the local runtime ignores images and runs command + args"
        raise Invalid(f"{field}: {msg}", [(field, msg)])
    argv = [_VAR.sub(lambda m: env.get(m.group(1), m.group(0)), str(a))
            for a in command + list(args or [])]
    if os.path.basename(argv[0]) in ("python", "python3"):
        argv[0] = sys.executable
    return argv


def spawn(argv: list[str], env: Mapping[str, str], log: Path, cwd: str | None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session, stdout+stderr appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        return subprocess.Popen(argv, env=dict(env), cwd=cwd or None, stdin=subprocess.DEVNULL, stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)


def kill_group(pid: int, sig: int = signal.SIGTERM) -> None:
    """Signal the process group led by ``pid`` (quietly, if it is gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def process_start_time(pid: int) -> float | None:
    """When ``pid`` started (to tell it from a recycled pid), or None if it is gone."""
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


class PidFile:
    """``{key: [pid, start time]}`` of the runtime's live containers, rewritten on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, list[float]] = {}

    def add(self, key: str, pid: int) -> None:
        self._entries[key] = [pid, process_start_time(pid) or 0.0]
        self._save()

    def remove(self, key: str) -> None:
        if self._entries.pop(key, None) is not None:
            self._save()

    def survivors(self) -> dict[str, int]:
        """``{key: pid}`` of the process groups a previous runtime recorded that still run (the same process:
        a recycled pid has another start time). They stay recorded until :meth:`remove` or :meth:`add`."""
        try:
            entries = json.loads(self.path.read_text())
        except (OSError, ValueError):
            entries = {}
        alive: dict[str, int] = {}
        for key, value in entries.items() if isinstance(entries, dict) else []:
            try:
                pid, started = int(value[0]), float(value[1])
            except (TypeError, ValueError, IndexError):
                continue
            now_started = process_start_time(pid)
            if now_started is not None and abs(now_started - started) < 1.0:
                alive[str(key)] = pid
                self._entries[str(key)] = [pid, started]
        self._save()
        return alive

    def kill_orphans(self) -> list[int]:
        """Kill process groups recorded by a previous runtime that are still alive; return their pids."""
        killed = []
        for key, pid in self.survivors().items():
            kill_group(pid, signal.SIGKILL)
            self.remove(key)
            killed.append(pid)
        return killed

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._entries))
        os.replace(tmp, self.path)


class Adopted:
    """A container process started by a previous runtime (a GM that crashed or was restarted), watched
    through its pid: the part of :class:`subprocess.Popen` the runtime uses. Not our child, so its exit
    code cannot be known: :attr:`returncode` is :data:`UNKNOWN_EXIT` once it has gone."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._started = process_start_time(pid)

    def poll(self) -> int | None:
        if self.returncode is None:
            import psutil

            try:
                proc = psutil.Process(self.pid)
                gone = proc.status() == psutil.STATUS_ZOMBIE or abs(proc.create_time() - (self._started or 0)) >= 1
            except psutil.Error:
                gone = True
            if gone:
                self.returncode = UNKNOWN_EXIT
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
            time.sleep(0.05)
        return UNKNOWN_EXIT


def release(proc: Any) -> None:
    """Stop tracking ``proc`` while it keeps running (for the next runtime to adopt), without the
    "still running" warning :class:`subprocess.Popen` gives when dropped unwaited."""
    if isinstance(proc, subprocess.Popen) and proc.poll() is None:
        proc.returncode = UNKNOWN_EXIT


UNKNOWN_EXIT = -1
"""The exit code of an :class:`Adopted` process that has gone (it is not our child: the code is lost)."""
