"""Helpers for KB tests: blobs and index documents, a PostgreSQL cluster in tmp_path."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.procs import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def write_model(path: Path, value: float = 0.0) -> Path:
    np.savez(path, W=np.full((2, 3), value, np.float32), b=np.zeros(3, np.float32))
    return path


def write_prototypes(path: Path) -> Path:
    np.save(path, np.ones((3, 2), np.float32))
    return path


def index(model: dict[str, Any], prototypes: dict[str, Any], entry: str = "site-a", **group: Any) -> dict[str, Any]:
    return {"apiVersion": "sedna.io/kb-index/v1", "attribute": ["site"],
            "seen_task": {"task_groups": [{
                "entry": entry, "tasks": [{"entry": entry, "meta_attr": [entry], "samples": {"count": 40}}],
                "model": {"blob": model, "metrics": {"accuracy": 0.9}}, "prototypes": prototypes,
                "calibration": {"distance_threshold": 3.0}, **group}]}}


@contextlib.contextmanager
def postgres(tmp_path: Path) -> Iterator[str]:
    """A throw-away PostgreSQL cluster on 127.0.0.1; yields its URL."""
    port = free_port()
    env = {**os.environ, "LC_ALL": "C"}
    user: list[str] = []
    root = tmp_path
    if os.geteuid() == 0:  # initdb refuses root: run the cluster as nobody, in a directory nobody can reach
        user = ["runuser", "-u", "nobody", "--"]
        root = Path(tempfile.mkdtemp(prefix="kb-pg-"))
        root.chmod(0o755)
        shutil.chown(root, "nobody")
    data = root / "pg"
    subprocess.run([*user, str(PG_BIN / "initdb"), "-D", str(data), "-U", "kb", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True, env=env)
    log = data / "server.log"
    subprocess.run([*user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o",
                    f"-p {port} -h 127.0.0.1 -k {data}", "start"], check=True, capture_output=True, env=env)
    try:
        yield f"postgresql://kb@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, env=env)
        if root != tmp_path:
            shutil.rmtree(root, ignore_errors=True)


def postgres_available() -> str:
    """Why PostgreSQL tests cannot run here ("" when they can)."""
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL 15 binaries not found in {PG_BIN} (apt-get install postgresql)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg 3 is not installed (pip install 'psycopg[binary]')"
    return ""
