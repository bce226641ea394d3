"""Every command the README shows works as shown, in order, on what looks like a fresh clone.

The README's shell blocks run one after the other in a temporary directory holding this
checkout's files (no ``.sedna``, no models), against the real ``sedna local up`` its first blocks
start; ``sedna local down`` runs at the end whatever happened.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.docs.blocks import ROOT, checkout_like, environment, run_blocks, shell_blocks, tool_dir

pytestmark = [pytest.mark.processes, pytest.mark.slow]

README = ROOT / "README.md"


def test_the_readme_marks_few_blocks_as_untested() -> None:
    blocks = shell_blocks(README)
    assert len(blocks) >= 8
    assert sum(b.marker == "not-tested" for b in blocks) <= 2
    assert all(b.reason for b in blocks if b.marker)


def test_every_readme_command_works_as_shown(tmp_path: Path) -> None:
    work = checkout_like(tmp_path)
    env = environment(tool_dir(tmp_path))
    try:
        done = run_blocks(README, work, env)
    finally:
        subprocess.run(["sedna", "local", "down"], cwd=work, env=env, capture_output=True, timeout=120)
    assert any("sedna apply -f examples/joint_inference/digits/resources.yaml" in line or "prepare" in line
               for line in done if line.startswith("ok:"))
    assert (work / ".sedna" / "models" / "digits" / "edge.onnx").is_file()
