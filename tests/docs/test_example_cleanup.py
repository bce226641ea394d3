"""An example leaves the temporary directory as it found it: the workdir it made, the workers'
scratch directories and the model files are gone when it ends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.blocks import ROOT

pytestmark = [pytest.mark.processes, pytest.mark.slow]


def test_the_joint_inference_example_removes_what_it_made_in_tmp(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    before = sorted(os.listdir(tmp))
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT), "SEDNA_PLOTS_DIR": str(tmp_path / "plots")}
    done = subprocess.run([sys.executable, "-m", "examples.joint_inference.digits.run", "--processes", "--limit", "30"],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-4000:]
    assert "accuracy, joint inference" in done.stdout
    assert sorted(os.listdir(tmp)) == before, f"left in TMPDIR: {sorted(os.listdir(tmp))}"
