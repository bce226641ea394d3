"""Sedna's text joint inference (its answer-generation example), unchanged, on this SDK.

The big model is a plain ``load``/``predict`` class served by ``BigModelService``; the edge mines
hard questions before inference (``mining-then-inference``) with a router the program registers
itself. The same programs run with the env a Sedna controller injects (Sedna's REST
``/{JOB_NAME}/predict``, strings in JSON) and with this project's (gRPC, BYTES tensors), and
answer the same.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.hub.harness import wait_until
from tests.sedna_compat.conftest import start_program
from tests.support.procs import free_port, stop, wait_for_port

pytestmark = pytest.mark.processes

QUESTIONS = {
    "what is kubeedge": ("edge: an edge computing framework", False),
    "hello": ("edge: hi", False),
    "how far away from the earth is the moon in kilometres": ("cloud: about 384400 km", True),
    "which planet in the solar system has the most moons known": ("cloud: saturn", True),
    "why is the sky blue on a clear summer day": ("cloud: I do not know", True),
}


@pytest.fixture(scope="module")
def texts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ji-text")
    (root / "input").mkdir()
    (root / "input" / "questions.txt").write_text("\n".join(QUESTIONS) + "\n")
    little, big = root / "little.json", root / "big.json"
    little.write_text(json.dumps({"what is kubeedge": "an edge computing framework", "hello": "hi"}))
    big.write_text(json.dumps({"how far away from the earth is the moon in kilometres": "about 384400 km",
                               "which planet in the solar system has the most moons known": "saturn"}))
    return {"root": root, "little": little, "big": big}


def _answers(folder: Path) -> dict[str, str]:
    out = {}
    for path in folder.glob("*.txt"):
        lines = path.read_text().splitlines()
        out[lines[0].removeprefix("Input: ")] = lines[1].split(": ", 1)[1]
    return out


def _run(tmp_path: Path, texts: dict[str, Path], edge_env: dict[str, str], cloud_env: dict[str, str],
         wait: int) -> tuple[dict[str, dict[str, str]], dict[str, float]]:
    """The edge program's answers by folder, and the cloud's requests by protocol."""
    cloud = start_program("ji_text/big_model/big_model.py", {
        "SERVICE_NAME": "answer-generation", "WORKER_NAME": "cloudworker-t", "MODEL_URL": str(texts["big"]),
        "BIG_MODEL_BIND_IP": "127.0.0.1", **cloud_env}, tmp_path / "big.log")
    outputs = {name: tmp_path / name for name in ("all", "hard_cloud", "hard_edge")}
    edge = None
    try:
        for port in (int(cloud_env["BIG_MODEL_BIND_PORT"]), wait):
            wait_for_port(port, 30, cloud, tmp_path / "big.log")
        edge = start_program("ji_text/little_model/little_model.py", {
            "NAMESPACE": "default", "WORKER_NAME": "edgeworker-t", "MODEL_URL": str(texts["little"]),
            "SERVICE_NAME": "answer-generation", "BIG_MODEL_IP": "127.0.0.1", "MINING_MODE": "mining-then-inference",
            "HEM_NAME": "LengthRouter", "HEM_PARAMETERS": json.dumps([{"key": "max_words", "value": "5"}]),
            "STATE_DIR": str(tmp_path / "state"), "input_text": str(texts["root"] / "input"),
            "all_examples_inference_output": str(outputs["all"]),
            "hard_example_cloud_inference_output": str(outputs["hard_cloud"]),
            "hard_example_edge_inference_output": str(outputs["hard_edge"]), **edge_env}, tmp_path / "edge.log")
        wait_until(lambda: len(list(outputs["all"].glob("*.txt"))) == len(QUESTIONS) or edge.poll() is not None,
                   timeout=60, message="every question answered")
        assert edge.poll() is None, (tmp_path / "edge.log").read_text()[-3000:]  # it watches for more, as Sedna's
        metrics = httpx.get(f"http://127.0.0.1:{cloud_env['BIG_MODEL_BIND_PORT']}/metrics", timeout=10).text
    finally:
        if edge is not None:
            stop(edge)
        stop(cloud)
    protocols = {m.group(1): float(m.group(2)) for m in
                 re.finditer(r'^sedna_inference_requests_total{.*protocol="(\w+)".*} (\S+)$', metrics, re.M)}
    return {name: _answers(path) for name, path in outputs.items()}, protocols


def _assert_routed(results: dict[str, dict[str, str]]) -> None:
    assert {q: a for q, a in results["all"].items()} == {q: str([a]) if hard else a
                                                         for q, (a, hard) in QUESTIONS.items()}
    assert set(results["hard_cloud"]) == {q for q, (_, hard) in QUESTIONS.items() if hard}
    assert results["hard_edge"] == {}  # mining-then-inference: hard questions never ran on the edge


def test_text_joint_inference_with_the_env_a_sedna_controller_injects(tmp_path: Path, texts: dict[str, Path]) -> None:
    rest = free_port()
    results, protocols = _run(tmp_path, texts, {"BIG_MODEL_PORT": str(rest)},
                              {"BIG_MODEL_BIND_PORT": str(rest), "BIG_MODEL_GRPC_PORT": str(free_port())}, rest)
    _assert_routed(results)
    assert protocols == {"sedna": 3.0}  # the three hard questions, each once, over Sedna's /predict


def test_text_joint_inference_over_grpc_with_bytes_tensors(tmp_path: Path, texts: dict[str, Path]) -> None:
    rest, grpc = free_port(), free_port()
    results, protocols = _run(tmp_path, texts, {"BIG_MODEL_PORT": str(rest), "BIG_MODEL_GRPC_PORT": str(grpc)},
                              {"BIG_MODEL_BIND_PORT": str(rest), "BIG_MODEL_GRPC_PORT": str(grpc)}, grpc)
    _assert_routed(results)
    assert protocols == {"grpc": 3.0}
