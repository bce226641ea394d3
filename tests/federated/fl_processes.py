"""Aggregator and counting-trainer processes on 127.0.0.1, for tests that kill, stall or attack them.

Trainers run ``tests.federated.counting_trainer``: every round adds 1 to the model, so the
global model after ``R`` rounds is exactly ``R`` and the history in ``state.json`` tells
which clients delivered in which round.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.support.procs import start_module, stop

JOB = "fl-test"


def agg_env(port: int, work: Path, **extra: str) -> dict[str, str]:
    return {"JOB_NAME": JOB, "AGG_BIND_IP": "127.0.0.1", "AGG_BIND_PORT": str(port), "MODEL_URL": str(work / "model"),
            "aggregation": "FedAvg", "CHECKPOINT_KEEP": "0", "LC_SERVER": "http://127.0.0.1:9", **extra}


def trainer(port: int, work: Path, name: str, sleep: float, **extra: str) -> subprocess.Popen[bytes]:
    env = {"JOB_NAME": JOB, "WORKER_NAME": name, "AGG_IP": "127.0.0.1", "AGG_PORT": str(port),
           "TRAIN_SLEEP": str(sleep), "RESULT_FILE": str(work / f"{name}.npy"), "LC_SERVER": "http://127.0.0.1:9",
           **extra}
    return start_module("tests.federated.counting_trainer", env, work / f"{name}.log")


def state(work: Path) -> dict:
    path = work / "model" / "checkpoints" / "state.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {"round": 0, "history": []}


def wait_round(work: Path, number: int, timeout: float, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    while state(work)["round"] < number:
        if time.monotonic() > deadline:
            raise TimeoutError(f"round {number} not reached; logs in {work}")
        time.sleep(0.02)


def finish(procs: list[subprocess.Popen[bytes]], timeout: float = 60) -> list[int | None]:
    deadline = time.monotonic() + timeout
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            stop(p)
            codes.append(None)
    return codes
