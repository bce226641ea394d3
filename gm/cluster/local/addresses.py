"""Loopback address blocks and pools: one IP per Pod and per Service, inside the cluster's own /16.

Linux routes all of 127.0.0.0/8 to the loopback interface with no configuration (other systems
configure only 127.0.0.1 and cannot run the local backend's Pods), so giving every Pod its own
address lets replicas bind the same port, as they would on a real cluster network, without any
traffic leaving the machine. Each local cluster owns one block ``127.B.0.0/16`` (chosen and
persisted per state dir by :mod:`.loopback`, so two clusters on one machine never share an address):

- ``127.B.0.0/24``: the cluster itself; ``127.B.0.254`` holds the block's claim, never a Pod or Service
- ``127.B.1.1`` – ``127.B.127.254``: Pod IPs (``status.podIP``)
- ``127.B.128.1`` – ``127.B.255.254``: Service cluster IPs (``spec.clusterIP``)

A pool hands out the lowest free address (scanning from a hint, the lowest index that may be free,
so handing out N addresses costs O(N), not O(N²)), skipping ``.0`` and ``.255``; its state is seeded
from the store (``status.podIP`` / ``spec.clusterIP``), which is what persists it.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable
from dataclasses import dataclass

LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
BLOCK_PREFIX = 16
POD_SUBNETS = (1, 127)  # first /24 of the block's Pod range, and how many
SERVICE_SUBNETS = (128, 128)
SENTINEL_HOST = 254  # 127.B.0.254


@dataclass(frozen=True)
class Block:
    """One cluster's loopback block, ``127.B.0.0/16``."""

    network: ipaddress.IPv4Network

    @property
    def sentinel(self) -> str:
        """The address whose bind claims the block (in its first /24, never a Pod's or a Service's)."""
        return str(self.network.network_address + SENTINEL_HOST)

    def _subnet(self, index: int) -> str:
        return str(self.network.network_address + index * 256)

    def pod_pool(self, used: Iterable[str] = ()) -> AddressPool:
        """A pool of the block's Pod IPs, ``used`` already taken."""
        return AddressPool(self._subnet(POD_SUBNETS[0]), POD_SUBNETS[1], used)

    def service_pool(self, used: Iterable[str] = ()) -> AddressPool:
        """A pool of the block's Service cluster IPs, ``used`` already taken."""
        return AddressPool(self._subnet(SERVICE_SUBNETS[0]), SERVICE_SUBNETS[1], used)

    def describe(self) -> str:
        """``127.B.0.0/16 (Pods 127.B.1.x-127.B.127.x, Services 127.B.128.x-127.B.255.x)``, for logs and errors."""
        pods, services = self.pod_pool(), self.service_pool()
        return (f"{self.network} (Pods {pods.address(0)}-{pods.last}, "
                f"Services {services.address(0)}-{services.last})")

    def __str__(self) -> str:
        return str(self.network)


def parse_block(text: str, field: str = "loopback_block") -> Block:
    """``127.B.0.0/16`` (or ``127.B``) as a :class:`Block`; ValueError naming ``field`` otherwise."""
    raw = text.strip()
    if raw.count(".") == 1 and "/" not in raw:
        raw = f"{raw}.0.0/16"
    try:
        network = ipaddress.IPv4Network(raw)
    except ValueError as exc:
        raise ValueError(f"{field}: {text!r} is not a network like 127.42.0.0/16 ({exc})") from None
    if network.prefixlen != BLOCK_PREFIX or not network.subnet_of(LOOPBACK) or network.network_address.packed[1] == 255:
        raise ValueError(f"{field}: {text!r} must be a /16 inside 127.0.0.0/8 other than 127.255.0.0/16, "
                         "e.g. 127.42.0.0/16")
    return Block(network)


class AddressPool:
    """Hands out distinct addresses ``.1`` … ``.254`` of ``subnets`` consecutive /24s starting at ``first``."""

    def __init__(self, first: str, subnets: int, used: Iterable[str] = ()) -> None:
        self._first = ipaddress.IPv4Address(first)
        self._subnets = subnets
        self._lock = threading.Lock()
        self._used: set[str] = set()
        self._hint = 0  # every index below it is in use
        for ip in used:
            self.claim(ip)

    @property
    def size(self) -> int:
        """How many addresses the pool holds."""
        return self._subnets * 254

    @property
    def last(self) -> str:
        """The pool's highest address."""
        return self.address(self.size - 1)

    def address(self, index: int) -> str:
        """The ``index``-th address of the pool (0-based)."""
        high, low = divmod(index, 254)
        if not 0 <= high < self._subnets:
            raise RuntimeError(f"loopback address pool {self._first}/{self._subnets} subnets exhausted "
                               f"(more than {self.size} addresses in use)")
        return str(self._first + high * 256 + low + 1)

    def holds(self, ip: str) -> bool:
        """Whether ``ip`` is one of the pool's addresses (in use or not)."""
        return self._index(ip) is not None

    def claim(self, ip: str) -> None:
        """Mark ``ip`` as in use (e.g. found in the store after a restart; may lie outside the pool)."""
        if ip:
            with self._lock:
                self._used.add(ip)

    def allocate(self) -> str:
        """The lowest free address, now marked in use."""
        with self._lock:
            index = self._hint
            while self.address(index) in self._used:
                index += 1
            ip = self.address(index)
            self._used.add(ip)
            self._hint = index + 1
            return ip

    def release(self, ip: str) -> None:
        """Return ``ip`` to the pool."""
        with self._lock:
            if ip in self._used:
                self._used.discard(ip)
                index = self._index(ip)
                if index is not None:
                    self._hint = min(self._hint, index)

    def _index(self, ip: str) -> int | None:
        """The index of ``ip`` in this pool (None when it is not one of the pool's addresses)."""
        try:
            offset = int(ipaddress.IPv4Address(ip)) - int(self._first)
        except ValueError:
            return None
        high, low = divmod(offset, 256)
        return high * 254 + low - 1 if 0 <= high < self._subnets and 1 <= low <= 254 else None
