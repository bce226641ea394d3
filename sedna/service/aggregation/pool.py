"""Who takes part in a federated job right now: the client pool.

The round runner (``rounds``) sees participants only through :class:`ClientProxy`, an
asynchronous handle: it *sends* instructions (``fit``, ``evaluate``, ...) and the answers come
back later through the collector (``phases``). The gRPC transport (``sessions``) implements
the proxy over one stream per client; unit tests implement it with plain objects. This is
Flower's ``ClientManager`` idea: membership apart from the round logic and from the wire.

:class:`ClientPool` keeps one live proxy per client id. A second connection claiming an id
whose proxy is still live is refused (:class:`DuplicateClientError`), never a takeover: a
participant that lost its link comes back once its old stream is gone (at once when its
process died; within the keepalive timeout when the network did). Listeners hear of every
join and leave, outside the pool's lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from sedna.algorithms.aggregation.records import ClientInfo, EvaluateIns, FitIns, Weights
from sedna.common.errors import SednaError


class DuplicateClientError(SednaError, ValueError):
    """A client id is already held by a live connection."""


class ClientProxy(Protocol):
    """One connected participant, as the round runner sees it. Every call returns at once."""

    @property
    def info(self) -> ClientInfo: ...
    @property
    def client_id(self) -> str: ...
    def is_closed(self) -> bool: ...
    def get_parameters(self, server_round: int) -> None: ...
    def fit(self, server_round: int, ins: FitIns) -> None: ...
    def evaluate(self, server_round: int, ins: EvaluateIns) -> None: ...
    def reject(self, server_round: int, reason: str) -> None: ...
    def stop(self, server_round: int, reason: str, weights: Weights) -> None: ...
    def close(self) -> None: ...


JoinListener = Callable[[ClientProxy], None]
LeaveListener = Callable[[ClientProxy, str], None]


class ClientPool:
    """The live participants of one job, by client id (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, ClientProxy] = {}
        self._on_join: list[JoinListener] = []
        self._on_leave: list[LeaveListener] = []

    def subscribe(self, on_join: JoinListener | None = None, on_leave: LeaveListener | None = None) -> None:
        """Call ``on_join(proxy)`` after each join and ``on_leave(proxy, reason)`` after each leave."""
        if on_join is not None:
            self._on_join.append(on_join)
        if on_leave is not None:
            self._on_leave.append(on_leave)

    def register(self, proxy: ClientProxy) -> None:
        """Add ``proxy``; raise :class:`DuplicateClientError` when its id is held by a live proxy."""
        with self._lock:
            held = self._clients.get(proxy.client_id)
            if held is not None and held is not proxy and not held.is_closed():
                raise DuplicateClientError(f"client id {proxy.client_id!r} is already connected; a second "
                                           "connection with the same id is refused (the first one stays in the job)")
            self._clients[proxy.client_id] = proxy
        for listener in self._on_join:
            listener(proxy)

    def unregister(self, proxy: ClientProxy, reason: str) -> bool:
        """Remove and close ``proxy`` (not a newer proxy with its id); True when it was a member."""
        with self._lock:
            member = self._clients.get(proxy.client_id) is proxy
            if member:
                del self._clients[proxy.client_id]
        proxy.close()
        for listener in self._on_leave:
            listener(proxy, reason)
        return member

    def evict(self, client_id: str, reason: str) -> bool:
        """Remove and close the client holding ``client_id``; True when there was one."""
        proxy = self.get(client_id)
        return self.unregister(proxy, reason) if proxy is not None else False

    def get(self, client_id: str) -> ClientProxy | None:
        """The live proxy of ``client_id``, if any."""
        with self._lock:
            return self._clients.get(client_id)

    def all(self) -> list[ClientProxy]:
        """Every member, sorted by client id."""
        with self._lock:
            return [self._clients[k] for k in sorted(self._clients)]

    def infos(self) -> list[ClientInfo]:
        """What the strategy sees of every member, sorted by client id."""
        return [proxy.info for proxy in self.all()]

    def num_available(self) -> int:
        """How many clients are connected."""
        with self._lock:
            return len(self._clients)

    def close_all(self) -> None:
        """Close every member's connection (they leave as their streams end)."""
        for proxy in self.all():
            proxy.close()
