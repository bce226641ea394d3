"""Loopback address pools: one IP per Pod (127.0.1.N) and per Service (127.0.2.N).

Linux routes all of 127.0.0.0/8 to the loopback interface, so giving every Pod its own
address lets replicas bind the same port, as they would on a real cluster network, without
any traffic leaving the machine. A pool hands out the lowest free index (scanning from a hint,
the lowest index that may be free, so handing out N addresses costs O(N), not O(N²)); its state
is seeded from the store (``status.podIP`` / ``spec.clusterIP``), which is what persists it.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable

POD_NET = "127.0.1.0"
SERVICE_NET = "127.0.2.0"
_OVERFLOW = {POD_NET: "127.1.0.0", SERVICE_NET: "127.2.0.0"}


class AddressPool:
    """Hands out distinct loopback IPs: ``<net>.1`` … ``<net>.254``, then a /16 overflow range."""

    def __init__(self, net: str, used: Iterable[str] = ()) -> None:
        self._first = ipaddress.IPv4Address(net)
        self._overflow = ipaddress.IPv4Address(_OVERFLOW.get(net, "127.3.0.0"))
        self._lock = threading.Lock()
        self._used: set[str] = set()
        self._hint = 0  # every index below it is in use
        for ip in used:
            self.claim(ip)

    def address(self, index: int) -> str:
        """The ``index``-th address of the pool (0-based)."""
        if index < 254:
            return str(self._first + index + 1)
        rest = index - 254
        high, low = divmod(rest, 254)
        if high > 255:
            raise RuntimeError("loopback address pool exhausted (more than 65,000 addresses in use)")
        return str(self._overflow + high * 256 + low + 1)

    def claim(self, ip: str) -> None:
        """Mark ``ip`` as in use (e.g. found in the store after a restart)."""
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
                self._hint = min(self._hint, self._index(ip))

    def _index(self, ip: str) -> int:
        """The index of ``ip`` in this pool (0 when it is not one of the pool's addresses)."""
        try:
            value = int(ipaddress.IPv4Address(ip))
        except ValueError:
            return 0
        offset = value - int(self._first) - 1
        if 0 <= offset < 254:
            return offset
        high, low = divmod(value - int(self._overflow) - 1, 256)
        return 254 + high * 254 + low if 0 <= high <= 255 and 0 <= low < 254 else 0
