"""The inference worker of a staged learning job (IL, LL): its health in ``status.inferenceWorker``."""

from __future__ import annotations

from gm.cluster.interface import Obj
from gm.controllers.common.status import Reason, WorkerHealth
from gm.controllers.stages.machine import Run
from gm.workloads.health import PodState, pod_health
from gm.workloads.logs import LogTail, last_lines


def report_inference_worker(run: Run, name: str, pod: Obj | None, moment: float, logs: LogTail) -> None:
    """Set ``status.inferenceWorker`` from Pod ``name``, and a Warning Event for each new crash of it."""
    if pod is None:
        return
    health = pod_health(pod, moment)
    record: WorkerHealth = {"pod": name, "state": str(health.state), "restarts": health.restarts,
                            "message": "" if health.ready else health.describe()}
    if health.state is PodState.CRASH_LOOP:
        lines = last_lines(logs, run.namespace, name, health.container)
        record["message"] += f"; {lines}" if lines else ""
        before = (run.job.get("status") or {}).get("inferenceWorker") or {}
        if before.get("restarts") != health.restarts or before.get("state") != str(health.state):
            run.writes.warning(Reason.CRASH_LOOP, f"inference worker: pod {name} container "
                                                  f"{health.container!r} is crash-looping")
    if health.settles_in is not None:
        run.requeue(health.settles_in + 0.5)
    run.writes.patch.set("inferenceWorker", record)
