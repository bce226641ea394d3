"""The digits-cameras example through the control plane (``python -m ...digits_cameras.run --local``).

1. ``sedna local up`` (nodes ``cloud`` and ``edge-0``: a GM, one LC per node).
2. The Dataset's index gets the first camera site's labelled samples (CSV, column ``site``).
3. ``sedna apply -f resources.yaml``: the GM starts the job's knowledge base; the LC on edge-0
   splits the samples and fires the train trigger; round 1 trains the first KB version, evaluates
   it and publishes it, and the inference worker starts at the edge, serving it.
4. Each new camera site comes online: its traffic reaches the edge worker, which flags the
   samples of the unseen task; the flagged samples are labelled (here: with the stream's labels)
   and appended to the Dataset's index; the LC fires the trigger, the Train Pod learns the new
   task into a new KB version, the Eval Pod approves it, the GM publishes it and the edge serves
   it. The site's accuracy and how much of it is still flagged are measured at the edge.
5. ``sedna local down``; the working directory is removed (unless one was given).

:func:`run` returns what happened per round (the tests read it); with ``keep=True`` the cluster
stays up for the caller to look at (and stop with ``sedna local down --state-dir``).
"""

from __future__ import annotations

import contextlib
import csv
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
JOB = "digits-cameras"
GROUP = "apis/sedna.io/v1alpha1"


def sedna(*args: str, state_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``sedna ARGS --state-dir DIR`` and return its output."""
    done = subprocess.run([sys.executable, "-m", "sedna", *args, "--state-dir", str(state_dir)],
                          capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise RuntimeError(f"`sedna {' '.join(args)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done


def manifest(data: Path, rest_port: int, grpc_port: int) -> str:
    """The example's YAML with paths under ``data`` and the inference worker's ports."""
    text = (HERE / "resources.yaml").read_text()
    return text.replace("DATA/", f"{data.resolve()}/").replace('"PORT"', f'"{rest_port}"').replace(
        '"GRPC_PORT"', f'"{grpc_port}"')


def append_rows(index: Path, samples: Any) -> None:
    """Append labelled samples to the Dataset's CSV index (columns as ``workers.lifelong.data.save_table``)."""
    with index.open("a", newline="") as handle:
        writer = csv.writer(handle)
        for attrs, row, label in zip(samples.attrs, samples.x, samples.y, strict=True):
            writer.writerow([*(str(a) for a in attrs), *(f"{v:g}" for v in row), int(label)])


class Api:
    """The local control plane's REST API (address and token from the state directory)."""

    def __init__(self, state_dir: Path) -> None:
        import httpx

        ready = json.loads((state_dir / "gm.ready.json").read_text())
        token = (state_dir / "token").read_text().strip()
        self.http = httpx.Client(base_url=ready["api"], headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def get(self, path: str) -> dict[str, Any] | None:
        response = self.http.get(path)
        return response.json() if response.status_code == 200 else None

    def job(self, name: str = JOB) -> dict[str, Any]:
        return self.get(f"/{GROUP}/namespaces/default/lifelonglearningjobs/{name}") or {}

    def status(self, name: str = JOB) -> dict[str, Any]:
        return self.job(name).get("status") or {}

    def pods(self, selector: str) -> list[dict[str, Any]]:
        return list((self.get(f"/api/v1/namespaces/default/pods?labelSelector={selector}") or {}).get("items") or [])

    def wait(self, predicate: Callable[[dict[str, Any]], bool], timeout: float, what: str,
             name: str = JOB) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.status(name)
            if predicate(status):
                return status
            time.sleep(0.1)
        last = [(c["stage"], c["type"], c["reason"], c["message"]) for c in (status.get("conditions") or [])[-4:]]
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}; waiting: {status.get('waiting')}; "
                           f"last conditions: {last}")

    def close(self) -> None:
        self.http.close()


def round_done(round_: int) -> Callable[[dict[str, Any]], bool]:
    """True once ``round_``'s Deploy stage ended (Completed or Failed)."""
    def done(status: dict[str, Any]) -> bool:
        for cond in status.get("conditions") or []:
            if cond["stage"] == "Deploy" and cond["type"] in ("Completed", "Failed") \
                    and json.loads(cond.get("data") or "{}").get("round") == round_:
                return True
        return False

    return done


def deployed(status: dict[str, Any], round_: int) -> dict[str, Any]:
    """``round_``'s Deploy Completed entry; RuntimeError naming the failure otherwise."""
    for cond in status.get("conditions") or []:
        data = json.loads(cond.get("data") or "{}")
        if cond["stage"] == "Deploy" and data.get("round") == round_ and cond["type"] in ("Completed", "Failed"):
            if cond["type"] == "Failed" or cond["reason"] != "Serving":
                raise RuntimeError(f"round {round_} was not deployed: {cond['reason']}: {cond['message']}")
            return cond
    raise RuntimeError(f"round {round_} has no Deploy outcome")


