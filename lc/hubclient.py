"""The LC end of the edge hub: dial the GM, resync, persist-then-ack objects, drain the outbox.

One session = one gRPC stream. It opens with a hello listing every stored object and the
outbox epoch; the GM answers with upserts/deletes then ``ResyncDone``. Each downstream object
is written to :class:`~lc.store.Store` before its ack is sent, so an ack always means
"durable"; acks gather for up to ``ACK_DELAY`` and go out as one ``ObjectAcks`` (a GM fanning
one change out to thousands of nodes then writes to all of them before it reads their acks). A
pump thread sends outbox reports in ``seq`` order, resends one that stays unacknowledged for
``ack_timeout`` (the GM drops duplicates), sends an app-level ping when the stream did not carry a
message both ways within ``ping_interval`` (an LC acking a fan-out, or reporting and being
answered, needs no ping: each end has just heard from the other) and
cancels the stream when nothing arrived for three intervals (gRPC keepalive catches dead TCP
links underneath). A lost stream is re-dialled after a jittered exponential backoff from
``backoff_min`` to ``backoff_max``; a refused token is logged as an error naming the node every
time. Callers: :mod:`lc.main` wires it; managers call :meth:`wake`.

Identity (``docs/identity.md``): the token comes from :class:`~lc.credentials.CredentialStore`.
Without one the LC first joins with its bootstrap token (:mod:`lc.joining`); when the GM refuses
the stored token for good (``unknown-node``: revoked; ``expired``) it forgets it and joins again
if it still has a bootstrap token. A :class:`~sedna.controlplane.edgehub.Credential` from the GM
is stored before it is acknowledged (``CredentialAck`` for a new token), so the GM retires the old
token only once the new one is on disk; the new one is used from the next connection on.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from lc.credentials import CredentialStore
from lc.joining import JoinFailed, auth_reason, join, open_channel
from lc.settings import HubSettings
from lc.store import Store
from sedna.controlplane import edgehub as eh

LOG = logging.getLogger(__name__)
_MAX_INFLIGHT = 1000
FORGET_TOKEN_REASONS = frozenset({"unknown-node", "expired", "revoked"})
"""Refusals after which the stored token can never work again."""
ACK_DELAY = 0.2
"""Most seconds a stored object waits for its ack (the GM resends after ``ack_timeout``, 10 s)."""


class HubClient:
    def __init__(self, settings: HubSettings, store: Store, credentials: CredentialStore,
                 on_change: Callable[[eh.ObjectKey], None] | None = None) -> None:
        self.settings = settings
        self.credentials = credentials
        self._store = store
        self._on_change = on_change or (lambda key: None)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._call: Any = None
        self.connected = False
        """True between ResyncDone and the end of the stream."""
        self.last_error = ""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lc-hub", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        call = self._call
        if call is not None:
            call.cancel()
        if self._thread is not None:
            self._thread.join(5)

    def wake(self) -> None:
        """New outbox entries: send them now."""
        self._wake.set()

    # ------------------------------------------------------------------ loop

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            resynced = self._session()
            failures = 0 if resynced else failures + 1
            delay = min(self.settings.backoff_max, self.settings.backoff_min * 2 ** max(0, failures - 1))
            self._stop.wait(random.uniform(delay / 2, delay))

    def _token(self) -> str:
        """The token to dial with, joining first when there is none ('' when that failed)."""
        token = self.credentials.token()
        if token:
            return token
        s = self.settings
        if not s.bootstrap_token:
            self.last_error = (f"node {s.node!r} has no credential and no bootstrap token to join with; give the LC "
                               "--bootstrap-token")
            LOG.error("%s", self.last_error)
            return ""
        try:
            joined = join(s, s.bootstrap_token)
        except JoinFailed as exc:
            self.last_error = str(exc)
            LOG.error("%s", exc)
            return ""
        self.credentials.joined(joined)
        LOG.info("node %r joined GM %s; credential stored in %s", s.node, s.gm_address, self.credentials.path)
        return joined.token

    def _session(self) -> bool:
        """Run one stream until it ends; True when it got as far as a completed resync."""
        import grpc

        from sedna.proto.edgehub_pb2_grpc import EdgeHubStub

        s = self.settings
        token = self._token()
        if not token:
            return False
        out: queue.Queue[eh.UpMessage] = queue.Queue()
        done = threading.Event()
        state = _SessionState()
        out.put(eh.Hello(eh.NodeName(s.node), self._store.refs(), self._store.outbox_epoch()))
        channel = open_channel(s)
        try:
            call = EdgeHubStub(channel).Connect(  # type: ignore[no-untyped-call,unused-ignore]  # generated, untyped
                _requests(out, done, state),
                metadata=((eh.NODE_METADATA, s.node), ("authorization", f"Bearer {token}")))
            self._call = call
            pump = threading.Thread(target=self._pump, args=(state, out, done, call), name="lc-hub-pump", daemon=True)
            pump.start()
            for pb in call:
                state.last_recv = time.monotonic()
                try:
                    msg = eh.down_from_proto(pb)
                except eh.MalformedMessage as exc:
                    LOG.warning("ignoring malformed message from GM: %s", exc)
                    continue
                acks = [ref for item in (msg.messages if isinstance(msg, eh.Batch) else [msg])
                        if (ref := self._handle(item, state, out)) is not None]
                if acks:  # after every object of the batch is stored: an ack means "durable"
                    state.add_acks(acks)
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details()
            if code == grpc.StatusCode.UNAUTHENTICATED:
                reason = auth_reason(exc)
                self.last_error = f"GM {s.gm_address} refused node {s.node!r}: {details}"
                if reason in FORGET_TOKEN_REASONS and self.credentials.has_issued_token():
                    self.credentials.forget_token()
                    LOG.error("%s; %s", self.last_error, "joining again with the bootstrap token" if s.bootstrap_token
                              else "give the LC a bootstrap token (--bootstrap-token) to join again")
                else:
                    LOG.error("%s; check --node and the node's credential", self.last_error)
            elif not self._stop.is_set():
                self.last_error = f"hub link to {s.gm_address} lost: {code.name} {details}"
                LOG.warning("%s; reconnecting", self.last_error)
        finally:
            self.connected = False
            done.set()
            self._call = None
            channel.close()
        return state.resynced

    def _handle(self, msg: eh.DownMessage, state: _SessionState,
                out: queue.Queue[eh.UpMessage]) -> eh.ObjectRef | None:
        """Act on one (non-batch) message; return the ref to acknowledge for objects."""
        if isinstance(msg, eh.Upsert):
            self._store.put_object(msg.ref.key, msg.ref.resource_version, msg.object)
            self._on_change(msg.ref.key)
            return msg.ref
        if isinstance(msg, eh.Delete):
            self._store.delete_object(msg.ref.key)
            self._on_change(msg.ref.key)
            return msg.ref
        if isinstance(msg, eh.ReportAck):
            self._store.outbox_delete(msg.seq)
            state.inflight.pop(msg.seq, None)
            if not msg.accepted:
                LOG.warning("GM rejected report %d: %s", msg.seq, msg.reason)
        elif isinstance(msg, eh.ResyncDone):
            state.resynced = True
            self.connected = True
            self.last_error = ""
            LOG.info("connected to GM %s as %r: resync sent %d upserts, %d deletes",
                     self.settings.gm_address, self.settings.node, msg.upserts, msg.deletes)
        elif isinstance(msg, eh.Ping):
            out.put(eh.Pong(msg.nonce))
        elif isinstance(msg, eh.Credential):
            self.credentials.received(msg)  # on disk before the GM hears that we have it
            if msg.token:
                out.put(eh.CredentialAck(eh.token_sha256(msg.token)))
                LOG.info("stored a new node token from the GM (valid until %s)",
                         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(msg.expires)))
        return None

    def _pump(self, state: _SessionState, out: queue.Queue[eh.UpMessage], done: threading.Event, call: Any) -> None:
        s = self.settings
        nonce = 0
        last_ping = time.monotonic()
        while not done.is_set() and not self._stop.is_set():
            self._wake.wait(state.ack_due_in(time.monotonic()))
            self._wake.clear()
            now = time.monotonic()
            acks = state.take_acks(now)
            if acks:
                out.put(eh.ObjectAck(acks[0]) if len(acks) == 1 else eh.ObjectAcks(acks))
            room = _MAX_INFLIGHT - len(state.inflight)
            if room > 0:
                for seq, key, payload in self._store.outbox_after(state.last_sent, room):
                    out.put(eh.Report(seq, key, payload))
                    state.inflight[seq] = now
                    state.last_sent = seq
            for seq, sent in list(state.inflight.items()):
                if now - sent > s.ack_timeout:
                    row = self._store.outbox_get(seq)
                    if row is None:
                        state.inflight.pop(seq, None)
                        continue
                    out.put(eh.Report(seq, row[0], row[1]))
                    state.inflight[seq] = now
            if now - last_ping >= s.ping_interval and state.quiet_for(now) >= s.ping_interval:
                nonce += 1
                out.put(eh.Ping(nonce))
                last_ping = now
            if now - state.last_recv > 3 * s.ping_interval:
                LOG.warning("no message from GM %s for %.1fs; dropping the link", s.gm_address, now - state.last_recv)
                call.cancel()
                return


class _SessionState:
    def __init__(self) -> None:
        self.last_recv = time.monotonic()
        self.last_out = self.last_recv
        """When a message last went up the stream (monotonic seconds)."""
        self.last_sent = 0
        self.inflight: dict[int, float] = {}
        self.resynced = False
        self._acks: list[eh.ObjectRef] = []
        self._acks_since = 0.0
        self._acks_lock = threading.Lock()

    def quiet_for(self, now: float) -> float:
        """Seconds since the stream last carried a message in *both* directions."""
        return now - min(self.last_recv, self.last_out)

    def add_acks(self, refs: list[eh.ObjectRef]) -> None:
        """Objects now stored, to acknowledge once the oldest has waited ``ACK_DELAY``."""
        with self._acks_lock:
            if not self._acks:
                self._acks_since = time.monotonic()
            self._acks += refs

    def ack_due_in(self, now: float) -> float:
        """Seconds until the pending acks are due (ACK_DELAY when there are none)."""
        with self._acks_lock:
            return max(0.0, self._acks_since + ACK_DELAY - now) if self._acks else ACK_DELAY

    def take_acks(self, now: float) -> list[eh.ObjectRef]:
        """The pending acks once the oldest has waited ``ACK_DELAY`` (a wake for reports does not cut it short)."""
        with self._acks_lock:
            if not self._acks or now - self._acks_since < ACK_DELAY:
                return []
            acks, self._acks = self._acks, []
        return acks


def _requests(out: queue.Queue[eh.UpMessage], done: threading.Event, state: _SessionState) -> Iterator[Any]:
    while not done.is_set():
        try:
            msg = out.get(timeout=0.25)
        except queue.Empty:
            continue
        state.last_out = time.monotonic()
        yield eh.up_to_proto(msg)
