"""The hub's state and the life of one node's stream (everything but gRPC plumbing).

:class:`HubCore` owns the :class:`~gm.hub.routing.Router` (guarded by a thread lock: watch threads
write it), one :class:`~gm.hub.queues.NodeQueue` per node and the current :class:`Session` per
node (event-loop side). Watch events become per-node queue entries through
``loop.call_soon_threadsafe``. A session answers the hello with the exact resync difference,
then writes queued changes, report acks and pongs (pre-encoded bytes, batched; a ping is answered
only when no object reached the node since its previous ping); it reads acks,
reports (applied in order, one node at a time, via :class:`~gm.hub.upstream.Upstream` in a
worker thread) and pings. A malformed message is logged and rejected (with a ReportAck when it
carried a seq) and the stream goes on. A newer stream for the same node closes the older one.
One :meth:`HubCore.tick` task checks every session for silence and unacked objects (history: a
timer per stream cost a thousand wake-ups a second). :mod:`.server` wraps this in gRPC and sets
the identity hooks: ``on_ready`` (after the resync: send the node its credential) and
``on_credential_ack``; :meth:`HubCore.revoke` ends a node's stream when its credential goes.
Reports pass :meth:`HubCore.authorize` (:mod:`.authorization`) before any handler sees them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gm.cluster.interface import Cluster, Kind, Obj
from sedna.controlplane import edgehub as eh

from . import authorization
from .queues import NodeQueue
from .routing import Change, Router
from .sequences import SequenceBook
from .upstream import HandlerRegistry, Upstream

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class HubSettings:
    """Timing of the GM side of the hub."""

    ack_timeout: float = 10.0
    """Seconds before an unacknowledged downstream message is sent again."""
    dead_after: float = 20.0
    """Seconds without any upstream message (LCs ping every few seconds) before a stream is dropped."""
    keepalive: float = 10.0
    """gRPC HTTP/2 keepalive interval, seconds."""
    tick: float = 1.0
    """Seconds between checks for dead streams and unacknowledged objects."""
    batch_messages: int = 512
    """Most downstream messages packed into one gRPC message."""
    batch_bytes: int = 4 * 2**20
    """Most bytes packed into one gRPC message (a bigger single object still goes, alone)."""
    default_node: str = ""
    """Node of cloud workers whose template names none (``ControllerSettings.default_cloud_node``), so
    the router sends their objects where the controllers place them."""


class Session:
    def __init__(self, node: eh.NodeName, queue: NodeQueue) -> None:
        self.node = node
        self.queue = queue
        self.direct: list[eh.DownMessage] = []
        self.ready = False
        self.closed = False
        self.revoked = False
        """Closed because the node's credential was revoked (the stream ends UNAUTHENTICATED)."""
        self.via = ""
        """Which credential authenticated the stream: ``current``, ``previous`` or ``preshared``."""
        self.last_recv = time.monotonic()
        self.last_delivery = 0.0
        """When the GM last wrote queued objects to the stream (monotonic seconds; 0 before the first)."""
        self.last_ping: float | None = None
        """When the node's last ping arrived (monotonic seconds)."""
        self.connected_at = time.time()
        self.last_report: float | None = None
        self.reports = 0

    def view(self, now_wall: float, now_mono: float) -> dict[str, Any]:
        """A read-only snapshot (wall-clock times) for status pages."""
        return {"connected": self.ready and not self.closed, "since": self.connected_at,
                "lastSeen": now_wall - (now_mono - self.last_recv), "lastReport": self.last_report,
                "reports": self.reports, "pending": len(self.queue.pending), "inflight": len(self.queue.inflight)}

    def send(self, msg: eh.DownMessage) -> None:
        self.direct.append(msg)
        self.queue.wake.set()

    def close(self) -> None:
        self.closed = True
        self.queue.wake.set()


