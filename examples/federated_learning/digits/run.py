"""Run the digits federated job locally: one aggregator and three trainers as real processes.

Everything listens on 127.0.0.1. The processes are the ready-made workers
(``workers.federated.aggregator`` / ``trainer``) configured by env as the Global Manager
configures them from ``job.yaml``, plus what it is meant to add: a signing key for per-trainer
credentials on the aggregator (``AGG_CLIENT_KEY``), each trainer's own credential
(``AGG_CLIENT_TOKEN``), and each trainer's dataset size as its sample cap
(``AGG_CLIENT_SAMPLES``; see ``docs/federated.md``). After the job, every round's checkpointed
global model is scored on the held-out test split, and the final model is exported to ONNX
(input ``x`` FP32 [-1, 64], output ``probabilities`` FP32 [-1, 10]) for the
joint-inference cloud worker, then checked with ONNX Runtime.

Run: ``python -m examples.federated_learning.digits.run [--rounds 15] [--workdir DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from examples.federated_learning.digits.prepare import prepare
from sedna.service.aggregation.admission import issue_credential
from sedna.service.aggregation.checkpoint import load_npz
from workers.federated.onnx_export import export_softmax_onnx
from workers.federated.softmax import SoftmaxRegression, load_samples

JOB = "digits-fl"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen([sys.executable, "-m", module], env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
                                stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def run(workdir: str | Path, rounds: int = 15, strategy: str = "FedAvg", timeout: float = 180.0) -> dict[str, Any]:
    """Run the job in ``workdir``; return per-round test accuracy, the ONNX path and its accuracy."""
    work = Path(workdir)
    data = prepare(work / "data")
    model_dir = work / "model"
    port = _free_port()
    key = secrets.token_hex(32)
    trainers = [f"{JOB}-trainer-edge-{k}" for k in range(3)]
    counts = {name: len(load_samples(data[f"edge-{k}"])) for k, name in enumerate(trainers)}
    common = {"JOB_NAME": JOB, "NAMESPACE": "default", "LC_SERVER": "http://127.0.0.1:9", "LOG_LEVEL": "INFO"}
    procs = [_start("workers.federated.aggregator", {
        **common, "WORKER_NAME": f"{JOB}-aggregation", "AGG_BIND_IP": "127.0.0.1", "AGG_BIND_PORT": str(port),
        "PARTICIPANTS_COUNT": "3", "MODEL_URL": str(model_dir), "aggregation": strategy, "exit_round": str(rounds),
        "ROUND_TIMEOUT_SECONDS": "60", "CHECKPOINT_KEEP": "0", "SEED": "1",
        "AGG_CLIENT_KEY": key, "AGG_CLIENT_SAMPLES": json.dumps(counts),
    }, work / "aggregator.log")]
    for k, name in enumerate(trainers):
        procs.append(_start("workers.federated.trainer", {
            **common, "WORKER_NAME": name, "AGG_IP": "127.0.0.1", "AGG_PORT": str(port),
            "AGG_CLIENT_TOKEN": issue_credential(key, JOB, name),
            "TRAIN_DATASET_URL": str(data[f"edge-{k}"]), "epochs": "2", "batch_size": "32", "learning_rate": "0.5",
        }, work / f"trainer-{k}.log"))
    deadline = time.monotonic() + timeout
    try:
        for proc in procs:
            proc.wait(max(1.0, deadline - time.monotonic()))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    codes = [p.returncode for p in procs]
    if any(codes):
        raise RuntimeError(f"a worker failed (exit codes {codes}); see the logs in {work}")
    test = load_samples(data["test"])
    est = SoftmaxRegression()
    accuracy: dict[int, float] = {}
    for ckpt in sorted((model_dir / "checkpoints").glob("round-*.npz")):
        if ckpt.name.count(".") == 1:
            est.set_weights(load_npz(ckpt))
            accuracy[int(ckpt.name[6:12])] = est.evaluate(test)["accuracy"]
    final = load_npz(model_dir / "model.npz")
    onnx_path = export_softmax_onnx(final, model_dir / "model.onnx", est.input_scale)
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    proba = session.run(["probabilities"], {"x": test.x.astype(np.float32)})[0]
    return {"accuracy": accuracy, "onnx": onnx_path, "onnx_accuracy": float((proba.argmax(1) == test.y).mean())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--strategy", default="FedAvg")
    parser.add_argument("--workdir", default="")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sedna-fl-digits-") as tmp:
        work = Path(args.workdir or tmp)
        result = run(work, rounds=args.rounds, strategy=args.strategy)
        for number, acc in result["accuracy"].items():
            print(f"round {number:3d}: test accuracy {acc:.4f}")
        print(f"ONNX model: {result['onnx']} (test accuracy {result['onnx_accuracy']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
