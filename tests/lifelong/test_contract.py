"""One contract over every registered lifelong plug-in: a new registration is tested automatically."""

from __future__ import annotations

import numpy as np
import pytest

from sedna.algorithms.lifelong import KnownTask, TaskSamples
from sedna.common.class_factory import ClassFactory, ClassType

X = np.array([[0, 0], [0, 1], [9, 9], [9, 8], [0, 0.5], [9, 9.5]], np.float32)
Y = np.array([0, 1, 0, 1, 0, 1])
ATTRS = np.array([["p"], ["p"], ["q"], ["q"], ["p"], ["q"]], dtype=object)
DATA = TaskSamples(X, Y, ATTRS)
PARAMS = {"attribute": ["site"]}


def known() -> list[KnownTask]:
    def proba(x: np.ndarray) -> np.ndarray:
        return np.tile([0.9, 0.1], (len(x), 1))

    calibration = {"distance_threshold": 2.0, "max_probability_threshold": 0.5, "entropy_threshold": 0.1}
    return [KnownTask("p", X[[0, 1]], [("p",)], proba, dict(calibration)),
            KnownTask("q", X[[2, 3]], [("q",)], proba, dict(calibration))]


def create(kind: ClassType, name: str, **extra: object) -> object:
    cls = ClassFactory.get_cls(kind, name)
    import inspect

    accepted = inspect.signature(cls).parameters
    params = {k: v for k, v in PARAMS.items() if k in accepted}
    return cls(**params, **extra)


def names(kind: ClassType, prefix: str) -> list[str]:
    return [n for n in ClassFactory.names(kind) if n.startswith(prefix)]


@pytest.mark.parametrize("name", names(ClassType.STP, "TaskDefinition"))
def test_a_definition_partitions_every_row_into_named_tasks(name: str) -> None:
    tasks = create(ClassType.STP, name)(DATA)
    rows = sorted(i for t in tasks for i in t.samples.index.tolist())
    assert rows == list(range(len(DATA)))
    assert len({t.entry for t in tasks}) == len(tasks) and all(t.entry for t in tasks)


@pytest.mark.parametrize("name", names(ClassType.STP, "TaskAllocation"))
def test_an_allocation_names_a_task_or_minus_one_per_row(name: str) -> None:
    got = np.asarray(create(ClassType.STP, name)(DATA, known()))
    assert got.shape == (len(DATA),) and set(got.tolist()) <= {-1, 0, 1}


@pytest.mark.parametrize("name", [*names(ClassType.UTD, "SampleRecognition"), "SampleRegonitionDefault"])
def test_a_recognizer_judges_every_row_and_flags_unallocated_ones(name: str) -> None:
    recognizer = create(ClassType.UTD, name)
    allocations = np.array([0, 0, 1, 1, -1, 1])
    tasks = known()
    fitted = recognizer.fit(tasks, {"p": DATA.subset(np.array([0, 1])), "q": DATA.subset(np.array([2, 3]))})
    assert set(fitted) == {"p", "q"}
    unseen = np.asarray(recognizer(DATA, tasks, allocations))
    assert unseen.dtype == np.bool_ and unseen.shape == (len(DATA),)
    if not name.endswith("TaskAttr"):
        assert unseen[4]


@pytest.mark.parametrize("name", [n for n in ClassFactory.names(ClassType.UTD) if n.startswith("SampleReR")])
def test_a_re_recognizer_keeps_every_row_once(name: str) -> None:
    seen, unseen = create(ClassType.UTD, name)(DATA, np.array([1, 0, 1, 0, 0, 1], bool))
    assert sorted(seen.index.tolist() + unseen.index.tolist()) == list(range(len(DATA)))


@pytest.mark.parametrize("name", ClassFactory.names(ClassType.UTP))
def test_an_unseen_allocation_answers_with_a_known_task(name: str) -> None:
    got = np.asarray(create(ClassType.UTP, name)(DATA, known()))
    assert got.shape == (len(DATA),) and set(got.tolist()) <= {0, 1}


@pytest.mark.parametrize("name", ClassFactory.names(ClassType.KM))
def test_an_update_decision_accounts_for_every_sample(name: str) -> None:
    from sedna.algorithms.lifelong import TaskDefinitionByDataAttr

    seen, unseen = DATA.subset(np.array([0, 2])), DATA.subset(np.array([1, 3, 4, 5]))
    updates = create(ClassType.KM, name, min_train_sample=1)(seen, np.array([0, 1]), unseen, known(),
                                                             TaskDefinitionByDataAttr(attribute="site"))
    assert sum(len(u.samples) for u in updates) == len(DATA)
    assert {u.strategy for u in updates} <= {"finetune", "new", "pending"}
