"""The incremental-learning digits example on the embedded control plane: two rounds, accuracy rising.

``sedna local up`` → write the data and a model trained on 40 samples (:mod:`.prepare`) →
``sedna apply -f resources.yaml`` → measure the inference worker's accuracy on the held-out split
over OIP v2 → per round: append 300 labelled hard examples to the Dataset index, wait for the
job to train, evaluate and hot-deploy the new model, and measure again → ``sedna local down``.

A round whose deploy trigger decides against the new model (round 3 usually: no accuracy gain)
ends with that decision and one measurement of the model still serving. For each round the
report gives the accuracy, the total time from feeding the samples to the new model answering
requests (or to the decision not to deploy), and the control-plane overhead: that time minus the
train and eval workers' run time (as observed from the job's stage transitions).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
JOB = "digits"


def sedna(*args: str, state_dir: Path, check: bool = True,
          env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``sedna ARGS --state-dir DIR`` (with ``env`` added to this environment) and return its output."""
    done = subprocess.run([sys.executable, "-m", "sedna", *args, "--state-dir", str(state_dir)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})
    if check and done.returncode != 0:
        raise RuntimeError(f"`sedna {' '.join(args)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done


def manifest(data: Path, rest_port: int, grpc_port: int) -> str:
    """The example's YAML with paths under ``data`` and the inference worker's ports."""
    text = (HERE / "resources.yaml").read_text()
    return text.replace("DATA/", f"{data.resolve()}/").replace('"PORT"', f'"{rest_port}"').replace(
        '"GRPC_PORT"', f'"{grpc_port}"')


class Watcher:
    """Polls the job's status and remembers when each (round, stage, state) was first seen."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.seen: dict[tuple[int, str, str], float] = {}
        self.status: dict[str, Any] = {}
        self._api: tuple[str, str] | None = None

    def poll(self) -> dict[str, Any]:
        status = self._read()
        if status is not None:
            self.status = status
            now = time.monotonic()
            for cond in self.status.get("conditions") or []:
                data = json.loads(cond.get("data") or "{}")
                key = (int(data.get("round") or 0), cond["stage"], cond["type"])
                self.seen.setdefault(key, now)
        return self.status

    def _read(self) -> dict[str, Any] | None:
        """The job's status from the local API (fast), else ``sedna get`` when the API is unknown."""
        import httpx

        if self._api is None:
            ready = self.state_dir / "gm.ready.json"
            if ready.exists() and (self.state_dir / "token").exists():
                self._api = (json.loads(ready.read_text())["api"], (self.state_dir / "token").read_text().strip())
        if self._api is not None:
            url = f"{self._api[0]}/apis/sedna.io/v1alpha1/namespaces/default/incrementallearningjobs/{JOB}"
            response = httpx.get(url, headers={"Authorization": f"Bearer {self._api[1]}"}, timeout=10)
            return response.json().get("status") or {} if response.status_code == 200 else None
        done = sedna("get", "il", JOB, "-o", "json", state_dir=self.state_dir, check=False)
        return (json.loads(done.stdout).get("status") or {}) if done.returncode == 0 else None

    def wait(self, predicate: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.poll()):
                return
            time.sleep(0.05)
        last = [(c["stage"], c["type"], c["message"]) for c in (self.status.get("conditions") or [])[-4:]]
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}; last conditions: {last}")


def measure(port: int, test: Any, model: str = JOB, token: str | None = None) -> tuple[float, int | None]:
    """(accuracy on ``test``, round of the model that answered) over OIP v2 REST; ``token`` is the
    inference worker's ``EDGE_TOKEN`` (``sedna local up`` generates one: :func:`edge_token`)."""
    from sedna.service.inference.rest_client import RestInferenceClient

    with RestInferenceClient(f"http://127.0.0.1:{port}", token=token) as client:
        result = client.infer(model, {"pixels": test.x}, timeout=30)
    predicted = result.outputs["probabilities"].argmax(axis=1)
    return float((predicted == test.y).mean()), result.parameters.get("model_round")


MODEL_WAIT_SECONDS = 60.0
"""How long a deployed round's model may take to answer requests before the example gives up."""


def deploy_declined(status: dict[str, Any], round_: int) -> str | None:
    """The LC's message when it decided not to deploy ``round_`` (its Deploy completed without a deploy)."""
    for cond in status.get("conditions") or []:
        data = json.loads(cond.get("data") or "{}")
        if (data.get("round"), cond["stage"], cond["type"], cond.get("reason")) == \
                (round_, "Deploy", "Completed", "ReportedByLC"):
            return str(cond.get("message") or "not deployed")
    return None


