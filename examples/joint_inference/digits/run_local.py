"""The digits joint-inference example on the embedded control plane, from YAML.

``sedna local up`` (with its embedded MQTT broker) → build the two ONNX models →
``sedna apply -f resources.yaml`` (model URLs rewritten to the built files) → wait until the
JointInferenceService is Running → find the edge pod's IP with ``sedna get pods -o json`` →
stream the test split through the edge worker over gRPC and print the report → play the same
split from simulated devices over MQTT (``sedna device simulate --service digits``, through the
embedded broker to the edge worker's device gateway) and print its summary → ``sedna local down``.
Everything goes through the ``sedna`` command line, as a user would type it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
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


def mqtt_broker(state_dir: Path) -> str:
    """The broker ``sedna local up`` gave the edge workers (``MQTT_BROKER``), from the GM's ready file."""
    broker = json.loads((state_dir / "gm.ready.json").read_text()).get("mqtt_broker")
    if not broker:
        raise RuntimeError(f"no MQTT broker recorded in {state_dir / 'gm.ready.json'}")
    return str(broker)


def wait_gateway_online(broker: str, service: str = SERVICE, namespace: str = "default",
                        timeout: float = 60.0, credentials: tuple[str, str] | None = None) -> None:
    """Wait until the edge worker's device gateway announces itself ``online`` (its retained status topic);
    ``credentials`` (username, password) for a broker that requires them, as ``sedna local up``'s does."""
    import threading

    import paho.mqtt.client as mqtt

    host, _, port = broker.rpartition(":")
    online = threading.Event()

    def on_message(_client: Any, _userdata: Any, message: Any) -> None:
        try:
            if json.loads(message.payload).get("state") == "online":
                online.set()
        except (ValueError, AttributeError):
            pass

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"run-local-{time.monotonic_ns()}",
                         protocol=mqtt.MQTTv311)
    if credentials:
        client.username_pw_set(*credentials)
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(f"sedna/{namespace}/{service}/status", qos=1)
    client.connect(host, int(port))
    client.loop_start()
    try:
        if not online.wait(timeout):
            raise TimeoutError(f"the device gateway of {service!r} was not online at {broker} within {timeout:.0f}s")
    finally:
        client.loop_stop()
        client.disconnect()


def simulate_devices(state_dir: Path, count: int) -> str:
    """``sedna device simulate --service digits --count N``: its printed summary."""
    done = subprocess.run([sys.executable, "-m", "sedna", "device", "simulate", "--service", SERVICE,
                           "--count", str(count), "--state-dir", str(state_dir)],
                          stdout=subprocess.PIPE, text=True, timeout=180)
    if done.returncode != 0:
        raise RuntimeError(f"`sedna device simulate` failed ({done.returncode}):\n{done.stdout.strip()}")
    return done.stdout.rstrip()


def wait_counters(state_dir: Path, expected: int, timeout: float = 45.0) -> dict[str, Any]:
    """Poll the service until its ``status.inference.count`` (reported by the edge) reaches ``expected``."""
    deadline, inference = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        done = sedna("get", "ji", SERVICE, "-o", "json", state_dir=state_dir, check=False)
        if done.returncode == 0:
            inference = (json.loads(done.stdout).get("status") or {}).get("inference") or {}
            if inference.get("count", 0) >= expected:
                return inference
        time.sleep(1.0)
    print(f"    (the edge's report has not arrived within {timeout:.0f}s: {inference})", flush=True)
    return inference


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=None, help="models and state (default: a temp dir)")
    parser.add_argument("--state-dir", type=Path, default=None, help="sedna state dir (default: <workdir>/state)")
    parser.add_argument("--limit", type=int, default=None, help="stream only the first N test samples")
    parser.add_argument("--devices", type=int, default=540,
                        help="digits sent from simulated MQTT devices (default 540, the whole split; 0: skip)")
    parser.add_argument("--keep", action="store_true", help="leave the cluster up afterwards")
    args = parser.parse_args(argv)
    from examples._workdir import workdir as working

    with working(args.workdir, "sedna-digits-", keep=args.keep) as workdir:
        return run(workdir, (args.state_dir or workdir / "state").resolve(), args)


def run(workdir: Path, state_dir: Path, args: argparse.Namespace) -> int:
    """The seven steps, with models and state under ``workdir``."""
    from examples.joint_inference.digits.models import build_models
    from examples.joint_inference.digits.report import stream_and_report

    print(f"[1/7] sedna local up (state dir {state_dir})", flush=True)
    print(sedna("local", "up", "--nodes", "cloud,edge-0", state_dir=state_dir).stdout.rstrip(), flush=True)
    try:
        print("[2/7] building the edge and cloud models", flush=True)
        models = build_models(workdir / "models")
        applied = workdir / "resources.yaml"
        applied.write_text(manifests(models))
        print(f"[3/7] sedna apply -f {applied}", flush=True)
        print(sedna("apply", "-f", str(applied), state_dir=state_dir).stdout.rstrip(), flush=True)
        print("[4/7] waiting for the service to be Running", flush=True)
        wait_running(state_dir)
        host = edge_pod_ip(state_dir)
        wait_listening(host, EDGE_GRPC_PORT)
        print(f"[5/7] streaming the test split through the edge worker at {host}:{EDGE_GRPC_PORT}", flush=True)
        from sedna.cli._local_secrets import device_credentials, edge_token

        stream_and_report(host, EDGE_GRPC_PORT, SERVICE, models, token=edge_token(state_dir) or None,
                          limit=args.limit)
        if args.devices > 0:
            broker = mqtt_broker(state_dir)
            print(f"[6/7] sedna device simulate --service {SERVICE} --count {args.devices} "
                  f"(simulated devices over MQTT, broker {broker})", flush=True)
            wait_gateway_online(broker, credentials=device_credentials(state_dir))
            print(simulate_devices(state_dir, args.devices), flush=True)
        expected = (args.limit or 540) + max(args.devices, 0)
        print("[7/7] the edge's counters as the control plane sees them (edge worker -> LC -> GM): sedna get ji",
              flush=True)
        wait_counters(state_dir, expected)
        print(sedna("get", "ji", state_dir=state_dir).stdout.rstrip(), flush=True)
    finally:
        if not args.keep:
            print(sedna("local", "down", state_dir=state_dir, check=False).stdout.rstrip(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
