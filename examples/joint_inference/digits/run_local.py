"""The digits joint-inference example on the embedded control plane, from YAML.

``sedna local up`` → build the two ONNX models → ``sedna apply -f resources.yaml``
(model URLs rewritten to the built files) → wait until the JointInferenceService is
Running → find the edge pod's IP with ``sedna get pods -o json`` → stream the test split
through the edge worker and print the report → ``sedna local down``. Everything goes
through the ``sedna`` command line, as a user would type it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
SERVICE = "digits"
EDGE_GRPC_PORT = 5101
LABEL = "jointinferenceservice.sedna.io"


def sedna(*args: str, state_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``sedna ARGS --state-dir DIR`` (via ``python -m sedna``) and return its output."""
    cmd = [sys.executable, "-m", "sedna", *args, "--state-dir", str(state_dir)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise RuntimeError(f"`sedna {' '.join(args)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done


def manifests(models: dict[str, Any], source: Path = HERE / "resources.yaml") -> str:
    """The example's YAML with each Model's url pointing at the built file."""
    docs = [d for d in yaml.safe_load_all(source.read_text()) if d]
    for doc in docs:
        if doc["kind"] == "Model":
            role = "edge" if doc["metadata"]["name"].endswith("-edge") else "cloud"
            doc["spec"]["url"] = str(Path(str(models[role])).resolve())
    return yaml.safe_dump_all(docs, sort_keys=False)


def wait_running(state_dir: Path, timeout: float = 120.0) -> dict[str, Any]:
    """Poll ``sedna get ji digits -o json`` until its phase is Running; return it."""
    deadline, last = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        done = sedna("get", "ji", SERVICE, "-o", "json", state_dir=state_dir, check=False)
        if done.returncode == 0:
            last = json.loads(done.stdout)
            if (last.get("status") or {}).get("phase") == "Running":
                return last
        time.sleep(0.5)
    raise TimeoutError(f"{SERVICE} was not Running within {timeout:.0f}s; status: {json.dumps(last.get('status'))}")


def edge_pod_ip(state_dir: Path) -> str:
    """The podIP of the running edge worker, from ``sedna get pods -o json``."""
    pods = json.loads(sedna("get", "pods", "-o", "json", state_dir=state_dir).stdout)["items"]
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        if labels.get(f"{LABEL}/name") == SERVICE and labels.get(f"{LABEL}/worker-type") == "edge" and \
                (pod.get("status") or {}).get("phase") == "Running" and pod["status"].get("podIP"):
            return str(pod["status"]["podIP"])
    raise RuntimeError("no running edge pod with an IP")


def wait_listening(host: str, port: int, timeout: float = 60.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"the edge worker did not listen on {host}:{port} within {timeout:.0f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=None, help="models and state (default: a temp dir)")
    parser.add_argument("--state-dir", type=Path, default=None, help="sedna state dir (default: <workdir>/state)")
    parser.add_argument("--limit", type=int, default=None, help="stream only the first N test samples")
    parser.add_argument("--keep", action="store_true", help="leave the cluster up afterwards")
    args = parser.parse_args(argv)
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="sedna-digits-"))).resolve()
    state_dir = (args.state_dir or workdir / "state").resolve()
    from examples.joint_inference.digits.models import build_models
    from examples.joint_inference.digits.report import stream_and_report

    print(f"[1/5] sedna local up (state dir {state_dir})", flush=True)
    print(sedna("local", "up", "--nodes", "cloud,edge-0", state_dir=state_dir).stdout.rstrip(), flush=True)
    try:
        print("[2/5] building the edge and cloud models", flush=True)
        models = build_models(workdir / "models")
        applied = workdir / "resources.yaml"
        applied.write_text(manifests(models))
        print(f"[3/5] sedna apply -f {applied}", flush=True)
        print(sedna("apply", "-f", str(applied), state_dir=state_dir).stdout.rstrip(), flush=True)
        print("[4/5] waiting for the service to be Running", flush=True)
        wait_running(state_dir)
        host = edge_pod_ip(state_dir)
        wait_listening(host, EDGE_GRPC_PORT)
        print(f"[5/5] streaming the test split through the edge worker at {host}:{EDGE_GRPC_PORT}", flush=True)
        stream_and_report(host, EDGE_GRPC_PORT, SERVICE, models, limit=args.limit)
    finally:
        if not args.keep:
            print(sedna("local", "down", state_dir=state_dir, check=False).stdout.rstrip(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
