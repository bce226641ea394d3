"""A Sedna manifest, as Sedna's examples write it (images, no ``command``), applied with ``sedna apply``
to ``sedna local up`` with an image catalog: the workers reach Running, the edge answers through the
cloud, its counters reach the service's status through the LC; an image the catalog does not know
is named in the service's condition. Real processes end to end."""

from __future__ import annotations

import contextlib
import json
import socket
import string
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sedna_compat.test_ji_text_programs import QUESTIONS

pytestmark = [pytest.mark.slow, pytest.mark.processes]
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SERVICE = "answer-generation-inference-example"


def sedna(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sedna", *args, "--state-dir", str(state)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def wait_for(probe: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def filled(name: str, **values: str) -> str:
    return string.Template((HERE / "manifests" / name).read_text()).substitute(values)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("sedna-manifests")
    catalog = root / "images.yaml"
    catalog.write_text(filled("images.yaml", PROGRAMS=str(HERE / "programs")))
    state = root / "state"
    up = sedna(state, "local", "up", "--nodes", "cloud,edge-0", "--image-catalog", str(catalog))
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield state, root
    finally:
        down = sedna(state, "local", "down")
        assert down.returncode == 0, down.stderr


def service(state: Path, name: str) -> dict[str, Any]:
    done = sedna(state, "get", "ji", name, "-o", "json")
    return json.loads(done.stdout) if done.returncode == 0 else {}


def pods_of(state: Path) -> list[dict[str, Any]]:
    return list(json.loads(sedna(state, "get", "pods", "-o", "json").stdout)["items"])


def listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def test_sedna_answer_generation_manifest_runs_from_images(cluster: tuple[Path, Path]) -> None:
    state, root = cluster
    data = root / "data"
    (data / "input").mkdir(parents=True)
    (root / "little.json").write_text(json.dumps({"what is kubeedge": "an edge computing framework", "hello": "hi"}))
    (root / "big.json").write_text(json.dumps({"which planet in the solar system has the most moons known": "saturn"}))
    manifest = root / "answer_generation_inference.yaml"
    manifest.write_text(filled("answer_generation_inference.yaml", LITTLE_MODEL=str(root / "little.json"),
                               BIG_MODEL=str(root / "big.json"), DATA=str(data)))

    applied = sedna(state, "apply", "-f", str(manifest))

    assert applied.returncode == 0, applied.stderr
    running = wait_for(lambda: (service(state, SERVICE).get("status") or {}).get("phase") == "Running", 120,
                       "the service Running")
    assert running
    cloud_ip = wait_for(lambda: next((p["status"].get("podIP") for p in pods_of(state) if "-cloud-" in
                                      p["metadata"]["name"]), None), 30, "the cloud pod's IP")
    wait_for(lambda: listening(cloud_ip, 5001), 60, "the big model listening")  # then the camera starts
    (data / "input" / "questions.txt").write_text("\n".join(QUESTIONS) + "\n")
    answers = wait_for(lambda: len(list((data / "output").glob("*.txt"))) == len(QUESTIONS) and
                       sorted(p.read_text() for p in (data / "output").glob("*.txt")), 90, "every question answered")
    assert any("['cloud: saturn']" in a for a in answers)  # a hard question, answered by the big model
    assert any("edge: hi" in a for a in answers)
    images = {c["image"] for p in pods_of(state) for c in p["spec"]["containers"] if "command" not in c}
    assert images == {"kubeedge/sedna-example-joint-inference-answer-generation-little:v0.8.0",
                      "kubeedge/sedna-example-joint-inference-answer-generation-big:v0.8.0"}
    counters = wait_for(lambda: (service(state, SERVICE).get("status") or {}).get("inference"), 60,
                        "the edge's counters in the service's status (edge -> LC -> GM)")
    assert counters["count"] == len(QUESTIONS) and counters["hardExamples"] == 3
    assert sedna(state, "delete", "-f", str(manifest)).returncode == 0


def test_an_image_the_catalog_does_not_know_is_named_in_the_service_condition(cluster: tuple[Path, Path]) -> None:
    state, root = cluster
    (root / "m.json").write_text("{}")
    manifest = root / "unknown.yaml"
    manifest.write_text(f"""
apiVersion: sedna.io/v1alpha1
kind: Model
metadata: {{name: unknown-model, namespace: default}}
spec: {{url: "{root / 'm.json'}", format: json}}
---
apiVersion: sedna.io/v1alpha1
kind: JointInferenceService
metadata: {{name: unknown-image, namespace: default}}
spec:
  edgeWorker:
    model: {{name: unknown-model}}
    hardExampleMining: {{name: IBT}}
    template: {{spec: {{nodeName: edge-0, containers: [{{name: e, image: example.org/helmet/little:v9}}]}}}}
  cloudWorker:
    model: {{name: unknown-model}}
    template: {{spec: {{nodeName: cloud, containers: [{{name: c, image: example.org/helmet/big:v9}}]}}}}
""")

    assert sedna(state, "apply", "-f", str(manifest)).returncode == 0
    status = wait_for(lambda: "example.org/helmet/big:v9" in json.dumps(service(state, "unknown-image")
                                                                            .get("status") or {})
                      and service(state, "unknown-image")["status"], 60, "a condition naming the image")

    assert "is not in the local image catalog" in json.dumps(status)
    assert sedna(state, "delete", "-f", str(manifest)).returncode == 0
