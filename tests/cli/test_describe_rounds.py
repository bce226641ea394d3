"""``sedna describe`` of FL and IL jobs draws the metric per round as a sparkline, read from status."""

from __future__ import annotations

import json

import pytest

from gm.cluster.interface import FEDERATED_LEARNING_JOB, INCREMENTAL_LEARNING_JOB
from sedna.cli import rounds
from tests.cli.conftest import Api

pytestmark = pytest.mark.processes


def job(kind: str, name: str) -> dict:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": kind, "metadata": {"name": name, "namespace": "default"},
            "spec": {}}


def test_fl_describe_shows_accuracy_loss_and_clients_per_round(api: Api) -> None:
    api.store.create(job("FederatedLearningJob", "fl"))
    history = [{"round": r, "clients": c, "failures": 0, "metrics": {"accuracy": a, "loss": lo}}
               for r, c, a, lo in ((1, 3, 0.50, 2.0), (2, 3, 0.70, 1.0), (3, 2, 0.90, 0.5), (4, 3, 0.95, 0.25))]
    api.store.patch_status(FEDERATED_LEARNING_JOB, "default", "fl", {"currentRound": 4, "roundHistory": history})

    out = api.sedna("describe", "fl/fl")

    assert out.returncode == 0, out.stderr
    page = out.stdout.splitlines()
    at = page.index("Rounds:")
    assert page[at + 1:at + 5] == ["  accuracy  ▁▄██  0.5 -> 0.95",
                                   "  loss      █▄▂▁  2 -> 0.25",
                                   "  clients   ██▁█  2-3",
                                   "  (rounds 1-4)"]


def test_il_describe_reads_the_evaluated_rounds_from_the_stage_history(api: Api) -> None:
    api.store.create(job("IncrementalLearningJob", "il"))

    def evaluated(round_: int, precision: float) -> dict:
        data = {"round": round_, "output": {"models": [{"url": f"/m{round_}", "metrics": {"precision": precision}},
                                                       {"url": "/deployed", "metrics": {"precision": 0.1}}]}}
        return {"type": "Completed", "status": "True", "stage": "Eval", "reason": "WorkerCompleted",
                "data": json.dumps(data), "lastTransitionTime": f"2024-01-0{round_}T00:00:00Z"}

    conditions = [{"type": "Waiting", "status": "True", "stage": "Train", "data": "{}"},
                  evaluated(1, 0.6), {"type": "Running", "status": "True", "stage": "Deploy", "data": "{}"},
                  evaluated(2, 0.8)]
    api.store.patch_status(INCREMENTAL_LEARNING_JOB, "default", "il", {"conditions": conditions})

    page = api.sedna("describe", "il", "il").stdout.splitlines()

    at = page.index("Rounds:")
    assert page[at + 1:at + 3] == ["  precision  ▁█  0.6 -> 0.8", "  (rounds 1-2)"]


def test_sparkline_scales_between_min_and_max_and_leaves_gaps() -> None:
    assert rounds.sparkline([0.0, 0.5, 1.0, None, 1.0]) == "▁▅█ █"
    assert rounds.sparkline([3, 3, 3]) == "▅▅▅"
    assert rounds.sparkline([]) == ""
    assert rounds.sparkline([0, 1], bars=rounds.ASCII_BARS) == "_#"


def test_no_history_draws_nothing() -> None:
    assert rounds.describe_lines(rounds.federated_rounds({"status": {}})) == []
