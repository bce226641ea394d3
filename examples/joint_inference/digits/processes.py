"""Run the digits joint-inference example as two plain worker processes (no control plane).

This is what a user does by hand: start ``workers.joint_inference.cloud`` and
``workers.joint_inference.edge`` with the env contract, then stream the test split
through the edge. ``python -m examples.joint_inference.digits.processes``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from examples.joint_inference.digits.models import build_models
from examples.joint_inference.digits.report import stream_and_report

SERVICE = "digits"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited ({proc.returncode}); see {log}:\n{log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"worker did not listen on {port} within {timeout}s; see {log}")


def _start(module: str, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen([sys.executable, "-m", module], env={**os.environ, **env}, stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)


def run(workdir: Path, hem_threshold: float = 0.6, limit: int | None = None) -> dict[str, Any]:
    """Start both workers, stream the split, stop them; return the report figures."""
    models = build_models(workdir / "models")
    rest, grpc_port, edge_rest, edge_grpc = (_free_port() for _ in range(4))
    common = {"NAMESPACE": "default", "SERVICE_NAME": SERVICE, "INTRA_OP_THREADS": "1"}
    cloud_env = {**common, "WORKER_NAME": "digits-cloud", "MODEL_URL": str(models["cloud"]),
                 "BIG_MODEL_BIND_PORT": str(rest), "BIG_MODEL_GRPC_PORT": str(grpc_port)}
    edge_env = {**common, "WORKER_NAME": "digits-edge", "MODEL_URL": str(models["edge"]),
                "BIG_MODEL_IP": "127.0.0.1", "BIG_MODEL_PORT": str(rest), "BIG_MODEL_GRPC_PORT": str(grpc_port),
                "EDGE_BIND_PORT": str(edge_rest), "EDGE_GRPC_PORT": str(edge_grpc), "HEM_NAME": "CrossEntropy",
                "HEM_PARAMETERS": f'[{{"key": "threshold_cross_entropy", "value": "{hem_threshold}"}}]',
                "STATE_DIR": str(workdir / "edge-state")}
    procs = []
    try:
        cloud = _start("workers.joint_inference.cloud", cloud_env, workdir / "cloud.log")
        procs.append(cloud)
        _wait(grpc_port, cloud, workdir / "cloud.log")
        edge = _start("workers.joint_inference.edge", edge_env, workdir / "edge.log")
        procs.append(edge)
        _wait(edge_grpc, edge, workdir / "edge.log")
        return stream_and_report("127.0.0.1", edge_grpc, SERVICE, models, limit=limit)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=None, help="where models and logs go (default: a temp dir)")
    parser.add_argument("--limit", type=int, default=None, help="stream only the first N test samples")
    args = parser.parse_args(argv)
    from examples._workdir import workdir

    with workdir(args.workdir, "sedna-digits-") as path:
        run(path, limit=args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
