"""The bring-your-own-model guide works as written: its shell blocks run in order in a fresh
directory, from building two ONNX models to calling the running JointInferenceService with curl
(and with tritonclient where it is installed, as in CI)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.docs.blocks import ROOT, checkout_like, environment, run_blocks, shell_blocks, tool_dir

pytestmark = [pytest.mark.processes, pytest.mark.slow]

GUIDE = ROOT / "docs" / "byo-model.md"


def test_the_guide_runs_every_block_but_the_optional_client() -> None:
    markers = [b.marker for b in shell_blocks(GUIDE)]
    assert len(markers) >= 6 and set(markers) <= {"", "requires"}


def test_the_byo_model_guide_works_as_written(tmp_path: Path) -> None:
    work = checkout_like(tmp_path)
    env = environment(tool_dir(tmp_path))
    try:
        done = run_blocks(GUIDE, work, env)
    finally:
        subprocess.run(["sedna", "local", "down"], cwd=work, env=env, capture_output=True, timeout=120)
    assert all(line.startswith("ok:") or "tritonclient" in line for line in done), done
    assert not (work / "my-models").exists()  # the guide cleans up after itself