def run(workdir: Path, sites: int = 2, collect: int = 100, batch: int = 20, log: Callable[[str], Any] = print,
        keep: bool = False, nodes: str = "cloud,edge-0") -> dict[str, Any]:
    """Run the example in ``workdir``; return ``{"rounds": [...], "status": the job's final status, "edge_port",
    "state_dir", "apply_to_serving_s"}`` (each round's ``seconds``: from labelling to serving)."""
    from examples.lifelong_learning.digits_cameras.processes import free_port
    from examples.lifelong_learning.digits_cameras.stream import build_stream, phases
    from sedna.algorithms.lifelong.samples import TaskSamples
    from sedna.cli._local_secrets import edge_token
    from sedna.service.inference.rest_client import RestInferenceClient
    from workers.lifelong.data import save_table

    state_dir = workdir / "state"
    log(f"[1] sedna local up (state dir {state_dir})")
    sedna("local", "up", "--nodes", nodes, state_dir=state_dir)
    api: Api | None = None
    try:
        tasks = build_stream()
        stream = phases(tasks)[:sites]
        data = workdir / "data"
        index = save_table(data / "dataset" / "index.csv", tasks[0].train, ["site"])
        log(f"[2] Dataset index {index}: {len(tasks[0].train)} labelled samples of site {tasks[0].name!r}")
        port, grpc = free_port(), free_port()
        applied = workdir / "resources.yaml"
        applied.write_text(manifest(data, port, grpc))
        log(f"[3] sedna apply -f {applied}")
        log(sedna("apply", "-f", str(applied), state_dir=state_dir).stdout.rstrip())
        api = Api(state_dir)
        started = time.monotonic()
        status = api.wait(round_done(1), 180, "round 1 (the first knowledge base) deployed")
        cond = deployed(status, 1)
        first = time.monotonic() - started
        log(f"    round 1: {cond['message']} ({first:.1f}s after apply)")
        # the edge worker requires EDGE_TOKEN, which `sedna local up` generated into the state dir
        edge = RestInferenceClient(f"http://127.0.0.1:{port}", token=edge_token(state_dir) or None)
        result: dict[str, Any] = {"rounds": [], "state_dir": str(state_dir), "edge_port": port,
                                  "apply_to_serving_s": first}

        def ask(samples: TaskSamples) -> tuple[np.ndarray, np.ndarray, int]:
            answer = edge.infer(JOB, {"features": samples.x}, timeout=30)
            return (answer.outputs["probabilities"], answer.outputs["unseen"].astype(bool),
                    int(answer.parameters.get("kb_version", -1)))

        _wait_listening(port, 60)
        for n, phase in enumerate(stream, start=2):
            site = tasks[phase.new]
            flagged: list[TaskSamples] = []
            count = seen = 0
            for start in range(0, len(phase.samples), batch):
                part = phase.samples.subset(np.arange(start, min(start + batch, len(phase.samples))))
                _, unseen, _ = ask(part)
                seen += len(part)
                count += int(unseen.sum())
                if unseen.any():
                    flagged.append(part.subset(unseen))
                if sum(len(f) for f in flagged) >= collect:
                    break
            labelled = TaskSamples.concat(flagged)
            share = float(np.mean(labelled.attrs[:, 0] == site.name)) if labelled.attrs is not None else 0.0
            log(f"[{2 + n}] site {site.name!r} online: {count} of the first {seen} samples flagged unseen "
                f"({share:.0%} of them from the new site); labelled and appended to the Dataset")
            began = time.monotonic()
            append_rows(index, labelled)
            status = api.wait(round_done(n), 180, f"round {n} deployed")
            cond = deployed(status, n)
            version = int(json.loads(cond["data"])["version"])
            while ask(site.test.subset(np.arange(3)))[2] < version:
                time.sleep(0.05)
            serving = time.monotonic() - began
            probabilities, unseen, served = ask(site.test)
            accuracy = float((probabilities.argmax(axis=1) == site.test.y).mean())
            result["rounds"].append({"round": n, "site": site.name, "flagged": count, "seen": seen,
                                     "labelled": len(labelled), "version": served, "accuracy": accuracy,
                                     "still_unseen": float(unseen.mean()), "seconds": serving})
            log(f"    round {n}: {cond['message']}; site accuracy {accuracy:.3f}, still flagged "
                f"{unseen.mean():.1%}; {serving:.1f}s from labelling to serving")
        edge.close()
        result["status"] = api.status()
        kb = result["status"].get("knowledgeBase") or {}
        log(f"knowledge base: {kb.get('AIModels', {}).get('numberOfAIModels')} task models "
            f"{[m['modelID'] for m in kb.get('AIModels', {}).get('listOfAIModels', [])]}, versions "
            f"{result['status'].get('kbVersions')}")
        return result
    finally:
        if api is not None:
            api.close()
        if not keep:
            log("[end] sedna local down")
            sedna("local", "down", state_dir=state_dir, check=False)


def _wait_listening(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"the inference worker did not listen on 127.0.0.1:{port} within {timeout:g}s")
