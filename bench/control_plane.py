"""Control-plane benchmark: many JointInferenceServices through the controllers.

``python -m bench.control_plane [--quick]`` starts the local backend in dry-run mode
(store, Deployment controller, runtime that marks Pods Running without starting
processes; no Service proxy, which binds real sockets) and the GM controllers in this
process, creates 500 services (250 with ``--quick``), and measures:

- ``reconciles_per_s``: JointInferenceService reconciles per second when every service
  is queued at once after the rollout, as a resync does (goal ≥ 100); the rate during
  the rollout, bound by the store's writes, is reported beside it;
- ``create_to_children_p99_s``: p99 time from a service's create call until both its
  Deployments and its Service exist, seen through a watch, with services arriving at
  ``--rate`` per second (default 50; ``--rate 0`` creates them in one burst) (goal ≤ 1 s);
- ``gm_rss_mb``: resident memory of this process, which holds what the GM holds (goal ≤ 300 MB).

It prints one JSON line per figure and writes ``control_plane.md`` through ``bench._report`` (``bench/out/``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from bench._report import add_report_options, write_report
from gm.cluster.interface import DEPLOYMENT, JOINT_INFERENCE_SERVICE, SERVICE, Cluster
from gm.cluster.local.deployments import DeploymentController
from gm.cluster.local.runtime import ProcessRuntime
from gm.cluster.local.store import LocalStore
from gm.controllers.setup import setup_controllers
from gm.runtime.outcomes import NamespacedName
from gm.runtime.reconciling import Manager
from gm.settings import ControllerSettings

NODES = ["cloud", "edge-0", "edge-1"]


def _model(name: str) -> dict:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "Model", "metadata": {"name": name, "namespace": "default"},
            "spec": {"url": f"/models/{name}.onnx", "format": "onnx"}}


def _service(i: int) -> dict:
    container = {"name": "w", "image": "x", "command": ["python", "-c", "pass"]}
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "JointInferenceService",
            "metadata": {"name": f"ji-{i:04d}", "namespace": "default"},
            "spec": {"edgeWorker": {"model": {"name": "small"},
                                    "hardExampleMining": {"name": "CrossEntropy", "parameters": [
                                        {"key": "threshold_cross_entropy", "value": "0.5"}]},
                                    "template": {"spec": {"nodeName": NODES[1 + i % 2], "containers": [container]}}},
                     "cloudWorker": {"model": {"name": "big"}, "template": {"spec": {"containers": [container]}}}}}


class ChildWatch:
    """Records when each service's three children have all been seen."""

    def __init__(self, store: Cluster) -> None:
        self.store = store
        self.seen: dict[str, set[str]] = {}
        self.complete: dict[str, float] = {}
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(k,), daemon=True) for k in (DEPLOYMENT, SERVICE)]
        for thread in self.threads:
            thread.start()

    def _run(self, kind: object) -> None:
        rv = getattr(self.store, "resource_version")()  # noqa: B009 (LocalStore-only helper)
        for event in self.store.watch(kind, "default", rv, self.stop):  # type: ignore[arg-type]
            if event.type != "ADDED":
                continue
            name = event.object["metadata"]["name"]
            owner = name.rsplit("-", 1)[0]
            with self._lock:
                got = self.seen.setdefault(owner, set())
                got.add(f"{event.object['kind']}/{name}")
                if len(got) == 3 and owner not in self.complete:
                    self.complete[owner] = time.monotonic()


def run(count: int, rate: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="sedna-bench-cp-") as tmp:
        # the local backend minus its Service proxy (which binds real sockets per Service)
        store = LocalStore(Path(tmp) / "state.db")
        deployments = DeploymentController(store, default_node="cloud")
        runtime = ProcessRuntime(store, tmp, nodes=set(NODES), dry_run=True)
        runtime.start()
        deployments.start()
        manager = Manager(store, resync_period=600)
        setup_controllers(manager, ControllerSettings(default_cloud_node="cloud", nodes=tuple(NODES), workers=4))
        manager.start()
        ji_controller = next(c for c in manager.controllers if c.name == "jointinference")
        try:
            store.create(_model("small"))
            store.create(_model("big"))
            watch = ChildWatch(store)
            time.sleep(0.3)
            before = ji_controller.reconcile_count
            started = time.monotonic()
            created: dict[str, float] = {}
            for i in range(count):
                if rate > 0:  # arrivals at a steady rate; 0 creates them all in one burst
                    time.sleep(max(0.0, started + i / rate - time.monotonic()))
                obj = _service(i)
                created[obj["metadata"]["name"]] = time.monotonic()
                store.create(obj)
            deadline = time.monotonic() + 300
            cache = manager.informer(JOINT_INFERENCE_SERVICE).cache  # the GM's own view: no store reads
            while time.monotonic() < deadline:
                running = sum(1 for o in cache.list("default") if (o.get("status") or {}).get("phase") == "Running")
                if running == count and len(watch.complete) == count:
                    break
                time.sleep(0.1)
            elapsed = time.monotonic() - started
            reconciles = ji_controller.reconcile_count - before
            # level-triggered capacity: every service reconciled again at once (as a resync does)
            storm_before, storm_started = ji_controller.reconcile_count, time.monotonic()
            deadline = storm_started + 120
            for name in created:
                ji_controller.enqueue(NamespacedName("default", name))
            while ji_controller.reconcile_count - storm_before < count and time.monotonic() < deadline:
                time.sleep(0.01)
            storm = (ji_controller.reconcile_count - storm_before) / (time.monotonic() - storm_started)
            latencies = sorted(watch.complete[n] - created[n] for n in created if n in watch.complete)
            watch.stop.set()
            rss = psutil.Process().memory_info().rss / 2**20
        finally:
            manager.stop()
            deployments.stop()
            runtime.stop()
            store.close()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else float("nan")
    return {"services": count, "running": running, "children_complete": len(latencies), "seconds": elapsed,
            "create_rate_per_s": rate, "reconciles_during_rollout": reconciles,
            "rollout_reconciles_per_s": reconciles / elapsed, "reconciles_per_s": storm,
            "create_to_children_p99_s": p99,
            "create_to_children_p50_s": latencies[len(latencies) // 2] if latencies else float("nan"),
            "gm_rss_mb": rss}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="control-plane benchmark")
    parser.add_argument("--quick", action="store_true", help="250 services instead of 500")
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--rate", type=float, default=50.0, help="creates per second (0: one burst)")
    add_report_options(parser)
    args = parser.parse_args(argv)
    count = args.count or (250 if args.quick else 500)
    figures = run(count, args.rate)
    for metric, unit, goal in (("reconciles_per_s", "1/s", ">= 100"), ("create_to_children_p99_s", "s", "<= 1"),
                               ("gm_rss_mb", "MB", "<= 300")):
        print(json.dumps({"bench": "control_plane", "metric": metric, "value": round(figures[metric], 3),
                          "unit": unit, "goal": goal, "services": count}))
    rows = "\n".join(f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in figures.items())
    write_report("control_plane", f"# Control plane ({count} JointInferenceServices, dry run)\n\n"
                                  f"| figure | value |\n|---|---|\n{rows}\n", save=args.save_report)
    print(json.dumps(figures), file=sys.stderr)
    return 0 if figures["running"] == count else 1


if __name__ == "__main__":
    sys.exit(main())
