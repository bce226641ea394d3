"""Two full rounds end to end in the local backend, both deployed by hot update, accuracy rising.

Real processes: the ``sedna`` CLI, the GM (controllers, hub), one LC per node, and the train,
eval and inference workers the runtime starts from the example's YAML.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from examples.incremental_learning.digits.run import run

pytestmark = [pytest.mark.slow, pytest.mark.processes]


def test_two_rounds_hot_updated_with_accuracy_rising(tmp_path: Path) -> None:
    report = run(tmp_path, rounds=2, log=lambda _: None)

    first, second, third = report["accuracy"]
    assert first < 0.5 < second <= third + 0.02  # a 40-sample model, then two rounds of 300 samples
    assert second > first + 0.3
    conditions = report["conditions"]
    deployed = [json.loads(c["data"])["round"] for c in conditions
                if c["stage"] == "Deploy" and c["type"] == "Completed" and c["reason"] == "HotUpdated"]
    assert deployed == [1, 2]
    assert any("reduced by mean" in c["message"] for c in conditions if c["stage"] == "Deploy")
    assert all(c["status"] == "True" and "lastTransitionTime" in c for c in conditions)