def wait_for_round(port: int, test: Any, round_: int, timeout: float,
                   token: str | None = None) -> tuple[float, int | None]:
    """Measure until the round ``round_`` model answers; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        accuracy, served = measure(port, test, token=token)
        if served == round_:
            return accuracy, served
        if time.monotonic() > deadline:
            raise TimeoutError(f"the round {round_} model was deployed but the inference worker still answered "
                               f"with the round {served} model after {timeout:.0f}s")
        time.sleep(0.05)


def run(workdir: Path, rounds: int = 2, feed_size: int = 300, log: Callable[[str], None] = print,
        keep: bool = False, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the example; return ``{"accuracy": [...], "rounds": [{total_s, worker_s, overhead_s, deployed}, ...]}``.

    Every round ends, whatever the deploy trigger decides: a round it turns down is measured once.
    ``env`` is added to the environment of ``sedna local up`` (GM settings such as
    ``SEDNA_GM_STAGE_RETRY_BASE_SECONDS``).
    """
    from examples.incremental_learning.digits.prepare import feed, prepare
    from sedna.cli._local_secrets import edge_token
    from tests.support.procs import free_port, wait_for_port
    from workers.incremental.model import load_samples

    state_dir = workdir / "state"
    log(f"[1] sedna local up (state dir {state_dir})")
    sedna("local", "up", "--nodes", "cloud,edge-0", state_dir=state_dir, env=env)
    try:
        layout = prepare(workdir / "data")
        test = load_samples(layout.test)
        port, grpc = free_port(), free_port()
        applied = workdir / "resources.yaml"
        applied.write_text(manifest(layout.root, port, grpc))
        log(f"[2] sedna apply -f {applied}")
        log(sedna("apply", "-f", str(applied), state_dir=state_dir).stdout.rstrip())
        wait_for_port(port, 90)
        watcher = Watcher(state_dir)
        token = edge_token(state_dir) or None  # the inference worker requires it (`sedna local up` made it)
        accuracy, model_round = measure(port, test, token=token)
        log(f"[3] round 0: accuracy {accuracy:.4f} (model trained on 40 samples)")
        report: dict[str, Any] = {"accuracy": [accuracy], "rounds": []}
        offset = 0
        for round_ in range(1, rounds + 1):
            started = time.monotonic()
            offset = feed(layout, offset, feed_size)
            log(f"[{3 + round_}] round {round_}: fed {feed_size} labelled samples (offset {offset})")
            watcher.wait(lambda _, r=round_: (r, "Deploy", "Completed") in watcher.seen
                         or (r, "Deploy", "Failed") in watcher.seen, 180, f"round {round_} deployed")
            if (round_, "Deploy", "Failed") in watcher.seen:
                raise RuntimeError(f"round {round_} deploy failed; see `sedna describe il {JOB}`")
            declined = deploy_declined(watcher.status, round_)
            if declined is None:
                accuracy, model_round = wait_for_round(port, test, round_, MODEL_WAIT_SECONDS, token)
            else:  # the deploy trigger kept the served model: measure it once, there is nothing to wait for
                accuracy, model_round = measure(port, test, token=token)
            total = time.monotonic() - started
            seen = watcher.seen
            worker = sum(seen.get((round_, stage, "Completed"), 0.0) - seen.get((round_, stage, "Starting"), 0.0)
                         for stage in ("Train", "Eval"))
            report["accuracy"].append(accuracy)
            report["rounds"].append({"total_s": total, "worker_s": worker, "overhead_s": total - worker,
                                     "deployed": declined is None})
            if declined is None:
                log(f"    deployed by hot update; accuracy {accuracy:.4f}; {total:.2f}s from feeding to the new "
                    f"model answering, {worker:.2f}s of it in the train and eval workers")
            else:
                log(f"    {declined}; the round {model_round} model still serves, accuracy {accuracy:.4f}")
        report["conditions"] = watcher.poll().get("conditions") or []
        report["deployedRound"] = watcher.status.get("deployedRound")
        return report
    finally:
        if not keep:
            sedna("local", "down", state_dir=state_dir, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=None, help="data and state (default: a temp dir)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="leave the cluster up afterwards")
    parser.add_argument("--json", action="store_true", help="end with the report as one JSON line")
    args = parser.parse_args(argv)
    from examples._workdir import workdir

    with workdir(args.workdir, "sedna-il-digits-", keep=args.keep) as path:
        report = run(path, args.rounds, keep=args.keep)
    print("accuracy by round: " + " -> ".join(f"{a:.4f}" for a in report["accuracy"]))
    from examples.plots import per_round, plots_dir

    per_round(plots_dir() / "il_accuracy.png", {"accuracy served on the held-out split": report["accuracy"]},
              "Incremental learning: accuracy per round (0: the initial model)",
              rounds=list(range(len(report["accuracy"]))))
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
