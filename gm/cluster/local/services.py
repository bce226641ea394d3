"""ServiceProxy: local Services, a loopback ClusterIP plus a TCP proxy per port.

Each Service gets ``spec.clusterIP`` from the cluster's block (:mod:`.addresses`; written once, so it
persists in the store;
``clusterIP: None`` makes a headless Service that is left alone). For every entry of
``spec.ports`` an asyncio server listens on ``clusterIP:port`` and forwards each connection to
the next ready Pod (``status.podIP``) selected by ``spec.selector`` on ``targetPort`` (a number
or a named container port), round-robin per connection. With no ready endpoint the connection
is reset at once (RST), like a refused connection. The proxy copies bytes both ways and passes
half-closes, so HTTP/1.1, HTTP/2 and gRPC streams go through unchanged.

Design: the asyncio loop runs in one thread and owns the listeners, and accepts on them itself (a reader
callback, not ``asyncio.start_server``: on Python 3.11 a connection accepted in the loop iteration that
closes its server leaves a half-built transport and an open socket behind); every accepted socket is
tracked until a transport owns it, so stopping closes each one; watches (:mod:`.watching`)
keep a Service and Pod cache under a lock and ask the loop for a re-sync of the listeners. Re-syncs
never overlap: one task runs them, and requests that arrive meanwhile coalesce into one more pass
(overlapping passes used to race each other to bind the same address: "address already in use",
over and over, with hundreds of Services). A port that cannot be bound is logged and recorded as
an event once, and retried quietly on later passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
import threading
from pathlib import Path

from gm.cluster.interface import POD, SERVICE, ClusterError, Conflict, NotFound, Obj, WatchEvent
from gm.cluster.local import loopback, watching
from gm.cluster.local.addresses import AddressPool, Block
from gm.cluster.local.deployments import is_ready
from gm.cluster.local.store import LocalStore
from sedna.common.log import get_logger

_LOG = get_logger(__name__)
_CHUNK = 64 * 1024
ListenerKey = tuple[str, str, int]  # service uid, cluster IP, port


def _selects(service: Obj, pod: Obj) -> bool:
    selector = (service.get("spec") or {}).get("selector") or {}
    labels = pod["metadata"].get("labels") or {}
    return bool(selector) and pod["metadata"].get("namespace") == service["metadata"].get("namespace") and all(
        labels.get(k) == v for k, v in selector.items())


def _target_port(port_spec: Obj, pod: Obj) -> int | None:
    target = port_spec.get("targetPort", port_spec.get("port"))
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    return None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


def _bound_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, bound here and now (no resolver round trip on the loop)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (linger 0), the closest a listening proxy gets to "connection refused"."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class ServiceProxy:
    """Assigns cluster IPs to Services in ``store`` and proxies their ports to ready Pods.

    ``block``: the loopback block cluster IPs come from (None: the one of the store's directory, claimed by
    :meth:`start` and released by :meth:`stop`, see :mod:`.loopback`).
    """

    def __init__(self, store: LocalStore, connect_timeout: float = 2.0, block: Block | None = None) -> None:
        self.store, self.connect_timeout = store, connect_timeout
        self.block = block
        self._claim: loopback.Claim | None = None
        self.addresses: AddressPool = block.service_pool() if block is not None else AddressPool("127.0.0.0", 0)
        self._lock = threading.Lock()
        self._services: dict[str, Obj] = {}
        self._pods: dict[str, Obj] = {}
        self._listeners: dict[ListenerKey, socket.socket] = {}
        self._rr: dict[ListenerKey, itertools.count[int]] = {}
        # owned by the loop thread:
        self._failed: dict[ListenerKey, str] = {}
        self._resync_task: asyncio.Task[None] | None = None
        self._again = False
        self._closing = False
        self._accepted: set[socket.socket] = set()  # accepted, no transport yet
        self._connections: set[asyncio.StreamWriter] = set()
        self._stop = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the event loop and the Service / Pod watches."""
        if self.block is None:
            self._claim = loopback.claim(Path(self.store.path).parent if self.store.path != ":memory:" else None)
            self.block = self._claim.block
        self.addresses = self.block.service_pool()
        loop_thread = threading.Thread(target=self._loop.run_forever, name="local-services-loop", daemon=True)
        loop_thread.start()
        self._threads = [
            loop_thread,
            watching.start_follower(self.store, POD, self._stop, self._sync_pods, self._on_pod,
                                    "local-services-pods"),
            watching.start_follower(self.store, SERVICE, self._stop, self._sync_services, self._on_service,
                                    "local-services-watch")]

    def stop(self) -> None:
        """Close every listener and stop the loop."""
        self._stop.set()
        for thread in self._threads[1:]:
            thread.join(10)
        with self._lock:
            self._services.clear()
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._threads[0].join(10)
        self._loop.close()
        if self._claim is not None:
            self._claim.close()
            self._claim, self.block = None, None

    # --------------------------------------------------------------- caches

    def _sync_pods(self, items: list[Obj]) -> None:
        with self._lock:
            self._pods = {p["metadata"]["uid"]: p for p in items}

    def _on_pod(self, event: WatchEvent) -> None:
        with self._lock:
            if event.type == "DELETED":
                self._pods.pop(event.object["metadata"]["uid"], None)
            else:
                self._pods[event.object["metadata"]["uid"]] = event.object

    def _sync_services(self, items: list[Obj]) -> None:
        # a fresh pool from what the store holds: addresses of Services deleted while the watch was
        # down are free again (this runs on the watch thread, as does every allocation)
        if self.block is not None:  # None only once stop() let it go
            self.addresses = self.block.service_pool((s.get("spec") or {}).get("clusterIP") or "" for s in items)
        with self._lock:
            self._services = {}
        for svc in items:
            self._on_service(WatchEvent("ADDED", svc))
        self._schedule()

    def _on_service(self, event: WatchEvent) -> None:
        svc, uid = event.object, event.object["metadata"]["uid"]
        if event.type == "DELETED":
            with self._lock:
                self._services.pop(uid, None)
            self.addresses.release((svc.get("spec") or {}).get("clusterIP") or "")
        else:
            ip = (svc.get("spec") or {}).get("clusterIP")
            if ip:
                self.addresses.claim(ip)  # e.g. given in the manifest: never hand it out again
            else:
                assigned = self._assign_ip(svc)
                if assigned is None:
                    return
                svc = assigned
            with self._lock:
                self._services[uid] = svc
        self._schedule()

    def _assign_ip(self, svc: Obj) -> Obj | None:
        ip = self.addresses.allocate()
        for _ in range(5):
            svc = {**svc, "spec": {**(svc.get("spec") or {}), "clusterIP": ip, "clusterIPs": [ip]}}
            try:
                return self.store.update(svc)
            except Conflict:
                try:
                    svc = self.store.get(SERVICE, svc["metadata"]["namespace"], svc["metadata"]["name"])
                except NotFound:
                    break
            except NotFound:
                break
        self.addresses.release(ip)
        return None

    def endpoints(self, service: Obj, port_spec: Obj) -> list[tuple[str, int]]:
        """``(podIP, targetPort)`` of the ready Pods ``service`` selects, in a stable order."""
        with self._lock:
            pods = sorted((p for p in self._pods.values() if _selects(service, p) and is_ready(p)),
                          key=lambda p: p["metadata"]["name"])
        out = []
        for pod in pods:
            ip, port = (pod.get("status") or {}).get("podIP"), _target_port(port_spec, pod)
            if ip and port:
                out.append((str(ip), port))
        return out

    # ------------------------------------------------------------ listeners

    def _schedule(self) -> None:
        if not self._stop.is_set():
            with contextlib.suppress(RuntimeError):  # the loop is closed: we are stopping
                self._loop.call_soon_threadsafe(self._kick)

    def _kick(self) -> None:
        """On the loop: run a re-sync pass, or one more after the one running (never two at once)."""
        if self._closing:
            return
        if self._resync_task is not None and not self._resync_task.done():
            self._again = True
            return
        self._resync_task = self._loop.create_task(self._resync_passes())

    async def _resync_passes(self) -> None:
        self._again = True
        while self._again and not self._closing:
            self._again = False
            await self._resync()

    async def _resync(self) -> None:
        with self._lock:
            services = list(self._services.values())
        wanted: dict[ListenerKey, tuple[Obj, Obj]] = {}
        for svc in services:
            ip = (svc.get("spec") or {}).get("clusterIP")
            if not ip or ip == "None":
                continue
            for port_spec in (svc.get("spec") or {}).get("ports") or []:
                if str(port_spec.get("protocol", "TCP")).upper() == "TCP" and port_spec.get("port"):
                    wanted[(svc["metadata"]["uid"], ip, int(port_spec["port"]))] = (svc, port_spec)
        for key in [k for k in self._listeners if k not in wanted]:
            self._close_listener(key)
            self._rr.pop(key, None)
        for key in [k for k in self._failed if k not in wanted]:
            del self._failed[key]
        for key, (svc, _port_spec) in wanted.items():
            if key in self._listeners or self._closing:
                continue
            try:
                sock = _bound_socket(key[1], key[2])
                self._loop.add_reader(sock, self._on_acceptable, key, sock)
                self._listeners[key] = sock
                self._rr[key] = itertools.count()
                if self._failed.pop(key, None) is not None:
                    _LOG.info("service %s: listening on %s:%d now", svc["metadata"]["name"], key[1], key[2])
            except OSError as exc:
                self._listen_failed(key, svc, exc)

    def _listen_failed(self, key: ListenerKey, svc: Obj, exc: OSError) -> None:
        message = f"cannot listen on {key[1]}:{key[2]}: {exc.strerror or exc}"
        if self._failed.get(key) == message:
            return  # already reported; retried quietly on every pass
        self._failed[key] = message
        _LOG.warning("service %s: %s", svc["metadata"]["name"], message)

        def record() -> None:
            with contextlib.suppress(ClusterError):
                self.store.emit_event(svc, "ListenFailed", message, "Warning")

        self._loop.run_in_executor(None, record)  # a store write must not block the proxy's loop

    async def _shutdown(self) -> None:
        self._closing = True
        if self._resync_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._resync_task
        for key in list(self._listeners):
            self._close_listener(key)
        for _ in range(10):
            for writer in list(self._connections):
                writer.transport.abort()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if not tasks:
                break
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for sock in self._accepted:  # their tasks were cancelled before their first step
            sock.close()
        self._accepted.clear()
        await asyncio.sleep(0)  # let the transports' queued close callbacks run before the loop stops

    def _current(self, key: ListenerKey) -> tuple[Obj, Obj] | None:
        with self._lock:
            svc = self._services.get(key[0])
        for port_spec in ((svc or {}).get("spec") or {}).get("ports") or []:
            if int(port_spec.get("port", 0)) == key[2]:
                return svc, port_spec  # type: ignore[return-value]
        return None

    def _close_listener(self, key: ListenerKey) -> None:
        sock = self._listeners.pop(key)
        self._loop.remove_reader(sock)
        sock.close()

    def _on_acceptable(self, key: ListenerKey, listener: socket.socket) -> None:
        """On the loop: accept what is waiting on ``listener`` and start proxying each connection."""
        for _ in range(128):
            try:
                conn, _addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: the kernel keeps the rest queued
                _LOG.warning("cannot accept on %s:%d: %s", key[1], key[2], exc)
                return
            conn.setblocking(False)
            self._accepted.add(conn)
            self._loop.create_task(self._proxy(key, conn))

    async def _proxy(self, key: ListenerKey, conn: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_connection(sock=conn)
        except OSError:
            conn.close()
            return
        finally:
            self._accepted.discard(conn)
        self._connections.add(writer)
        await self._proxy_streams(key, reader, writer)

    async def _proxy_streams(self, key: ListenerKey, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        try:
            await self._forward(key, reader, writer)
        finally:
            self._connections.discard(writer)
            # cancelled or failed half-way, or stopping (a close() waiting to flush to a peer that does not
            # read would outlive the loop): never leave the socket open
            if self._closing or not writer.transport.is_closing():
                writer.transport.abort()

    async def _forward(self, key: ListenerKey, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        found = self._current(key)
        endpoints = self.endpoints(*found) if found else []
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        if endpoints:
            first = next(self._rr.setdefault(key, itertools.count()))
            for i in range(len(endpoints)):
                host, port = endpoints[(first + i) % len(endpoints)]
                try:
                    upstream = await asyncio.wait_for(asyncio.open_connection(host, port), self.connect_timeout)
                    break
                except (OSError, asyncio.TimeoutError):
                    continue
        if upstream is None:
            _reset(writer)
            return
        up_reader, up_writer = upstream
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for end in (writer, up_writer):
                if self._closing:
                    end.transport.abort()
                else:
                    end.close()

    @property
    def listening(self) -> list[tuple[str, int]]:
        """``(cluster IP, port)`` of every open listener (for tests and diagnostics)."""
        return sorted((k[1], k[2]) for k in list(self._listeners))

    def __repr__(self) -> str:
        return f"ServiceProxy(listeners={self.listening})"
