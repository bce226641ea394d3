"""The last lines a failing worker wrote, for condition messages, and where to read the rest.

A :data:`LogTail` returns the last lines of one container's log ('' when there is none or it
cannot be read: a message is never worth failing a reconcile). :func:`log_tail_for` picks the
source: the local runtime's files (``<state>/logs/<namespace>_<pod>_<container>.log``, see
:mod:`gm.cluster.local.logs`) when the settings name that directory, else the cluster's Pod log
subresource when the backend has one (``KubeCluster.pod_log``), else nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gm.cluster.interface import Cluster, Obj
from gm.cluster.local.logs import log_path, tail
from gm.settings import ControllerSettings

LogTail = Callable[[str, str, str, int], str]
"""``(namespace, pod, container, lines) -> text`` ('' when unavailable)."""
TAIL_LINES = 3
"""How many log lines a condition message quotes."""
LINE_WIDTH = 200
"""Longer quoted lines are cut."""


def no_logs(namespace: str, pod: str, container: str, lines: int) -> str:
    """A :data:`LogTail` that has nothing."""
    return ""


def file_logs(log_dir: str | Path) -> LogTail:
    """A :data:`LogTail` over the local runtime's log files in ``log_dir``."""

    def read(namespace: str, pod: str, container: str, lines: int) -> str:
        try:
            return tail(log_path(log_dir, namespace, pod, container), lines)
        except (OSError, ValueError):
            return ""

    return read


def cluster_logs(cluster: Cluster) -> LogTail:
    """A :data:`LogTail` through the backend's ``pod_log`` (the Kubernetes Pod log subresource), if it has one."""
    reader = getattr(cluster, "pod_log", None)
    if reader is None:
        return no_logs

    def read(namespace: str, pod: str, container: str, lines: int) -> str:
        try:
            return str(reader(namespace, pod, container, lines))
        except Exception:  # best effort: the log is decoration on a message, never a reason to fail
            return ""

    return read


def log_tail_for(cluster: Cluster, settings: ControllerSettings) -> LogTail:
    """The log source for ``settings``' backend (see the module docstring)."""
    return file_logs(settings.pod_log_dir) if settings.pod_log_dir else cluster_logs(cluster)


def last_lines(logs: LogTail, namespace: str, pod: str, container: str, lines: int = TAIL_LINES) -> str:
    """``last log lines: a | b | c`` for a message, or '' when the container wrote nothing readable."""
    text = logs(namespace, pod, container, lines + 10) if pod and container else ""  # blank lines do not count
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    if not kept:
        return ""
    cut = [line if len(line) <= LINE_WIDTH else line[:LINE_WIDTH - 3] + "..." for line in kept]
    return "last log lines: " + " | ".join(cut)


def log_hint(namespace: str, pod: Obj | None, name: str, settings: ControllerSettings) -> str:
    """Where the Pod's whole log is: the runtime's ``log: <path>``, the local files, or the command to read it."""
    detail = str(((pod or {}).get("status") or {}).get("message") or "")
    if "log:" in detail:
        return detail[detail.index("log:"):]
    if settings.pod_log_dir:
        containers = [str(c.get("name") or "") for c in ((pod or {}).get("spec") or {}).get("containers") or []]
        paths = [str(log_path(settings.pod_log_dir.rstrip("/"), namespace, name, c)) for c in containers if c]
        if paths:
            return "log: " + ", ".join(paths)
    return f"log: sedna logs -n {namespace} {name} (kubectl logs on Kubernetes)"
