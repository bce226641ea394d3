"""The GM settles its heap once started: start-up objects frozen, young collections rarer."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.processes


def test_settle_startup_heap_freezes_and_raises_the_thresholds() -> None:
    code = ("import gc, json; from gm.app import GC_THRESHOLDS, settle_startup_heap; settle_startup_heap(); "
            "print(json.dumps([gc.get_freeze_count(), list(gc.get_threshold()), list(GC_THRESHOLDS)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    frozen, thresholds, wanted = json.loads(out.stdout)
    assert frozen > 1000  # the imported modules, at least
    assert thresholds == wanted and wanted[0] > 700  # above Python's default young threshold
