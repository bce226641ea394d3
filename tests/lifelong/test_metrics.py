"""Ianvs' lifelong metrics, checked against values computed by hand."""

from __future__ import annotations

import pytest

from sedna.algorithms.lifelong import metrics

# T = 2 new tasks: row 0 before either, row 1 after task 1, row 2 after task 2.
MATRIX = [[0.2, 0.1],
          [0.9, 0.3],
          [0.7, 0.8]]


def test_bwt_sums_row_to_row_changes_over_t_squared() -> None:
    # (0.9-0.2) + (0.3-0.1) + (0.7-0.9) + (0.8-0.3) = 0.7 + 0.2 - 0.2 + 0.5 = 1.2; / 4
    assert metrics.bwt(MATRIX) == pytest.approx(0.3)


def test_fwt_compares_each_task_just_before_learning_it_with_row_0() -> None:
    # i=0: R[0][0]-R[0][0] = 0; i=1: R[1][1]-R[0][1] = 0.3-0.1 = 0.2; / 2
    assert metrics.fwt(MATRIX) == pytest.approx(0.1)


def test_task_avg_acc_is_the_mean_of_rows_1_to_t() -> None:
    assert metrics.task_avg_acc(MATRIX) == pytest.approx((0.9 + 0.3 + 0.7 + 0.8) / 4)


def test_forget_rate_is_the_mean_largest_drop_of_earlier_tasks() -> None:
    # after task 1 (row 1): nothing learned before -> 0
    # after task 2 (row 2): task 1 learned at row 1 (0.9), now 0.7 -> drop 0.2; two tasks known -> 0.2 / 2
    assert metrics.forget_rates(MATRIX) == pytest.approx([0.0, 0.1])
    assert metrics.forget_rate(MATRIX) == pytest.approx(0.05)


def test_forget_rate_ignores_gains_and_takes_the_best_earlier_row() -> None:
    matrix = [[0.0, 0.0, 0.0],
              [0.5, 0.0, 0.0],
              [0.8, 0.6, 0.0],   # task 1 improved: no forgetting
              [0.4, 0.6, 0.9]]   # task 1 fell from its best 0.8 -> 0.4; task 2 unchanged
    assert metrics.forget_rates(matrix) == pytest.approx([0.0, 0.0, 0.4 / 3])


def test_a_matrix_of_the_wrong_shape_is_refused_with_the_row() -> None:
    with pytest.raises(ValueError, match="row 1 has 1 columns, expected 2"):
        metrics.bwt([[0.1, 0.2], [0.3], [0.4, 0.5]])


def test_transfer_ratio_uses_ianvs_smoothing_and_the_share_does_not() -> None:
    assert metrics.samples_transfer_ratio([(9, 1), (10, 2)]) == pytest.approx(3 / 20)
    assert metrics.cloud_sample_share(20, 3) == pytest.approx(0.15)
    assert metrics.cloud_sample_share(0, 0) == 0.0
    with pytest.raises(ValueError):
        metrics.cloud_sample_share(2, 3)


def test_unseen_precision_and_recall() -> None:
    predicted = [True, True, False, False, True]
    actual = [True, False, True, False, True]
    assert metrics.unseen_precision_recall(predicted, actual) == pytest.approx((2 / 3, 2 / 3))
