"""Data and a runner for the Sedna-style programs in ``programs/``.

The data is scikit-learn's bundled digits (no download), written the way Sedna's
examples keep theirs: one image file per sample and a TXT index of ``path,label`` lines
relative to the index (plus a comment and a blank line, which every reader must skip).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

PROGRAMS = Path(__file__).resolve().parent / "programs"
ROOT = Path(__file__).resolve().parents[2]

# Everything a worker could inherit from the session that would change what a program sees.
_CONTRACT = ("NAMESPACE", "WORKER_NAME", "SERVICE_NAME", "JOB_NAME", "LC_SERVER", "MODEL_URL", "MODEL_URLS",
             "BASE_MODEL_URL", "TRAIN_DATASET_URL", "TEST_DATASET_URL", "ORIGINAL_DATASET_URL", "BIG_MODEL_IP",
             "BIG_MODEL_PORT", "BIG_MODEL_GRPC_PORT", "HEM_NAME", "HEM_PARAMETERS", "BACKEND_TYPE", "MODEL_NAME")


@dataclass(frozen=True)
class Digits:
    root: Path
    train_index: Path
    test_index: Path
    frames: Path
    test_labels: dict[str, int]
    """Frame file name -> true label."""

    def index(self, name: str, count: int, start: int = 0) -> Path:
        """A TXT index of ``count`` training samples from ``start`` (the LC writes such split files)."""
        lines = self.train_index.read_text().splitlines()
        samples = [line for line in lines if line and not line.startswith("#")][start:start + count]
        path = self.root / name
        path.write_text("\n".join(samples) + "\n")
        return path


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Digits:
    from examples.joint_inference.digits.models import digits_split

    root = tmp_path_factory.mktemp("sedna-digits")
    split = digits_split()
    (root / "images").mkdir()
    (root / "frames").mkdir()

    def write(kind: str, x: np.ndarray, y: np.ndarray) -> list[str]:
        lines = []
        for i, (pixels, label) in enumerate(zip(x, y, strict=True)):
            name = f"{kind}-{i:04d}.npy"
            np.save(root / "images" / name, np.rint(pixels * 16).astype(np.int64).reshape(8, 8))
            lines.append(f"images/{name},{int(label)}")
        return lines

    train = write("train", split.x_train, split.y_train)
    test = write("test", split.x_test, split.y_test)
    train_index = root / "train_data.txt"
    body = "\n".join(train[:5]) + "\n\n" + "\n".join(train[5:])
    train_index.write_text("# digits, one image per line\n" + body + "\n")
    test_index = root / "test_data.txt"
    test_index.write_text("\n".join(test) + "\n")
    labels = {}
    for i, (pixels, label) in enumerate(zip(split.x_test[:150], split.y_test[:150], strict=True)):
        name = f"frame-{i:04d}.npy"
        np.save(root / "frames" / name, np.rint(pixels * 16).astype(np.int64).reshape(8, 8))
        labels[name] = int(label)
    return Digits(root, train_index, test_index, root / "frames", labels)


@pytest.fixture(scope="session")
def digits_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The project's digits ONNX models (the cloud one is served by the project's cloud worker)."""
    from examples.joint_inference.digits.models import build_models

    return build_models(Path(tmp_path_factory.mktemp("digits-models")))


def _program_env(env: Mapping[str, str]) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if k not in _CONTRACT}
    full.update({"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **env})
    return full


def run_program(program: str, env: Mapping[str, str], log: Path, timeout: float = 120) -> str:
    """Run ``programs/<program>`` unchanged as a process with ``env``; return its stdout (fails on exit != 0)."""
    done = subprocess.run([sys.executable, str(PROGRAMS / program)], env=_program_env(env), capture_output=True,
                          text=True, timeout=timeout)
    log.write_text(f"$ {program}\n{done.stdout}\n--- stderr ---\n{done.stderr}")
    assert done.returncode == 0, f"{program} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


def start_program(program: str, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``programs/<program>`` (a server) as a process with ``env``, output to ``log``."""
    with log.open("ab") as handle:
        return subprocess.Popen([sys.executable, str(PROGRAMS / program)], env=_program_env(env), stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)


def read_results(folder: Path) -> dict[int, dict]:
    """The JSON records a program wrote into ``folder``, by frame number."""
    return {int(p.stem): json.loads(p.read_text()) for p in folder.glob("*.json")}
