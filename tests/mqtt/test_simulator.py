"""The device simulator scores a gateway correctly, programmatically and through ``sedna device simulate``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sedna.cli import main
from sedna.common.outcome import JointOutcome
from sedna.service.mqtt import MqttSettings
from sedna.service.mqtt.simulator import digits_test_split, predicted_label, simulate

pytestmark = [pytest.mark.mqtt, pytest.mark.processes]


def oracle(wrong_every: int, hard_every: int):
    """Knows every test digit; answers every ``wrong_every``-th wrongly, offloads every ``hard_every``-th."""
    x, y = digits_test_split()
    index = {row.tobytes(): i for i, row in enumerate(x)}

    def infer(tensor: np.ndarray) -> JointOutcome:
        i = index[tensor.astype(np.float32).reshape(-1).tobytes()]
        label = (int(y[i]) + 1) % 10 if i % wrong_every == 0 else int(y[i])
        hard = i % hard_every == 0
        return JointOutcome(hard, np.array([label]), np.array([label]), np.array([label]) if hard else None,
                            "cloud" if hard else "edge")

    return infer


def test_digits_split_matches_the_example() -> None:
    x, y = digits_test_split()
    assert x.shape == (540, 64) and x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
    from sklearn.datasets import load_digits

    per_class = np.bincount(load_digits().target)
    assert np.all(np.abs(np.bincount(y) - 0.3 * per_class) <= 1)  # stratified 30 % of every class


def test_predicted_label_reads_labels_and_scores() -> None:
    assert predicted_label([7]) == 7
    assert predicted_label([[0.1, 0.7, 0.2]]) == 1
    assert predicted_label("seven") is None


def test_simulate_reports_accuracy_offload_and_latency(start_gateway, mosquitto, service) -> None:
    start_gateway(oracle(wrong_every=4, hard_every=5))

    summary = simulate(service, settings=MqttSettings(port=mosquitto.port), count=200, window=16)

    assert summary["sent"] == summary["answered"] == summary["ok"] == 200
    assert summary["errors"] == 0 and summary["unanswered"] == 0
    assert summary["accuracy"] == pytest.approx(150 / 200)  # indices 0, 4, 8, ... answered wrongly
    assert summary["offload_share"] == pytest.approx(40 / 200) and summary["hard_examples"] == 40
    assert 0 < summary["rtt_p50_ms"] <= summary["rtt_p99_ms"]
    assert summary["protocol"] == "5"


def test_cli_prints_the_summary_and_exits_zero(start_gateway, mosquitto, service, capsys) -> None:
    start_gateway(oracle(wrong_every=10**6, hard_every=10**6))

    code = main(["device", "simulate", "--service", service, "--broker", mosquitto.address, "--count", "30",
                 "--rate", "300", "--json"])

    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert summary["answered"] == 30 and summary["accuracy"] == pytest.approx(29 / 30)  # index 0 is "wrong"


def test_cli_names_a_malformed_broker_flag(capsys) -> None:
    code = main(["device", "simulate", "--service", "s", "--broker", "nohost"])

    assert code == 2 and "--broker='nohost'" in capsys.readouterr().err
