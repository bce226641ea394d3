"""The federated digits example on the embedded control plane, from YAML.

``sedna local up --nodes cloud,edge-0,edge-1,edge-2`` → write the three non-IID node datasets
and the test split → ``sedna apply -f job.yaml`` (data and model paths rewritten into the work
directory) → watch ``sedna get fl digits-fl -o json`` print the round and accuracy as the
aggregator reports them, until the job is Succeeded → print accuracy per round (the
aggregator's federated evaluation from its checkpoint history, and each round's global model
on the held-out test split) and the metrics the Model resource received → export the final
model to ONNX and check it with ONNX Runtime → ``sedna local down``. Everything goes through
the ``sedna`` command line, as a user would type it.

Run: ``python -m examples.federated_learning.digits.run_local [--rounds 15] [--workdir DIR]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from examples.joint_inference.digits.run_local import sedna

HERE = Path(__file__).resolve().parent
JOB = "digits-fl"
MODEL = "digits-fl-model"


def manifests(data: dict[str, Path], model_dir: Path, rounds: int, source: Path = HERE / "job.yaml") -> str:
    """The example's YAML with the Datasets and the Model in the work directory and ``rounds`` rounds."""
    docs = [d for d in yaml.safe_load_all(source.read_text()) if d]
    for doc in docs:
        if doc["kind"] == "Dataset":
            doc["spec"]["url"] = str(data[doc["spec"]["nodeName"]].resolve())
        elif doc["kind"] == "Model":
            doc["spec"]["url"] = str(model_dir.resolve())
        elif doc["kind"] == "FederatedLearningJob":
            for container in doc["spec"]["aggregationWorker"]["template"]["spec"]["containers"]:
                for item in container.get("env") or []:
                    if item["name"] == "exit_round":
                        item["value"] = str(rounds)
                container["env"].append({"name": "SEED", "value": "1"})
    return yaml.safe_dump_all(docs, sort_keys=False)


def watch(state_dir: Path, timeout: float, show: bool = True) -> dict[str, Any]:
    """Poll the job until it is Succeeded (or Failed: raise); print each new round seen."""
    deadline, last, seen = time.monotonic() + timeout, {}, 0
    while time.monotonic() < deadline:
        done = sedna("get", "fl", JOB, "-o", "json", state_dir=state_dir, check=False)
        if done.returncode == 0:
            last = json.loads(done.stdout)
            status = last.get("status") or {}
            current = int(status.get("currentRound") or 0)
            if current > seen and show:
                shown = ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                  for k, v in sorted((status.get("latestMetrics") or {}).items()))
                print(f"  status: round {current} ({status.get('phase')}) {shown}", flush=True)
                seen = current
            if status.get("phase") == "Succeeded":
                return last
            if status.get("phase") == "Failed":
                raise RuntimeError(f"{JOB} failed: {json.dumps(status.get('conditions'), indent=1)}")
        time.sleep(0.3)
    raise TimeoutError(f"{JOB} did not succeed within {timeout:.0f}s; status: {json.dumps(last.get('status'))}")


def per_round(model_dir: Path, test_csv: Path) -> list[dict[str, Any]]:
    """Each round's federated evaluation (checkpoint history) and test accuracy of its global model."""
    from sedna.service.aggregation.checkpoint import load_npz
    from workers.federated.softmax import SoftmaxRegression, load_samples

    states = sorted((model_dir / "checkpoints").glob("*/state.json"), key=lambda p: p.stat().st_mtime)
    if not states:
        raise RuntimeError(f"no checkpoint under {model_dir / 'checkpoints'}")
    ckpt_dir = states[-1].parent
    history = json.loads(states[-1].read_text())["history"]
    test, est = load_samples(test_csv), SoftmaxRegression()
    rows = []
    for entry in history:
        weights = ckpt_dir / f"round-{int(entry['round']):06d}.npz"
        test_acc = None
        if weights.exists():
            est.set_weights(load_npz(weights))
            test_acc = float(est.evaluate(test)["accuracy"])
        rows.append({"round": entry["round"], "clients": len(entry["clients"]),
                     "federated": (entry.get("eval_metrics") or {}).get("accuracy"), "test": test_acc})
    return rows


