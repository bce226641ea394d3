"""Each local cluster gets its own loopback block, kept in its state dir, never shared with a live cluster."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from gm.cluster.local import loopback
from gm.cluster.local.addresses import parse_block
from tests.support.waiting import eventually


@pytest.fixture
def claims() -> Iterator[list[loopback.Claim]]:
    held: list[loopback.Claim] = []
    yield held
    for c in held:
        c.close()


def dirs_choosing(block: str, base: Path, count: int) -> list[Path]:
    """``count`` state dirs under ``base`` whose fresh choice would try ``block`` first."""
    found = []
    for i in range(20000):
        d = base / f"d{i}"
        if str(loopback.first_choice(d)) == block:
            found.append(d)
            if len(found) == count:
                return found
    raise AssertionError(f"no {count} dirs preferring {block}")


def sentinel_taken(block: str) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((parse_block(block).sentinel, loopback.SENTINEL_PORT))
        except OSError:
            return True
    return False


def test_two_state_dirs_get_distinct_blocks_recorded_in_each(tmp_path: Path, claims: list[loopback.Claim]) -> None:
    a = loopback.claim(tmp_path / "a")
    claims.append(a)
    b = loopback.claim(tmp_path / "b")
    claims.append(b)
    assert a.block != b.block
    for c, d in ((a, "a"), (b, "b")):
        assert not str(c.block).startswith("127.0.")  # never 127.0.0.1's /16
        assert json.loads((tmp_path / d / loopback.BLOCK_FILE).read_text()) == {"block": str(c.block)}
        assert sentinel_taken(str(c.block))
    a.close()
    assert not sentinel_taken(str(a.block))
    again = loopback.claim(tmp_path / "a")  # a restart keeps the addresses
    claims.append(again)
    assert again.block == a.block


def test_a_fresh_choice_skips_a_block_with_sockets_in_it(tmp_path: Path, claims: list[loopback.Claim]) -> None:
    state = tmp_path / "s"
    preferred = loopback.first_choice(state)
    with socket.socket() as worker:  # e.g. a worker a killed GM left running
        worker.bind((str(preferred.network.network_address + 256 + 5), 0))
        worker.listen(1)
        got = loopback.claim(state)
        claims.append(got)
    assert got.block != preferred


def test_a_pinned_block_wins_and_must_match_the_recorded_one(tmp_path: Path, claims: list[loopback.Claim]) -> None:
    pinned = loopback.claim(tmp_path / "p", "127.201.0.0/16")
    claims.append(pinned)
    assert str(pinned.block) == "127.201.0.0/16"
    pinned.close()
    with pytest.raises(ValueError, match=r"loopback_block: .* uses 127\.201\.0\.0/16"):
        loopback.claim(tmp_path / "p", "127.202.0.0/16")
    for bad in ("127.0.0.0/8", "10.1.0.0/16", "127.255.0.0/16", "nonsense"):
        with pytest.raises(ValueError, match="loopback_block"):
            parse_block(bad)
    assert str(parse_block("127.9")) == "127.9.0.0/16"


def test_a_corrupt_record_is_named(tmp_path: Path) -> None:
    (tmp_path / loopback.BLOCK_FILE).write_text("{not json")
    with pytest.raises(ValueError, match=r"loopback\.json"):
        loopback.claim(tmp_path)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


HOLDER = textwrap.dedent("""
    import sys, time
    from gm.cluster.local import loopback
    c = loopback.claim(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "")
    print(c.block, flush=True)
    time.sleep(60)
""")


@pytest.mark.processes
def test_a_block_held_by_another_process_is_refused_or_skipped(tmp_path: Path, claims: list[loopback.Claim]) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "other")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None
        held = holder.stdout.readline().strip()
        with pytest.raises(loopback.BlockInUse, match=held.replace(".", r"\.")):
            loopback.claim(tmp_path / "pinned", held, wait=0.3)
        (tmp_path / "recorded").mkdir()
        (tmp_path / "recorded" / loopback.BLOCK_FILE).write_text(json.dumps({"block": held}))
        with pytest.raises(loopback.BlockInUse, match="held by another running cluster"):
            loopback.claim(tmp_path / "recorded", wait=0.3)
        (same,) = dirs_choosing(held, tmp_path / "fresh", 1)
        got = loopback.claim(same)
        claims.append(got)
        assert str(got.block) != held
    finally:
        stop(holder)


@pytest.mark.processes
def test_clusters_starting_at_the_same_moment_never_share_a_block(tmp_path: Path) -> None:
    dirs = dirs_choosing("127.77.0.0/16", tmp_path, 4)  # all four try 127.77 first
    procs = [subprocess.Popen([sys.executable, "-c", HOLDER, str(d)], stdout=subprocess.PIPE, text=True)
             for d in dirs]
    try:
        blocks = [p.stdout.readline().strip() for p in procs if p.stdout is not None]
        assert len(blocks) == 4 and all(b.startswith("127.") for b in blocks)
        assert len(set(blocks)) == 4, blocks
        eventually(lambda: all(sentinel_taken(b) for b in blocks), message="every block held")
    finally:
        for p in procs:
            stop(p)
