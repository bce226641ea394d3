"""One reading of a Pod's health: running, crash-looping (also between crashes), blocked, failed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from gm.workloads.health import SETTLE_SECONDS, PodState, pod_health

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def stamp(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(phase: str = "Running", ready: str | None = "True", restarts: int = 0, state: dict[str, Any] | None = None,
        last: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    conditions = [] if ready is None else [{"type": "Ready", "status": ready}]
    container = {"name": "worker", "restartCount": restarts, "state": state or {"running": {"startedAt": stamp(600)}},
                 "lastState": last or {}}
    return {"metadata": {"name": "p-1", "namespace": "default"},
            "status": {"phase": phase, "conditions": conditions, "containerStatuses": [container], **status}}


CRASHED = {"terminated": {"exitCode": 3, "reason": "Error", "finishedAt": stamp(2)}}


def test_a_running_ready_pod_is_running() -> None:
    health = pod_health(pod(), NOW)
    assert (health.state, health.ready, health.restarts) == (PodState.RUNNING, True, 0)


def test_a_container_waiting_in_back_off_is_a_crash_loop_with_its_count_and_exit_code() -> None:
    health = pod_health(pod(restarts=4, ready="False", state={"waiting": {
        "reason": "CrashLoopBackOff", "message": "back-off 40s"}}, last=CRASHED), NOW)

    assert (health.state, health.restarts, health.exit_code, health.reason, health.container) == (
        PodState.CRASH_LOOP, 4, 3, "Error", "worker")
    assert health.describe() == ("pod p-1 CrashLoopBackOff: container 'worker' restarted 4 times, last exit code 3 "
                                 "(Error): back-off 40s")


def test_a_restarted_container_up_again_for_less_than_the_settle_time_is_still_a_crash_loop() -> None:
    health = pod_health(pod(restarts=2, state={"running": {"startedAt": stamp(3)}}, last=CRASHED), NOW)

    assert health.state is PodState.CRASH_LOOP and not health.ready
    assert health.settles_in == pytest.approx(SETTLE_SECONDS - 3)
    assert "running again but not yet stable" in health.describe()


def test_a_restarted_container_that_stayed_up_counts_as_running() -> None:
    health = pod_health(pod(restarts=2, state={"running": {"startedAt": stamp(SETTLE_SECONDS + 1)}}, last=CRASHED),
                        NOW)
    assert (health.state, health.restarts, health.settles_in) == (PodState.RUNNING, 2, None)


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError"])
def test_a_container_that_cannot_start_without_a_fix_is_blocked(reason: str) -> None:
    health = pod_health(pod(phase="Pending", ready="False", state={"waiting": {"reason": reason, "message": "x"}}),
                        NOW)
    assert (health.state, health.reason, health.describe()) == (PodState.BLOCKED, reason, f"pod p-1 {reason}: x")


def test_a_failed_pod_names_its_exit_code() -> None:
    health = pod_health(pod(phase="Failed", ready="False", state=CRASHED), NOW)
    assert (health.state, health.exit_code, health.message, health.reason) == (PodState.FAILED, 3, "exit code 3",
                                                                              "Error")


def test_starting_succeeded_terminating_and_missing() -> None:
    assert pod_health(pod(phase="Pending", ready="False", state={"waiting": {"reason": "ContainerCreating"}}),
                      NOW).state is PodState.PENDING
    assert pod_health(pod(ready="False"), NOW).reason == "NotReady"
    assert pod_health(pod(phase="Succeeded", ready="False"), NOW).state is PodState.SUCCEEDED
    gone = pod()
    gone["metadata"]["deletionTimestamp"] = stamp(1)
    assert pod_health(gone, NOW).state is PodState.TERMINATING
    assert pod_health(None, NOW).describe() == "no Pod yet"


def test_the_local_runtime_retrying_a_container_that_cannot_start_is_a_crash_loop() -> None:
    health = pod_health(pod(phase="Failed", ready="False", reason="CrashLoopBackOff",
                            message="cannot start container 'worker': no such file; log: /l", state={}), NOW)
    assert (health.state, health.reason) == (PodState.CRASH_LOOP, "StartError")
