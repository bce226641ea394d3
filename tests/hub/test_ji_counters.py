"""Joint-inference counters: a restarted worker (counting from 0 again) never lowers the totals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lc.managers.jointinference import JointInferenceManager
from lc.store import Store
from sedna.controlplane.reports import WorkerReport


def report(worker: str, count: int, hard: int, start: str, **extra: Any) -> WorkerReport:
    info = {"inferenceNumber": count, "hardExampleNumber": hard, "startTime": start,
            "updateTime": f"2024-01-01T00:00:{count:02d}Z", **extra}
    return WorkerReport(worker=worker, namespace="default", owner_name="ji", owner_kind="jointinferenceservice",
                        kind="inference", status="running", owner_info=info)


def latest(store: Store) -> dict[str, Any]:
    return store.outbox_after(0, 10_000)[-1][2]["output"]["ownerInfo"]


def totals(store: Store) -> tuple[int, int]:
    info = latest(store)
    return info["inferenceNumber"], info["hardExampleNumber"]


def test_a_worker_restart_is_detected_by_start_time_and_its_earlier_counts_are_kept(tmp_path: Path) -> None:
    store = Store(tmp_path / "lc.db")
    manager = JointInferenceManager(store, lambda: None)
    manager.handle(report("w1", 10, 2, "T1"))
    manager.handle(report("w1", 20, 4, "T1"))
    manager.handle(report("w2", 5, 1, "T1"))
    assert totals(store) == (25, 5)

    manager.handle(report("w1", 3, 1, "T2"))  # w1 restarted: counts from 0 again

    assert totals(store) == (20 + 3 + 5, 4 + 1 + 1)
    manager.handle(report("w1", 6, 2, "T2"))
    assert totals(store) == (20 + 6 + 5, 4 + 2 + 1)


def test_a_counter_going_down_is_a_restart_even_without_a_start_time(tmp_path: Path) -> None:
    store = Store(tmp_path / "lc.db")
    manager = JointInferenceManager(store, lambda: None)
    manager.handle(report("w1", 40, 10, "", cloudFailures=3))

    manager.handle(report("w1", 8, 2, "", cloudFailures=0))

    info = latest(store)
    assert (info["inferenceNumber"], info["hardExampleNumber"], info["cloudFailures"]) == (48, 12, 3)
    # The ratio stays weighted by inferences across the restart: (10 + 2) / 48 hard examples went up.
    assert info["uploadCloudRatio"] == round(12 / 48, 6)


def test_bases_survive_an_lc_restart_and_totals_never_go_backwards(tmp_path: Path) -> None:
    store = Store(tmp_path / "lc.db")
    manager = JointInferenceManager(store, lambda: None)
    manager.handle(report("w1", 30, 6, "T1"))
    manager.handle(report("w1", 2, 0, "T2"))
    store.close()

    store = Store(tmp_path / "lc.db")  # the LC restarts and reloads its counters and bases
    manager = JointInferenceManager(store, lambda: None)
    seen = []
    for count, start in ((5, "T2"), (1, "T3"), (4, "T3")):
        manager.handle(report("w1", count, 0, start))
        seen.append(totals(store)[0])

    assert seen == [30 + 5, 30 + 5 + 1, 30 + 5 + 4]
    assert seen == sorted(seen)
