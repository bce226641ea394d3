"""Which loopback block (:class:`~.addresses.Block`) a local cluster uses, held while it runs.

A cluster's block is chosen at its first start and recorded in ``<state_dir>/loopback.json``, so a
restarted GM (after ``kill -9`` too) keeps the addresses its Pods and Services have in the store
and the workers it adopts still listen on. A block given by the user (``--loopback-block``) wins
over the choice, and must match what the state dir recorded.

While a cluster runs it holds its block by binding ``127.B.0.254:65535`` (no ``SO_REUSEADDR``):
the kernel lets only one socket on the machine hold that, whoever's it is, so two GMs starting at
the same moment cannot take the same block, and the claim ends with the process (no stale lock
after ``kill -9``). A fresh choice starts at a block derived from the state dir's path (so
distinct state dirs rarely even try the same one) and skips any block the kernel shows a socket
in (``/proc/net/{tcp,udp}``: workers a killed GM left running still count), then takes the first
whose claim it gets. Within one process, claims of the same block for the same state dir share
one bind (a runtime and a proxy started on their own, a GM handing over to the next).
"""

from __future__ import annotations

import errno
import hashlib
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from gm.cluster.local.addresses import Block, parse_block
from sedna.common.log import get_logger

_LOG = get_logger(__name__)
BLOCK_FILE = "loopback.json"
SENTINEL_PORT = 65535
_CANDIDATES = range(1, 255)  # 127.1/16 … 127.254/16: never 127.0/16 (127.0.0.1's) unless pinned
_MAPPED = "0000000000000000FFFF0000"  # an IPv4-mapped IPv6 address in /proc/net/tcp6


class BlockInUse(RuntimeError):
    """The cluster's block is held by another running cluster, or no block is free."""


@dataclass
class _Held:
    sock: socket.socket
    owner: str
    count: int = 1


_held: dict[str, _Held] = {}
_lock = threading.Lock()


@dataclass
class Claim:
    """A held block; :meth:`close` lets it go (the last claim in this process unbinds it)."""

    block: Block
    _open: bool = field(default=True, repr=False)

    def close(self) -> None:
        """Release the claim (idempotent)."""
        with _lock:
            if not self._open:
                return
            self._open = False
            held = _held.get(str(self.block))
            if held is not None:
                held.count -= 1
                if held.count == 0:
                    held.sock.close()
                    del _held[str(self.block)]


def claim(state_dir: str | Path | None, pinned: str = "", wait: float = 10.0) -> Claim:
    """Hold the block of the cluster in ``state_dir``: ``pinned`` (``127.B.0.0/16``), else the recorded one,
    else a free one (then recorded). A held recorded or pinned block is waited for up to ``wait`` seconds
    (a GM handing over); :class:`BlockInUse` names it and how to pick another. ``state_dir`` None: not recorded."""
    record = Path(state_dir) / BLOCK_FILE if state_dir is not None else None
    owner = str(Path(state_dir).resolve()) if state_dir is not None else f"<none:{id(object())}>"
    recorded = _read(record) if record is not None else None
    want = parse_block(pinned) if pinned else recorded
    if pinned and recorded is not None and want != recorded:
        raise ValueError(f"loopback_block: the cluster in {state_dir} uses {recorded} (recorded in {record}); "
                         f"its Pods and Services have addresses there. Use a new state dir for {pinned}, or "
                         f"pin {recorded}")
    with _lock:
        block = _hold(want, owner, wait) if want is not None else _choose(owner)
    held = Claim(block)
    if record is not None and recorded != block:
        try:
            record.parent.mkdir(parents=True, exist_ok=True)
            tmp = record.with_suffix(".tmp")
            tmp.write_text(json.dumps({"block": str(block)}) + "\n")
            tmp.replace(record)
        except OSError:
            held.close()
            raise
    _LOG.info("loopback block %s%s", block.describe(), " (pinned)" if pinned else "")
    return held


def _read(record: Path) -> Block | None:
    try:
        body = json.loads(record.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{record}: cannot read the cluster's loopback block ({exc})") from None
    if not isinstance(body, dict) or not isinstance(body.get("block"), str):
        raise ValueError(f"{record}: expected {{\"block\": \"127.B.0.0/16\"}}")
    return parse_block(body["block"], field=f"{record}: block")


def _hold(block: Block, owner: str, wait: float) -> Block:
    """Claim ``block`` for ``owner`` (waiting up to ``wait`` s for a previous holder to let go)."""
    held = _held.get(str(block))
    if held is not None:
        if held.owner != owner:
            raise BlockInUse(f"loopback block {block} is held by the cluster in {held.owner} (this process)")
        held.count += 1
        return block
    deadline = time.monotonic() + wait
    while True:
        sock = _bind(block)
        if sock is not None:
            _held[str(block)] = _Held(sock, owner)
            return block
        if time.monotonic() >= deadline:
            raise BlockInUse(f"loopback block {block} of the cluster in {owner} is held by another running cluster "
                             f"on this machine ({block.sentinel}:{SENTINEL_PORT} is bound): stop that cluster, or "
                             f"start this one with a new state dir")
        time.sleep(0.1)


def first_choice(state_dir: str | Path) -> Block:
    """The block a fresh choice for ``state_dir`` tries first (derived from its resolved path)."""
    return parse_block(f"127.{_CANDIDATES[_start(str(Path(state_dir).resolve()))]}.0.0/16")


def _start(owner: str) -> int:
    return int.from_bytes(hashlib.sha256(owner.encode()).digest()[:4], "big") % len(_CANDIDATES)


def _choose(owner: str) -> Block:
    """A free block, held for ``owner``: the first from the state dir's own starting point that no socket is in."""
    busy = _busy_blocks()
    start = _start(owner)
    for i in range(len(_CANDIDATES)):
        second = _CANDIDATES[(start + i) % len(_CANDIDATES)]
        block = parse_block(f"127.{second}.0.0/16")
        if second in busy or str(block) in _held:
            continue
        sock = _bind(block)
        if sock is not None:
            _held[str(block)] = _Held(sock, owner)
            return block
    raise BlockInUse("no free loopback block: every 127.B.0.0/16 (B = 1..254) has sockets in it or is held by "
                     "a cluster; stop one, or pin a block with --loopback-block")


def _bind(block: Block) -> socket.socket | None:
    """A socket bound to the block's sentinel (no listen, no SO_REUSEADDR), or None when it is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((block.sentinel, SENTINEL_PORT))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            return None
        raise OSError(exc.errno, f"cannot bind {block.sentinel}:{SENTINEL_PORT} to claim loopback block {block} "
                                 f"({exc.strerror}); the local backend needs all of 127.0.0.0/8 routed to the "
                                 "loopback interface, as Linux does") from None
    return sock


def _busy_blocks() -> set[int]:
    """Second octets ``B`` of ``127.B.x.x`` addresses some TCP/UDP socket on this machine is bound to (Linux)."""
    busy: set[int] = set()
    for name in ("tcp", "udp", "tcp6", "udp6"):
        try:
            lines = Path("/proc/net", name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local = line.split()[1].split(":")[0] if len(line.split()) > 1 else ""
            if len(local) == 32 and local.startswith(_MAPPED):
                local = local[24:]
            if len(local) != 8:
                continue
            ip = socket.inet_ntoa(struct.pack("=I", int(local, 16)))
            first, second = ip.split(".")[:2]
            if first == "127":
                busy.add(int(second))
    return busy
