"""A Sedna manifest may name a hard-example-mining algorithm its own worker program registers (Sedna's
answer-generation example names ``BertRouter``): the GM takes an unknown name as the worker's own, and
refuses only a near miss of a registered one, which is a typo."""

from __future__ import annotations

import pytest

from gm.controllers.common.problems import hem_name

FIELD = "spec.edgeWorker.hardExampleMining.name"


@pytest.mark.parametrize("name", ["BertRouter", "LengthRouter", "IBT"])
def test_registered_and_worker_registered_names_are_accepted(name: str) -> None:
    assert hem_name(FIELD, {"name": name}, required=True) == ([], name)


def test_a_near_miss_of_a_registered_name_is_a_typo() -> None:
    problems, name = hem_name(FIELD, {"name": "CrosEntropy"}, required=True)

    assert name == "" and [(p.field, p.message) for p in problems] == [
        (FIELD, "unknown algorithm 'CrosEntropy' (did you mean 'CrossEntropy'?)")]
