"""Issue 11 item 7 (first and fourth bullets): faults lose nothing and stay where they belong.

A full ``STATE_DIR`` (a real 128 KiB tmpfs) never fails a request the models answered; log file
names built from object names cannot leave the log directory; ``sedna local up`` never chmods a
directory it did not create.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gm.cluster.local.logs import log_path
from tests.security.test_bounded_inputs import edge_env, infer
from tests.support.procs import free_port, running

pytestmark = pytest.mark.processes


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 128 KiB tmpfs: a STATE_DIR that fills up for real (ENOSPC). Needs root, as CI has."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_state_dir_never_fails_a_request_the_models_answered(digits_models, tmp_path: Path,
                                                                   full_disk: Path) -> None:
    rest = free_port()
    env = {**edge_env(digits_models, tmp_path, rest), "STATE_DIR": str(full_disk)}
    log = tmp_path / "edge.log"
    with running("workers.joint_inference.edge", env, log, port=rest):
        answers = [infer(rest, 32) for _ in range(30)]  # 960 hard examples of ~0.5 KiB: far beyond 128 KiB

    store = full_disk / "hard_examples"
    files = list(store.iterdir())
    metas = [p for p in files if p.suffix == ".json"]
    text = log.read_text(errors="replace")
    assert [r.status_code for r in answers] == [200] * 30, answers[-1].text[:300]
    assert metas, "nothing was stored before the disk filled up"
    assert all(p.stat().st_size > 0 for p in files), "a 0-byte file was left behind"
    assert not [p for p in files if p.name.startswith(".")], "a temporary file was left behind"
    assert {p.stem for p in metas} == {p.stem for p in files if p.suffix == ".npy"}
    assert all(json.loads(p.read_text())["state"] == "pending" for p in metas)
    assert text.count("cannot store hard examples") == 1, text[-2000:]


@pytest.mark.parametrize("container", ["../../../../tmp/evil", "/etc/passwd", "a/b", "x\0y", "..", "c_d", ""])
def test_log_file_names_from_object_names_stay_in_the_log_dir(tmp_path: Path, container: str) -> None:
    logs = tmp_path / "logs"

    path = log_path(logs, "default", "pod-1", container)

    assert path.parent == logs and "/" not in path.name and "\0" not in path.name
    assert path.resolve().parent == logs.resolve()
    assert path != log_path(logs, "default", "pod-1", "c") and path != log_path(logs, "default_pod-1", "", container)


def test_plain_names_keep_their_readable_log_file(tmp_path: Path) -> None:
    assert log_path(tmp_path, "default", "joint-edge-0", "edge").name == "default_joint-edge-0_edge.log"


def sedna_local_up(state: Path) -> subprocess.CompletedProcess[str]:
    """``sedna local up`` that gives up at once (the GM is not ready within 0.01 s) and stops what it started."""
    env = {**os.environ, "SEDNA_STATE_DIR": str(state)}
    return subprocess.run([sys.executable, "-m", "sedna", "local", "up", "--state-dir", str(state), "--nodes",
                           "cloud", "--timeout", "0.01", "--mqtt-broker", f"127.0.0.1:{free_port()}"],
                          env=env, capture_output=True, text=True, timeout=120)


def test_sedna_local_up_never_chmods_a_directory_it_did_not_create(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)

    sedna_local_up(shared)

    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    assert stat.S_IMODE((shared / "token").stat().st_mode) == 0o600


def test_sedna_local_up_makes_a_directory_it_creates_private(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh" / "state"

    sedna_local_up(fresh)

    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700
