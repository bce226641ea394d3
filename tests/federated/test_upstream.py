"""Round reports into FederatedLearningJob and Model status (the GM's upstream handler)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gm.cluster.interface import FEDERATED_LEARNING_JOB, MODEL, NotFound
from gm.cluster.local.store import LocalStore
from gm.controllers.federated_learning.reports import handle_upstream
from gm.hub.sequences import SequenceBook
from gm.hub.upstream import HandlerRegistry, MalformedReport, Upstream
from sedna.controlplane.edgehub import ObjectKey, Report
from tests.federated.fl_fixtures import job, model

KEY = ObjectKey("federatedlearningjob", "default", "fl")


@pytest.fixture
def store() -> Iterator[LocalStore]:
    store = LocalStore(":memory:")
    store.create(model())
    store.create(job())
    yield store
    store.close()


def report(phase: str, round_: int, metrics: dict[str, Any] | None = None, worker: str = "fl-train-0",
           samples: int = 100, status: str = "running", seq: int = 1) -> Report:
    info = {"currentRound": round_, "sampleCount": samples, "metrics": metrics or {},
            "updateTime": "2024-01-01 00:00:00"}
    return Report(seq, KEY, {"phase": phase, "status": status, "worker": worker,
                             "output": {"models": [], "ownerInfo": info}})


def status(store: LocalStore) -> dict[str, Any]:
    return store.get(FEDERATED_LEARNING_JOB, "default", "fl").get("status", {})


def test_trainer_reports_fill_per_worker_fields_and_a_weighted_mean(store: LocalStore) -> None:
    handle_upstream(store, report("train", 1, {"accuracy": 0.5, "loss": 2.0}, "fl-train-0", samples=100))
    handle_upstream(store, report("train", 1, {"accuracy": 0.8}, "fl-train-1", samples=300))

    s = status(store)
    assert s["currentRound"] == 1
    assert s["trainingWorkers"]["fl-train-0"] == {"round": 1, "sampleCount": 100, "status": "running",
                                                  "metrics": {"accuracy": 0.5, "loss": 2.0},
                                                  "updateTime": "2024-01-01 00:00:00"}
    assert s["latestMetrics"] == {"accuracy": pytest.approx(0.725), "loss": 2.0}


def test_the_final_trainer_report_keeps_its_last_metrics(store: LocalStore) -> None:
    handle_upstream(store, report("train", 2, {"accuracy": 0.7}))
    handle_upstream(store, report("train", 2, {}, status="completed"))

    entry = status(store)["trainingWorkers"]["fl-train-0"]
    assert (entry["status"], entry["metrics"]) == ("completed", {"accuracy": 0.7})


def test_aggregator_metrics_win_and_reach_the_model(store: LocalStore) -> None:
    handle_upstream(store, report("train", 2, {"accuracy": 0.5, "loss": 1.0}))
    handle_upstream(store, report("aggregation", 2, {"accuracy": 0.91}, "fl-aggregation"))
    handle_upstream(store, report("train", 3, {"accuracy": 0.1}))

    s = status(store)
    assert s["currentRound"] == 3
    assert s["latestMetrics"] == {"accuracy": 0.91}  # the trainers' loss is gone: one source at a time
    assert s["aggregation"]["round"] == 2 and s["aggregation"]["evaluated"] is True
    m = store.get(MODEL, "default", "fl-model")["status"]
    assert m["metrics"] == [{"key": "accuracy", "value": "0.91"}]
    assert m["updateTime"].endswith("Z")


def test_current_round_never_goes_back_and_only_the_bounded_history_is_a_list(store: LocalStore) -> None:
    for r in (1, 2, 3):
        handle_upstream(store, report("aggregation", r, {"accuracy": r / 10}, "fl-aggregation"))
    handle_upstream(store, report("train", 1, {"accuracy": 0.0}))

    s = status(store)
    assert s["currentRound"] == 3
    assert s["latestMetrics"] == {"accuracy": 0.3}
    assert [k for k, v in s.items() if isinstance(v, list) and k != "conditions"] == ["roundHistory"]


def test_round_history_keeps_each_aggregated_round_once_and_the_last_hundred(store: LocalStore) -> None:
    handle_upstream(store, report("aggregation", 1, {"accuracy": 0.1}, "fl-aggregation"))
    handle_upstream(store, report("aggregation", 1, {"accuracy": 0.15}, "fl-aggregation"))  # a resent report
    handle_upstream(store, report("aggregation", 2, {"accuracy": 0.2}, "fl-aggregation"))

    history = status(store)["roundHistory"]
    assert [(h["round"], h["metrics"], h["evaluated"]) for h in history] == [
        (1, {"accuracy": 0.15}, True), (2, {"accuracy": 0.2}, True)]

    for r in range(3, 106):
        handle_upstream(store, report("aggregation", r, {"accuracy": 0.5}, "fl-aggregation"))
    rounds = [h["round"] for h in status(store)["roundHistory"]]
    assert rounds == list(range(6, 106))


@pytest.mark.parametrize(("payload_change", "field"), [
    ({"phase": "infer"}, "phase"),
    ({"output": {}}, "output.ownerInfo"),
    ({"output": {"ownerInfo": {"currentRound": -1}}}, "output.ownerInfo.currentRound"),
    ({"output": {"ownerInfo": {"currentRound": 1, "metrics": {"acc": float("nan")}}}}, "output.ownerInfo.metrics.acc"),
    ({"worker": ""}, "worker"),
])
def test_malformed_reports_name_the_field(store: LocalStore, payload_change: dict, field: str) -> None:
    base = report("train", 1, {"accuracy": 0.5})
    with pytest.raises(MalformedReport, match=field.replace(".", r"\.")):
        handle_upstream(store, Report(1, KEY, {**base.payload, **payload_change}))
    assert "currentRound" not in status(store)


def test_through_the_hub_registry_unknown_job_is_rejected(store: LocalStore) -> None:
    handlers = HandlerRegistry.default()
    handlers.register("federatedlearningjob", handle_upstream)
    upstream = Upstream(store, handlers, SequenceBook(store))
    ack = upstream.apply("edge-0", report("train", 1, {"accuracy": 0.5}, seq=1))
    assert ack.accepted and status(store)["currentRound"] == 1
    other = Report(2, ObjectKey("federatedlearningjob", "default", "nope"), report("train", 1).payload)
    ack = upstream.apply("edge-0", other)
    assert not ack.accepted and "nope" in ack.reason
    with pytest.raises(NotFound):
        handle_upstream(store, other)
