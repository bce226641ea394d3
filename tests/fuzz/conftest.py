"""The bounded fuzz stage: hypothesis against every parser a peer can reach, with a fixed budget and seed.

Every test here carries the ``fuzz`` marker (``pytest -m fuzz`` runs only them) and draws
``FUZZ_EXAMPLES`` examples against live servers and five times as many against the decoders
alone (default 200; ``SEDNA_FUZZ_EXAMPLES`` changes it), with
``derandomize=True``, so CI explores the same inputs on every run and the whole stage stays
within a minute or two. Each target is checked twice: the decoder alone (only its named error
may come out) and a live server over loopback (a 4xx or a named error, and healthy after).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

FUZZ_EXAMPLES = int(os.environ.get("SEDNA_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])
"""The settings of every fuzz test against a live server: fixed budget, fixed seed, no example database."""
FUZZ_DECODER = settings(FUZZ, max_examples=5 * FUZZ_EXAMPLES)
"""Decoders alone cost microseconds an example: five times the budget."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fuzz/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.fuzz)
