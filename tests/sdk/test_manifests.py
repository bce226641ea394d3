"""Manifests mean here what they mean to kubectl: unquoted ``HH:MM`` stays a string."""

from __future__ import annotations

from sedna.common.manifests import load_all

SEDNA_IL_TRIGGER = """
trigger:
  checkPeriodSeconds: 60
  timer:
    start: 02:00
    end: 20:00
  condition:
    operator: ">"
    threshold: 500
    metric: num_of_samples
ratio: 0.8
hex: 0x1F
exp: 1.0e+3
---
"""


def test_sedna_sample_timers_stay_strings_and_numbers_stay_numbers() -> None:
    doc, empty = load_all(SEDNA_IL_TRIGGER)
    assert doc["trigger"]["timer"] == {"start": "02:00", "end": "20:00"}
    assert (doc["trigger"]["checkPeriodSeconds"], doc["trigger"]["condition"]["threshold"]) == (60, 500)
    assert (doc["ratio"], doc["hex"], doc["exp"]) == (0.8, 31, 1000.0)
    assert empty is None
