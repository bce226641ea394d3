"""HEM formulas at their boundaries, and the contract every registered filter meets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sedna.algorithms.hard_example_mining import (
    CrossEntropyFilter,
    IBTFilter,
    RandomFilter,
    ThresholdFilter,
)
from sedna.common.class_factory import ClassFactory, ClassType


def box(score: float) -> list[float]:
    return [0, 0, 10, 10, score, 1]


class TestThreshold:
    def test_mean_below_threshold_is_hard(self) -> None:
        assert ThresholdFilter(0.5)([box(0.4), box(0.5)]) is True  # mean 0.45

    def test_mean_equal_to_threshold_is_not_hard(self) -> None:
        assert ThresholdFilter(0.5)([box(0.4), box(0.6)]) is False  # mean exactly 0.5

    def test_a_single_box_as_flat_list(self) -> None:
        assert ThresholdFilter(0.9)(box(0.8)) is True


class TestCrossEntropy:
    def test_uniform_distribution_has_zero_confidence(self) -> None:
        assert CrossEntropyFilter().confidence([0.25] * 4) == pytest.approx(0.0)

    def test_one_hot_has_full_confidence(self) -> None:
        assert CrossEntropyFilter().confidence([0.0, 1.0, 0.0]) == pytest.approx(1.0)

    def test_hand_computed_confidence(self) -> None:
        p = [0.7, 0.2, 0.1]
        expected = 1 + sum(x * math.log(x) for x in p) / math.log(3)
        assert CrossEntropyFilter().confidence(p) == pytest.approx(expected)
        assert CrossEntropyFilter(threshold_cross_entropy=expected + 1e-9)(p) is True
        assert CrossEntropyFilter(threshold_cross_entropy=expected - 1e-9)(p) is False

    def test_single_class_does_not_divide_by_zero(self) -> None:
        f = CrossEntropyFilter()
        assert f.confidence([1.0]) == 1.0
        assert f([1.0]) is False

    def test_batch_of_one_row_is_one_sample(self) -> None:
        assert CrossEntropyFilter(0.5)(np.array([[0.5, 0.5]], dtype=np.float32)) is True


class TestIBT:
    def test_share_of_low_boxes_at_the_boundary_is_hard(self) -> None:
        # threshold_img 0.5: hard iff low share >= 0.5; 1 of 2 boxes has score <= 0.5
        assert IBTFilter(0.5, 0.5)([box(0.5), box(0.9)]) is True

    def test_share_below_boundary_is_not_hard(self) -> None:
        assert IBTFilter(0.5, 0.5)([box(0.51), box(0.9), box(0.2)]) is False  # 1/3 < 0.5

    def test_threshold_img_one_makes_everything_hard(self) -> None:
        assert IBTFilter(1.0, 0.0)([box(0.9)]) is True  # 0/1 >= 0


class TestRandom:
    def test_seeded_sequence_repeats(self) -> None:
        a = [RandomFilter(0.3, seed=7)(None) for _ in range(1)]
        first, second = RandomFilter(0.3, seed=7), RandomFilter(0.3, seed=7)
        assert [first() for _ in range(50)] == [second() for _ in range(50)]
        assert isinstance(a[0], bool)

    def test_ratio_is_respected_on_average(self) -> None:
        f = RandomFilter(0.3, seed=1)
        share = sum(f() for _ in range(10000)) / 10000
        assert 0.28 < share < 0.32


def test_cloud_only_and_edge_only() -> None:
    assert ClassFactory.create(ClassType.HEM, "CloudOnly")([0.1]) is True
    assert ClassFactory.create(ClassType.HEM, "EdgeOnly")([0.1]) is False


BAD_RESULTS = {
    "empty": [],
    "not numeric": "a cat",
    "nan": [float("nan"), 0.5],
    "out of range": [1.5, -0.5],
    "ragged": [[1, 2], [3]],
}


HEM_NAMES = ClassFactory.names(ClassType.HEM)  # every registered filter, so a new one is held to the contract
RESULT_BLIND = {"Random", "CloudOnly", "EdgeOnly"}  # their verdict does not depend on the result


@pytest.mark.parametrize("alias", HEM_NAMES)
@pytest.mark.parametrize("case", sorted(BAD_RESULTS))
def test_unjudgeable_results_are_not_hard_and_counted(alias: str, case: str) -> None:
    f = ClassFactory.create(ClassType.HEM, alias)
    verdicts = [f(BAD_RESULTS[case]), f(BAD_RESULTS[case])]
    assert all(v is True or v is False for v in verdicts)
    if alias in RESULT_BLIND:
        assert f.faults.total == 0
    else:
        assert verdicts == [False, False]
        assert f.faults.total == 2


def test_the_result_blind_filters_are_registered() -> None:
    assert set(HEM_NAMES) >= RESULT_BLIND


def test_a_fault_kind_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    f = CrossEntropyFilter()
    for _ in range(5):
        f([])
    assert len([r for r in caplog.records if "cannot judge" in r.getMessage()]) == 1
    assert f.faults.snapshot() == {"empty": 5}


def test_every_builtin_is_registered_under_sedna_aliases() -> None:
    assert set(ClassFactory.names(ClassType.HEM)) >= {"Threshold", "CrossEntropy", "IBT", "Random", "CloudOnly",
                                                      "EdgeOnly"}


def test_non_numeric_parameter_names_the_parameter() -> None:
    with pytest.raises(ValueError, match="threshold_img='high'"):
        IBTFilter(threshold_img="high")  # type: ignore[arg-type]
