"""Hostile-traffic benchmark: ``python -m bench.hostile [--quick]``.

Two figures (DESIGN §7: a device, a request or a manifest can harm only itself):

* ``hostile_p99_ratio``: the p99 latency of good REST requests to a real edge worker
  (digits model, MQTT gateway on a real mosquitto) while a concurrent stream of malformed
  MQTT messages (200 000-deep JSON, numbers that overflow, a 4000x4000 PNG, garbage frames)
  and malformed REST bodies (deep JSON, oversized, wrong shapes) hits it, over the p99 of
  the same good requests without that stream. Calm and hostile rounds alternate in one
  run; the ratio is of the medians. Goal <= 2.
* ``gm_rss_growth_mb``: how much a real GM's RSS grows (peak over the start) under 100
  oversized or alias-bomb applies: expanded "billion laughs" JSON over and under the body
  limit, objects over 1.5 MiB, 200 000-deep JSON, and alias-bomb YAML through ``sedna apply``.
  Goal <= 50.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench._report import Report
from sedna.service.mqtt.codec import encode_image_frame
from sedna.service.mqtt.testing import Mosquitto, free_port

GOALS = {"hostile_p99_ratio": "<= 2", "gm_rss_growth_mb": "<= 50"}
TOKEN = "bench-hostile-token"


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {port}")


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen([sys.executable, *args], env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                                stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


# -- hostile_p99_ratio ---------------------------------------------------------------------------

def png_bomb() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4000, 4000)).save(out, "PNG")
    return out.getvalue()


class Attacker:
    """Sends malformed MQTT and REST traffic at a fixed rate on two threads until stopped."""

    def __init__(self, broker_port: int, rest: str, service: str, rate: float) -> None:
        import paho.mqtt.client as mqtt

        self.rest, self.service, self.interval = rest, service, 1.0 / rate
        self.sent = 0
        self.refused = 0
        self._stop = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-mallory", protocol=mqtt.MQTTv5)
        self._client.connect("127.0.0.1", broker_port)
        self._client.loop_start()
        deep = b"[" * 200_000 + b"]" * 200_000
        self.mqtt_payloads = [b'{"id": "deep", "data": ' + deep + b"}",
                              json.dumps({"id": "big", "data": [[10**30]], "dtype": "INT64"}).encode(),
                              encode_image_frame(png_bomb(), "png-bomb"), b"\x00\x00\x00\x05{nope" + b"\x00" * 8,
                              json.dumps({"id": "ragged", "data": [[1, 2], [3]]}).encode()]
        self.rest_bodies = [b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 64], "data": ' + deep + b"}]}",
                            b"{not json", json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [0, 64],
                                                                  "data": []}]}).encode(),
                            json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 64],
                                                    "data": [1e39] * 64}]}).encode()]
        self._threads = [threading.Thread(target=self._mqtt, daemon=True),
                         threading.Thread(target=self._rest, daemon=True)]

    def __enter__(self) -> Attacker:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _mqtt(self) -> None:
        topic = f"sedna/default/{self.service}/request/mallory"
        i = 0
        while not self._stop.wait(self.interval):
            self._client.publish(topic, self.mqtt_payloads[i % len(self.mqtt_payloads)], qos=1)
            self.sent += 1
            i += 1

    def _rest(self) -> None:
        with httpx.Client(base_url=self.rest, timeout=30, trust_env=False) as http:
            i = 0
            while not self._stop.wait(self.interval):
                response = http.post(f"/v2/models/{self.service}/infer",
                                     content=self.rest_bodies[i % len(self.rest_bodies)])
                self.sent += 1
                self.refused += int(400 <= response.status_code < 500)
                i += 1


def good_latencies(rest: str, service: str, count: int) -> list[float]:
    x = np.random.default_rng(0).random((1, 64)).astype(np.float32)
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 64], "data": x.ravel().tolist()}]}
    out = []
    with httpx.Client(base_url=rest, timeout=30, trust_env=False) as http:
        for _ in range(count):
            started = time.perf_counter()
            response = http.post(f"/v2/models/{service}/infer", json=body)
            out.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"a good request failed: {response.status_code} {response.text[:200]}")
    return out


def p99(values: list[float]) -> float:
    return float(np.percentile(np.asarray(values), 99))


def hostile_ratio(report: Report, root: Path, quick: bool) -> None:
    from examples.joint_inference.digits.models import build_models

    models = build_models(root / "models")
    service = "hostile"
    broker = Mosquitto(root / "broker").start()
    rest_port = free_port()
    env = {"NAMESPACE": "default", "SERVICE_NAME": service, "WORKER_NAME": "edge-0", "LOG_LEVEL": "ERROR",
           "MODEL_URL": str(models["edge"]), "BIG_MODEL_IP": "127.0.0.1", "BIG_MODEL_GRPC_PORT": str(free_port()),
           "EDGE_BIND_PORT": str(rest_port), "EDGE_GRPC_PORT": str(free_port()), "INTRA_OP_THREADS": "1",
           "STATE_DIR": str(root / "edge-state"), "MQTT_BROKER": broker.address}
    log = root / "edge.log"
    edge = spawn(["-m", "workers.joint_inference.edge"], env, log)
    rest = f"http://127.0.0.1:{rest_port}"
    rounds, count, rate = (2, 150, 50.0) if quick else (4, 400, 100.0)
    try:
        wait_port(rest_port, edge, log)
        good_latencies(rest, service, 50)  # warm up
        attacker = Attacker(broker.port, rest, service, rate)
        calm: list[float] = []
        hostile: list[float] = []
        try:
            for _ in range(rounds):
                calm.append(p99(good_latencies(rest, service, count)))
                with attacker:
                    hostile.append(p99(good_latencies(rest, service, count)))
                attacker = Attacker(broker.port, rest, service, rate) if len(hostile) < rounds else attacker
        finally:
            attacker.close()
        ready = httpx.get(f"{rest}/v2/health/ready", trust_env=False).status_code
    finally:
        stop(edge)
        broker.stop()
    ratio = statistics.median(hostile) / statistics.median(calm)
    report.figure("hostile_p99_ratio", round(ratio, 2), "x", calm_p99_ms=[round(v * 1000, 2) for v in calm],
                  hostile_p99_ms=[round(v * 1000, 2) for v in hostile], good_requests_per_round=count,
                  malformed_per_s=2 * rate, ready_after=ready)


# -- gm_rss_growth_mb ----------------------------------------------------------------------------

def expanded_bomb(levels: int) -> dict[str, Any]:
    """What a client that expands a YAML "billion laughs" would send: 9**levels strings."""
    value: Any = ["lol"] * 9
    for _ in range(levels - 1):
        value = [value] * 9
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "Model", "metadata": {"name": "bomb"},
            "spec": {"url": "/m.onnx", "format": "onnx", "extra": value}}


def yaml_bomb(levels: int) -> str:
    text = 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i in range(1, levels):
        text += f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]\n"
    return ("apiVersion: sedna.io/v1alpha1\nkind: Model\nmetadata: {name: yaml-bomb}\nspec: {url: /m.onnx}\n"
            "extra:\n" + "".join(f"  {line}\n" for line in text.splitlines()))


def gm_growth(report: Report, root: Path, quick: bool) -> None:
    import psutil

    state = root / "gm-state"
    state.mkdir()
    (state / "token").write_text(TOKEN + "\n")
    port = free_port()
    log = root / "gm.log"
    gm = spawn(["-m", "gm", "--backend", "local", "--state-dir", str(state), "--api-port", str(port),
                "--hub-port", "0", "--nodes", "cloud"], {"LOG_LEVEL": "WARNING"}, log)
    models = "/apis/sedna.io/v1alpha1/namespaces/default/models"
    bodies = [json.dumps(expanded_bomb(7)).encode(),  # 4.8 M strings, ~34 MB: over the body limit
              json.dumps(expanded_bomb(6)).encode(),  # 531 441 strings, ~3.7 MB: over the body limit
              json.dumps(expanded_bomb(5)).encode(),  # 59 049 strings, ~0.4 MB: a valid size, refused by schema
              json.dumps({**expanded_bomb(1), "spec": {"url": "x" * (2 << 20), "format": "onnx"}}).encode(),
              b'{"apiVersion": "sedna.io/v1alpha1", "kind": "Model", "spec": ' + b"[" * 200_000 + b"]" * 200_000
              + b"}"]
    manifest = root / "bomb.yaml"
    manifest.write_text(yaml_bomb(9))
    applies = 100
    cli_runs = 3 if quick else 10
    statuses: dict[int, int] = {}
    try:
        wait_port(port, gm, log)
        proc = psutil.Process(gm.pid)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=60, trust_env=False) as http:
            http.post(models, json=expanded_bomb(1) | {"metadata": {"name": "warm-up"}})
            time.sleep(1.0)
            base = proc.memory_info().rss
            peak = [base]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], proc.memory_info().rss)
                    time.sleep(0.005)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            cli_failures = 0
            for i in range(applies - cli_runs):
                response = http.post(models, content=bodies[i % len(bodies)],
                                     headers={"content-type": "application/json"})
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            env = {**os.environ, "SEDNA_TOKEN": TOKEN}
            for _ in range(cli_runs):
                run = subprocess.run([sys.executable, "-m", "sedna", "apply", "-f", str(manifest), "--server",
                                      f"http://127.0.0.1:{port}"], env=env, capture_output=True, timeout=120)
                cli_failures += int(run.returncode != 0)
            done.set()
            sampler.join(5)
            final = proc.memory_info().rss
            healthy = http.get("/healthz").text == "ok"
    finally:
        stop(gm)
    report.figure("gm_rss_growth_mb", round((peak[0] - base) / 2**20, 1), "MB", applies=applies,
                  final_growth_mb=round((final - base) / 2**20, 1), base_mb=round(base / 2**20, 1),
                  http_statuses=statuses, cli_applies_refused=f"{cli_failures}/{cli_runs}", healthy_after=healthy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer and shorter rounds (for CI smoke runs)")
    args = parser.parse_args(argv)
    report = Report("hostile", args.quick)
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        root = Path(tmp)
        (root / "ji").mkdir()
        (root / "gm").mkdir()
        hostile_ratio(report, root / "ji", args.quick)
        gm_growth(report, root / "gm", args.quick)
    report.write_markdown(GOALS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