class HubCore:
    def __init__(self, cluster: Cluster, handlers: HandlerRegistry, settings: HubSettings,
                 count: Callable[[str, str], None]) -> None:
        self.router = Router(settings.default_node)
        self.lock = threading.Lock()
        self.settings = settings
        self.queues: dict[str, NodeQueue] = {}
        self.sessions: dict[eh.NodeName, Session] = {}
        self.upstream = Upstream(cluster, handlers, SequenceBook(cluster), count, authorize=self.authorize)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ticker: asyncio.Future[None] | None = None
        self.tasks: set[asyncio.Future[None]] = set()
        """Other loop tasks (identity: rotations), cancelled when the hub stops."""
        self.on_ready: Callable[[Session], Awaitable[None]] | None = None
        self.on_credential_ack: Callable[[Session, eh.CredentialAck], Awaitable[None]] | None = None
        self._apply_locks: dict[str, asyncio.Lock] = {}
        self._encoded: dict[eh.ObjectKey, tuple[str, bytes]] = {}  # key -> (version, wire message)
        self.departed: dict[str, dict[str, Any]] = {}  # node -> snapshot of its last session when it ended

    # ------------------------------------------------------- watch threads

    def apply_event(self, event_type: str, obj: Obj) -> None:
        with self.lock:
            changes = self.router.apply(event_type, obj)
        self._schedule(changes)

    def forget(self, kind: Kind, present: set[str]) -> None:
        """After a relist: objects of ``kind`` not in ``present`` (``ns/name``) were deleted."""
        changes: list[Change] = []
        with self.lock:
            for key in self.router.keys_of_kind(kind.kind.lower()):
                if f"{key.namespace}/{key.name}" not in present:
                    changes += self.router.apply("DELETED", self.router.objects[key])
        self._schedule(changes)

    def authorize(self, node: eh.NodeName, report: eh.Report) -> str:
        """Why ``node`` may not report ``report`` ('' when it may); see :mod:`.authorization`."""
        with self.lock:
            return authorization.refusal(self.router, node, report)

    def _schedule(self, changes: list[Change]) -> None:
        if changes and self.loop is not None:
            self.loop.call_soon_threadsafe(self._deliver, changes)

    # ----------------------------------------------------------- loop side

    def queue(self, node: str) -> NodeQueue:
        if node not in self.queues:
            self.queues[node] = NodeQueue()
        return self.queues[node]

    def encode(self, change: Change) -> tuple[eh.ObjectRef, bytes]:
        """The wire bytes for ``change``; an object version is encoded once for all nodes."""
        ref = change.ref
        if change.object is None:
            self._encoded.pop(ref.key, None)
            return ref, eh.down_bytes(eh.Delete(ref))
        cached = self._encoded.get(ref.key)
        if cached is None or cached[0] != ref.resource_version:
            cached = (ref.resource_version, eh.down_bytes(eh.Upsert(ref, change.object)))
            self._encoded[ref.key] = cached
        return ref, cached[1]

    def _deliver(self, changes: list[Change]) -> None:
        for change in changes:
            self.queue(change.node).put(self.encode(change))

    def attach(self, node: eh.NodeName) -> Session:
        old = self.sessions.get(node)
        if old is not None:
            LOG.info("node %s connected again; closing its previous stream", node)
            old.close()
        session = Session(node, self.queue(node))
        self.sessions[node] = session
        return session

    def spawn(self, coro: Awaitable[None]) -> None:
        """Run ``coro`` as a task of the hub's loop (loop side); it is cancelled when the hub stops."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def revoke(self, node: str) -> None:
        """End ``node``'s stream: its credential was revoked (loop side)."""
        session = self.sessions.get(eh.NodeName(node))
        if session is not None:
            session.revoked = True
            session.close()

    def detach(self, session: Session) -> None:
        session.close()
        if self.sessions.get(session.node) is session:
            del self.sessions[session.node]
            self.departed[session.node] = {**session.view(time.time(), time.monotonic()), "connected": False,
                                           "disconnectedAt": time.time()}

    def node_sessions(self) -> dict[str, dict[str, Any]]:
        """Every node that has had a stream: its current session's snapshot, else how its last one ended."""
        now_wall, now_mono = time.time(), time.monotonic()
        out = dict(self.departed)
        for node, session in list(self.sessions.items()):
            out[node] = session.view(now_wall, now_mono)
        return out

    async def hello(self, session: Session, msg: eh.Hello) -> None:
        if msg.node != session.node:
            raise eh.MalformedMessage(f"hello.node: {msg.node!r} is not the authenticated node {session.node!r}")
        await asyncio.to_thread(self.upstream.book.begin, session.node, msg.outbox_epoch)
        with self.lock:
            changes = self.router.resync(session.node, msg.objects)
        session.queue.reset([self.encode(c) for c in changes])
        upserts = sum(1 for c in changes if c.object is not None)
        downs = changes
        session.ready = True
        session.send(eh.ResyncDone(upserts, len(downs) - upserts))
        if self.on_ready is not None:
            await self.on_ready(session)
        LOG.info("node %s: hello with %d objects; resync sends %d upserts, %d deletes",
                 session.node, len(msg.objects), upserts, len(downs) - upserts)

    async def read(self, session: Session, requests: AsyncIterator[Any]) -> None:
        """Consume the LC's messages until the stream or the session ends."""
        async for pb in requests:
            session.last_recv = time.monotonic()
            if session.ready and _ack_fast(session.queue, pb):
                continue
            try:
                msg = eh.up_from_proto(pb)
                if isinstance(msg, eh.Hello):
                    await self.hello(session, msg)
                elif not session.ready:
                    raise eh.MalformedMessage("the first message must be a hello")
                elif isinstance(msg, eh.ObjectAcks):
                    for ref in msg.refs:
                        session.queue.ack(ref)
                elif isinstance(msg, eh.ObjectAck):
                    session.queue.ack(msg.ref)
                elif isinstance(msg, eh.Report):
                    await self._report(session, msg)
                elif isinstance(msg, eh.Ping):
                    self._answer_ping(session, msg)
                elif isinstance(msg, eh.CredentialAck) and self.on_credential_ack is not None:
                    await self.on_credential_ack(session, msg)
            except eh.MalformedMessage as exc:
                LOG.warning("node %s: rejected malformed message: %s", session.node, exc)
                if exc.seq is not None:
                    session.send(eh.ReportAck(exc.seq, accepted=False, reason=str(exc)))
            if session.closed:
                return

    @staticmethod
    def _answer_ping(session: Session, msg: eh.Ping) -> None:
        """Pong, unless objects reached the node since its previous ping.

        The LC only needs to hear from the GM once per ping interval (it drops the stream after
        three silent ones), so a node that just received a fan-out needs no pong: it would be a
        second write to that stream in the interval. With 10 000 nodes pinging every 5 s, 2000
        pings arrive each second; during a fan-out most of them now cost the hub no write.
        """
        previous, session.last_ping = session.last_ping, time.monotonic()
        if previous is None or session.last_delivery <= previous:
            session.send(eh.Pong(msg.nonce))

    async def _report(self, session: Session, msg: eh.Report) -> None:
        lock = self._apply_locks.setdefault(session.node, asyncio.Lock())
        async with lock:
            try:
                ack = await asyncio.to_thread(self.upstream.apply, session.node, msg)
            except Exception as exc:  # the cluster or the handler failed: drop the stream, the LC resends in order
                LOG.error("node %s: applying report %d for %s failed (%s: %s); dropping the stream",
                          session.node, msg.seq, msg.key, type(exc).__name__, exc)
                session.close()
                return
        session.last_report, session.reports = time.time(), session.reports + 1
        session.send(ack)

    async def write(self, session: Session, write: Callable[[bytes], Awaitable[None]]) -> None:
        """Write queued and direct messages until the session closes, several per gRPC message.

        Everything pending goes out at once, packed into batches of at most ``batch_messages``
        messages / ``batch_bytes`` bytes; direct messages (report acks, ResyncDone, pongs) follow
        the queued objects, so ResyncDone comes after the resync's upserts. Timeouts are the
        :meth:`tick` task's business, so an idle stream costs one parked coroutine.
        """
        queue, settings = session.queue, self.settings
        while not session.closed:
            if not session.direct and not (session.ready and queue.pending):
                queue.wake.clear()
                await queue.wake.wait()
                continue
            wires = [wire for _ref, wire in queue.take(time.monotonic(), limit=1 << 30)] if session.ready else []
            if wires:
                session.last_delivery = time.monotonic()
            direct, session.direct = session.direct, []
            wires += [eh.down_bytes(msg) for msg in direct]
            for chunk in chunks(wires, settings.batch_messages, settings.batch_bytes):
                await write(eh.batch_bytes(chunk))

    async def tick(self) -> None:
        """Once a second: drop streams silent for ``dead_after``, requeue objects unacked for ``ack_timeout``."""
        settings = self.settings
        while True:
            await asyncio.sleep(settings.tick)
            now = time.monotonic()
            for session in list(self.sessions.values()):
                if now - session.last_recv > settings.dead_after:
                    LOG.warning("node %s: nothing received for %.0fs; dropping the stream", session.node,
                                now - session.last_recv)
                    session.close()
                elif session.ready and session.queue.inflight:
                    session.queue.requeue_expired(now, settings.ack_timeout)


def _ack_fast(queue: NodeQueue, pb: Any) -> bool:
    """Apply an ``ack`` / ``acks`` message when every ref in it is in flight at that version; else False.

    The common case (an LC acknowledging what it was sent) then builds no intermediate objects;
    anything else (stale or malformed refs, other messages) takes the validating path.
    """
    which = pb.WhichOneof("body")
    if which == "acks":
        refs = pb.acks.refs
    elif which == "ack":
        refs = (pb.ack.ref,)
    else:
        return False
    return bool(refs) and queue.ack_exact([(eh.ObjectKey(r.kind, r.namespace or "default", r.name),
                                            r.resource_version) for r in refs])


def chunks(wires: list[bytes], max_messages: int, max_bytes: int) -> list[list[bytes]]:
    """Split ``wires`` in order into runs of at most ``max_messages`` and (unless one is bigger) ``max_bytes``."""
    out: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for wire in wires:
        if current and (len(current) >= max_messages or size + len(wire) > max_bytes):
            out.append(current)
            current, size = [], 0
        current.append(wire)
        size += len(wire)
    if current:
        out.append(current)
    return out
