"""Every built-in lifelong algorithm on small inputs whose outcome is worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from sedna.algorithms.lifelong import (
    DefaultInferenceIntegrate,
    DefaultTaskRelationDiscover,
    DefaultTaskRemodeling,
    KnownTask,
    SampleRecognitionByConfidence,
    SampleRecognitionByDistance,
    SampleRecognitionByTaskAttr,
    SampleReRecognitionDefault,
    TaskAllocationByDataAttr,
    TaskAllocationByNearestTask,
    TaskAllocationDefault,
    TaskDefinitionByCluster,
    TaskDefinitionByDataAttr,
    TaskSamples,
    UnseenTaskAllocationDefault,
    UpdateStrategyDefault,
    as_samples,
    prototypes_of,
)
from sedna.common.errors import DataSourceError


def samples(x: list[list[float]], y: list[int] | None = None, attrs: list[str] | None = None) -> TaskSamples:
    return TaskSamples(np.array(x, np.float32), None if y is None else np.array(y),
                       None if attrs is None else np.array(attrs, dtype=object).reshape(-1, 1))


def task(entry: str, prototypes: list[list[float]], attrs: list[tuple[str, ...]] = (),
         **calibration: float) -> KnownTask:
    return KnownTask(entry, np.array(prototypes, np.float32), list(attrs), calibration=dict(calibration))


class TestTaskDefinition:
    def test_by_data_attr_groups_rows_by_value_in_first_seen_order(self) -> None:
        data = samples([[0], [1], [2], [3]], [0, 1, 0, 1], ["b", "a", "b", "a_x"])
        tasks = TaskDefinitionByDataAttr(attribute=["site"])(data)
        assert [(t.entry, t.meta_attr, t.samples.index.tolist()) for t in tasks] == [
            ("b", ("b",), [0, 2]), ("a", ("a",), [1]), ("a-x", ("a_x",), [3])]

    def test_by_data_attr_needs_attributes(self) -> None:
        with pytest.raises(ValueError, match="attribute"):
            TaskDefinitionByDataAttr()
        with pytest.raises(DataSourceError, match="no attribute columns"):
            TaskDefinitionByDataAttr(attribute="site")(samples([[0]]))

    def test_by_cluster_separates_two_far_apart_groups(self) -> None:
        data = samples([[0, 0], [0, 1], [10, 10], [10, 11], [1, 0]])
        tasks = TaskDefinitionByCluster(n_class=2, seed=3)(data)
        groups = sorted(sorted(t.samples.index.tolist()) for t in tasks)
        assert groups == [[0, 1, 4], [2, 3]]
        assert {t.entry for t in tasks} == {"cluster-0", "cluster-1"}


class TestAllocation:
    tasks = [task("a", [[0, 0]], [("x",)]), task("b", [[10, 10], [20, 20]], [("y",)])]

    def test_nearest_task_uses_the_closest_prototype_of_any_task(self) -> None:
        got = TaskAllocationByNearestTask()(samples([[1, 1], [9, 9], [19, 21]]), self.tasks)
        assert got.tolist() == [0, 1, 1]

    def test_by_data_attr_matches_values_and_marks_the_unknown(self) -> None:
        got = TaskAllocationByDataAttr(attribute=["site"])(samples([[0, 0]] * 3, attrs=["y", "z", "x"]), self.tasks)
        assert got.tolist() == [1, -1, 0]

    def test_default_gives_everything_to_the_first_task(self) -> None:
        assert TaskAllocationDefault()(samples([[5, 5], [9, 9]]), self.tasks).tolist() == [0, 0]
        assert TaskAllocationDefault()(samples([[5, 5]]), []).tolist() == [-1]

    def test_unseen_allocation_is_the_nearest_task(self) -> None:
        assert UnseenTaskAllocationDefault()(samples([[18, 18]]), self.tasks).tolist() == [1]


class TestRecognition:
    def test_distance_threshold_is_margin_times_the_heldout_quantile(self) -> None:
        known = [task("a", [[0.0, 0.0]])]
        heldout = {"a": samples([[3, 4], [0, 1], [0, 2]])}  # distances 5, 1, 2
        fitted = SampleRecognitionByDistance(quantile=1.0, margin=1.2).fit(known, heldout)
        assert fitted == {"a": {"distance_threshold": pytest.approx(6.0)}}

    def test_distance_flags_rows_beyond_their_tasks_threshold_and_unallocated_rows(self) -> None:
        known = [task("a", [[0, 0]], distance_threshold=5.0), task("b", [[10, 0]], distance_threshold=1.0)]
        data = samples([[3, 4], [3, 4.1], [10, 0.5], [10, 2], [0, 0]])
        unseen = SampleRecognitionByDistance()(data, known, np.array([0, 0, 1, 1, -1]))
        assert unseen.tolist() == [False, True, False, True, True]

    def test_confidence_by_max_probability_against_the_fitted_quantile(self) -> None:
        proba = {"a": lambda x: np.column_stack([x[:, 0], 1 - x[:, 0]])}
        known = [KnownTask("a", np.zeros((1, 1)), predict_proba=proba["a"])]
        recognizer = SampleRecognitionByConfidence(score="max_probability", quantile=0.0)
        fitted = recognizer.fit(known, {"a": samples([[0.9], [0.8], [0.7]])})
        assert fitted == {"a": {"max_probability_threshold": pytest.approx(0.7)}}
        known[0].calibration = fitted["a"]
        unseen = recognizer(samples([[0.95], [0.6], [0.5]]), known, np.zeros(3, np.int64))
        assert unseen.tolist() == [False, True, True]

    def test_entropy_confidence_is_one_when_certain_and_zero_when_uniform(self) -> None:
        from sedna.algorithms.lifelong.unseen_recognition import confidence

        got = confidence(np.array([[1.0, 0.0], [0.5, 0.5]]), "entropy")
        assert got == pytest.approx([1.0, 0.0], abs=1e-6)

    def test_task_attr_flags_values_no_task_covers(self) -> None:
        known = [task("a", [[0]], [("x",)])]
        unseen = SampleRecognitionByTaskAttr(attribute="site")(samples([[0], [0]], attrs=["x", "q"]), known,
                                                               np.zeros(2, np.int64))
        assert unseen.tolist() == [False, True]

    def test_re_recognition_splits_by_the_current_verdict(self) -> None:
        seen, unseen = SampleReRecognitionDefault()(samples([[0], [1], [2]], [0, 1, 2]),
                                                    np.array([False, True, False]))
        assert (seen.index.tolist(), unseen.index.tolist()) == ([0, 2], [1])


class TestGroups:
    def test_relation_discovery_makes_one_group_per_task(self) -> None:
        tasks = TaskDefinitionByDataAttr(attribute="s")(samples([[0], [1]], [0, 1], ["p", "q"]))
        assert [(g.entry, len(g.tasks)) for g in DefaultTaskRelationDiscover()(tasks)] == [("p", 1), ("q", 1)]

    def test_remodeling_and_integration_restore_row_order(self) -> None:
        data = samples([[0], [1], [2], [3]])
        parts = DefaultTaskRemodeling()(data, np.array([1, 0, 1, 0]))
        assert [(j, s.index.tolist()) for j, s in parts] == [(0, [1, 3]), (1, [0, 2])]
        answered = [(s, s.x * 10 + j) for j, s in parts]
        assert DefaultInferenceIntegrate()(answered, 4).ravel().tolist() == [1, 10, 21, 30]

    def test_prototypes_are_class_means(self) -> None:
        got = prototypes_of(samples([[0, 0], [2, 2], [10, 0]], [1, 1, 0]))
        assert got.tolist() == [[10, 0], [1, 1]]


class TestUpdateDecision:
    known = [task("a", [[0]], [("x",)]), task("b", [[9]], [("y",)])]

    def test_seen_rows_fine_tune_their_task_and_unseen_parts_become_new_tasks(self) -> None:
        seen = samples([[0], [9], [1]], [0, 1, 0])
        unseen = samples([[50]] * 12 + [[70]] * 3, [0] * 15, ["z"] * 12 + ["w"] * 3)
        updates = UpdateStrategyDefault(min_train_sample=10)(seen, np.array([0, 1, 0]), unseen, self.known,
                                                            TaskDefinitionByDataAttr(attribute="site"))
        assert [(u.entry, u.strategy, len(u.samples), u.base) for u in updates] == [
            ("a", "finetune", 2, "a"), ("b", "finetune", 1, "b"), ("z", "new", 12, None), ("w", "pending", 3, None)]

    def test_an_unseen_part_named_like_a_known_task_fine_tunes_it(self) -> None:
        unseen = samples([[40]] * 2, [1, 1], ["x", "x"])
        [update] = UpdateStrategyDefault()(samples(np.zeros((0, 1)).tolist()), np.zeros(0, np.int64), unseen,
                                           self.known, TaskDefinitionByDataAttr(attribute="site"))
        assert (update.entry, update.strategy, update.base) == ("a", "finetune", "a")

    def test_single_mode_names_the_new_task_after_the_known_count(self) -> None:
        unseen = samples([[40]] * 10, [1] * 10)
        [update] = UpdateStrategyDefault(new_task="single")(samples(np.zeros((0, 1)).tolist()),
                                                            np.zeros(0, np.int64), unseen, self.known)
        assert (update.entry, update.strategy) == ("task-2", "new")


def test_as_samples_splits_attribute_columns_off_a_dataframe() -> None:
    import pandas as pd

    frame = pd.DataFrame({"f0": [1.0, 2.0], "site": ["a", "b"], "f1": [3.0, 4.0]})
    got = as_samples(type("D", (), {"x": frame, "y": pd.Series([0, 1]), "meta_attr": None})(), ["site"])
    assert got.x.tolist() == [[1, 3], [2, 4]] and got.attrs.tolist() == [["a"], ["b"]] and got.y.tolist() == [0, 1]