def export_onnx(model_dir: Path, test_csv: Path) -> tuple[Path, float]:
    """The final model as ONNX (input ``x`` [-1, 64], output ``probabilities``) and its test accuracy."""
    from sedna.backend.onnx import import_onnxruntime

    ort = import_onnxruntime()

    from sedna.service.aggregation.checkpoint import load_npz
    from workers.federated.onnx_export import export_softmax_onnx
    from workers.federated.softmax import SoftmaxRegression, load_samples

    path = export_softmax_onnx(load_npz(model_dir / "model.npz"), model_dir / "model.onnx",
                               SoftmaxRegression().input_scale)
    test = load_samples(test_csv)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    proba = session.run(["probabilities"], {"x": test.x.astype(np.float32)})[0]
    return path, float((proba.argmax(1) == test.y).mean())


def run(workdir: Path, state_dir: Path, rounds: int, timeout: float = 300.0, keep: bool = False) -> dict[str, Any]:
    """The whole example; returns the final job, per-round rows, Model metrics and the ONNX result."""
    from examples.federated_learning.digits.prepare import prepare

    print(f"[1/6] sedna local up (state dir {state_dir})", flush=True)
    print(sedna("local", "up", "--nodes", "cloud,edge-0,edge-1,edge-2", state_dir=state_dir).stdout.rstrip(),
          flush=True)
    try:
        print("[2/6] writing the non-IID node datasets", flush=True)
        data = prepare(workdir / "data")
        model_dir = workdir / "model"
        applied = workdir / "job.yaml"
        applied.write_text(manifests(data, model_dir, rounds))
        print(f"[3/6] sedna apply -f {applied}", flush=True)
        print(sedna("apply", "-f", str(applied), state_dir=state_dir).stdout.rstrip(), flush=True)
        print(f"[4/6] training ({rounds} rounds); the job's status as the workers report it:", flush=True)
        job = watch(state_dir, timeout)
        model = json.loads(sedna("get", "model", MODEL, "-o", "json", state_dir=state_dir).stdout)
        rows = per_round(model_dir, data["test"])
        print("[5/6] accuracy per round (federated evaluation on the nodes' held-out data; global model on "
              "the test split):", flush=True)
        for row in rows:
            fed = f"{row['federated']:.4f}" if isinstance(row["federated"], float) else "-"
            test = f"{row['test']:.4f}" if row["test"] is not None else "-"
            print(f"  round {row['round']:3d}: {row['clients']} clients, federated {fed}, test {test}", flush=True)
        metrics = (model.get("status") or {}).get("metrics") or []
        print(f"  Model {MODEL} status.metrics: {metrics}", flush=True)
        from examples.plots import per_round as plot_rounds
        from examples.plots import plots_dir

        plot_rounds(plots_dir() / "fl_accuracy.png",
                    {"federated evaluation (nodes' held-out data)": [r["federated"] for r in rows],
                     "global model on the test split": [r["test"] for r in rows]},
                    f"Federated learning on label-skewed digits ({len(rows)} rounds)",
                    rounds=[r["round"] for r in rows])
        onnx_path, onnx_acc = export_onnx(model_dir, data["test"])
        print(f"[6/6] ONNX model {onnx_path}: test accuracy {onnx_acc:.4f}", flush=True)
        return {"job": job, "rounds": rows, "model_metrics": metrics, "onnx": onnx_path, "onnx_accuracy": onnx_acc}
    finally:
        if not keep:
            print(sedna("local", "down", state_dir=state_dir, check=False).stdout.rstrip(), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--workdir", type=Path, default=None, help="data, model and state (default: a temp dir)")
    parser.add_argument("--state-dir", type=Path, default=None, help="sedna state dir (default: <workdir>/state)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the job")
    parser.add_argument("--keep", action="store_true", help="leave the cluster up afterwards")
    args = parser.parse_args(argv)
    from examples._workdir import workdir

    with workdir(args.workdir, "sedna-fl-digits-", keep=args.keep) as path:
        run(path, (args.state_dir or path / "state").resolve(), args.rounds, args.timeout, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
