"""Node credentials: join, authenticate, rotate, confirm, revoke (``docs/identity.md``).

:class:`NodeIdentity` is the GM's one authority on who a node is. It keeps every node's
:class:`~gm.identity.records.NodeRecord` in memory, loaded from the node credential Secrets of
its namespace and kept current by a watch, so authenticating a stream is a dictionary lookup
and a constant-time compare. Writes (join, rotation, confirmation) go to the cluster first and
update the cache with what was stored. Deleting a node's Secret, or its Node object, revokes the
node: the watch calls every ``on_revoked`` callback (the hub drops the node's stream) and its
token is refused from then on.

Pre-shared tokens (``NODE=TOKEN`` given to the GM, for tests, benchmarks and clusters set up
before joins existed) authenticate a node that has no record; once a node holds an issued
credential (it joined, or its token was rotated) only that one counts. A pre-shared node whose
Node object is deleted is refused until the Node exists again (a restarted GM reads the tokens
anew: remove the line too).

Keys: the GM's identity key (Secret ``sedna-identity``, created on first start) derives each
node's **worker key** (``HMAC(key, "sedna-worker-key/v1/<node>")``: stable for the node's
lifetime in the cluster, so the GM can issue worker credentials before the node joins and a
re-join does not invalidate running workers) and each federated job's signing key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from gm.cluster.interface import NODE, SECRET, AlreadyExists, Cluster, Conflict, NotFound, Obj
from gm.identity import records
from gm.identity.bootstrap import BootstrapToken, BootstrapTokens, JoinRefused
from gm.identity.records import NodeRecord
from gm.identity.watching import watch_forever
from sedna.controlplane.edgehub import Credential, Joined, NodeName, token_sha256

LOG = logging.getLogger(__name__)
KEY_SECRET = "sedna-identity"
Callback = Callable[[str], None]


@dataclass(frozen=True)
class IdentitySettings:
    """How node credentials are issued and checked."""

    namespace: str = "sedna"
    """Namespace of the node credential Secrets and the identity key."""
    credential_ttl: float = 30 * 86400.0
    """Seconds a node token is valid; the hub rotates it when a third is left."""
    rotation_grace: float = 600.0
    """Seconds the token an LC held before a rotation stays valid while the LC has not confirmed the new one."""
    preshared: Mapping[str, str] = field(default_factory=dict)
    """``node -> token`` accepted for nodes without an issued credential."""
    bootstrap_tokens: tuple[BootstrapToken, ...] = ()
    bootstrap_file: str = ""
    """File of bootstrap tokens (see :mod:`gm.identity.bootstrap`), read again when it changes."""


@dataclass(frozen=True)
class Verdict:
    """An authenticated node and the credential it used: ``current``, ``previous`` or ``preshared``."""

    node: NodeName
    via: str


class NodeIdentity:
    """Every node's credential; thread-safe. ``start()`` before use, ``stop()`` after."""

    def __init__(self, cluster: Cluster, settings: IdentitySettings | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.cluster = cluster
        self.settings = settings or IdentitySettings()
        self.bootstrap = BootstrapTokens(cluster, self.settings.namespace, self.settings.bootstrap_tokens,
                                         self.settings.bootstrap_file)
        self.on_revoked: list[Callback] = []
        """Called (from a watch thread) with a node whose credential was revoked."""
        self.on_rotation_requested: list[Callback] = []
        """Called (from a watch thread) with a node whose Secret asks for a rotation."""
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[str, NodeRecord] = {}
        self._gone_nodes: set[str] = set()  # pre-shared nodes whose Node object was deleted
        self._key = b""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ life

    def load_key(self) -> None:
        """Read the GM's identity key (creating it on the first start); :meth:`start` does it too."""
        self._key = self._identity_key()

    def start(self) -> None:
        """Load the identity key and every record, then watch Secrets and Nodes."""
        self.load_key()
        loaded = 0
        for secret in self.cluster.list(SECRET, self.settings.namespace):
            loaded += self._remember(secret)
        LOG.info("node identity: %d issued node credentials in namespace %s, %d pre-shared tokens", loaded,
                 self.settings.namespace, len(self.settings.preshared))
        for kind, namespace, apply, relisted in (
                (SECRET, self.settings.namespace, self._secret_event, self._secrets_relisted),
                (NODE, None, self._node_event, None)):
            thread = threading.Thread(target=watch_forever, name=f"identity-watch-{kind.plural}", daemon=True,
                                      args=(self.cluster, kind, namespace, apply, relisted, self._stop))
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)

    def _identity_key(self) -> bytes:
        namespace = self.settings.namespace
        for _ in range(5):
            try:
                secret = self.cluster.get(SECRET, namespace, KEY_SECRET)
                return base64.b64decode((secret.get("data") or {})["key"])
            except NotFound:
                key = secrets.token_bytes(32)
                try:
                    self.cluster.create({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                         "metadata": {"name": KEY_SECRET, "namespace": namespace},
                                         "data": {"key": base64.b64encode(key).decode()}})
                    LOG.info("created the GM identity key (Secret %s/%s)", namespace, KEY_SECRET)
                    return key
                except AlreadyExists:
                    continue
            except (KeyError, ValueError):
                raise RuntimeError(f"Secret {namespace}/{KEY_SECRET} has no valid base64 'key'; delete it to "
                                   "create a new one (every worker then gets new credentials)") from None
        raise RuntimeError(f"could not read or create Secret {namespace}/{KEY_SECRET}")

    # ----------------------------------------------------------------- cache

    def _remember(self, secret: Obj) -> int:
        record = records.from_secret(secret)
        if record is None:
            return 0
        with self._lock:
            old = self._records.get(record.node)
            if old is None or not _later(old.resource_version, record.resource_version):
                self._records[record.node] = record
        return 1

    def _secret_event(self, event_type: str, secret: Obj) -> None:
        record = records.from_secret(secret)
        if record is None:
            return
        if event_type == "DELETED":
            with self._lock:
                current = self._records.get(record.node)
                if current is None or _later(current.resource_version, record.resource_version):
                    return  # a newer Secret of the same name exists (joined again)
                del self._records[record.node]
            self._revoked(record.node, "its credential Secret was deleted")
            return
        self._remember(secret)
        if record.rotate_request and record.rotate_request != record.rotated:
            for callback in list(self.on_rotation_requested):
                callback(record.node)

    def _secrets_relisted(self, present: list[Obj]) -> None:
        nodes = {r.node for r in map(records.from_secret, present) if r is not None}
        with self._lock:
            gone = [node for node in self._records if node not in nodes]
            for node in gone:
                del self._records[node]
        for node in gone:
            self._revoked(node, "its credential Secret was deleted")

    def _node_event(self, event_type: str, node_obj: Obj) -> None:
        node = str((node_obj.get("metadata") or {}).get("name") or "")
        if event_type != "DELETED":
            with self._lock:
                self._gone_nodes.discard(node)
            return
        with self._lock:
            self._gone_nodes.add(node)
            issued = node in self._records
        if issued:
            self.revoke(node)  # the Secret's DELETED event calls the callbacks
        else:
            self._revoked(node, "its Node object was deleted")

    def _revoked(self, node: str, why: str) -> None:
        LOG.warning("node %s: credential revoked (%s)", node, why)
        for callback in list(self.on_revoked):
            callback(node)

    def record(self, node: str) -> NodeRecord | None:
        with self._lock:
            return self._records.get(node)

    def records(self) -> list[NodeRecord]:
        with self._lock:
            return sorted(self._records.values(), key=lambda r: r.node)

    # ----------------------------------------------------------------- checks

    def authenticate(self, node: str, token: str) -> Verdict:
        """The node ``token`` proves, or :class:`JoinRefused` saying why not (no I/O)."""
        if not node:
            raise JoinRefused("no-node", "missing 'x-sedna-node' metadata naming the node")
        now = self._clock()
        digest = token_sha256(token)
        with self._lock:
            record = self._records.get(node)
            gone = node in self._gone_nodes
        if record is not None and record.token_sha256:
            if _same(digest, record.token_sha256):
                if now >= record.expires:
                    raise JoinRefused("expired", f"the credential of node {node!r} has expired; the LC joins again "
                                                 "with a bootstrap token")
                return Verdict(NodeName(node), "current")
            if record.previous_sha256 and _same(digest, record.previous_sha256) and now < record.previous_expires:
                return Verdict(NodeName(node), "previous")
            raise JoinRefused("bad-token", f"wrong token for node {node!r}")
        expected = self.settings.preshared.get(node)
        if expected is None or gone:
            raise JoinRefused("unknown-node", f"node {node!r} has no credential on this GM (it was never joined, or "
                                              "its credential was revoked): join with a bootstrap token")
        if not hmac.compare_digest(token.encode(), expected.encode()):
            raise JoinRefused("bad-token", f"wrong token for node {node!r}")
        return Verdict(NodeName(node), "preshared")

    def rotation_due(self, node: str) -> str:
        """Why ``node``'s token should be rotated now ('' when it need not be, or it has no issued one)."""
        record = self.record(node)
        if record is None or not record.token_sha256:
            return ""
        return record.rotation_due(self._clock(), self.settings.credential_ttl)

    # ----------------------------------------------------------------- writes

    def join(self, node: str, bootstrap_token: str) -> Joined:
        """Issue ``node`` a credential in exchange for a bootstrap token; :class:`JoinRefused` otherwise."""
        problem = records.check_node_name(node)
        if problem:
            raise JoinRefused("invalid-node-name", problem)
        entry = self.bootstrap.check(bootstrap_token, node, self._clock())
        if node in self.settings.preshared:
            raise JoinRefused("preshared-node", f"node {node!r} has a pre-shared token on this GM; it connects "
                                                "with that one (remove it from the GM's node tokens to let it join)")
        name = records.secret_name(node)
        try:
            stored: Obj | None = self.cluster.get(SECRET, self.settings.namespace, name)
        except NotFound:
            stored = None
        held = records.from_secret(stored) if stored is not None else None
        now = int(self._clock())
        if held is not None and held.token_sha256 and now < held.expires:
            raise JoinRefused("already-joined", f"node {node!r} already holds a live credential; to join it again, "
                                                f"revoke that one first (sedna node revoke {node}, or delete Secret "
                                                f"{self.settings.namespace}/{name})")
        self.bootstrap.consume(entry)
        token = secrets.token_urlsafe(32)
        ttl = int(self.settings.credential_ttl)
        record = NodeRecord(node=node, token_sha256=token_sha256(token), expires=now + ttl, issued=now,
                            rotated=held.rotate_request if held else "")
        secret = records.to_secret(record, self.settings.namespace, stored)
        try:
            saved = self.cluster.update(secret) if stored is not None else self.cluster.create(secret)
        except (AlreadyExists, Conflict):
            raise JoinRefused("busy", f"node {node!r} is joining from elsewhere at the same moment; retry") from None
        self._remember(saved)
        LOG.info("node %s joined (bootstrap token %s); credential valid until %s", node, entry.id, _utc(now + ttl))
        return Joined(NodeName(node), token, now + ttl, self.worker_key(node))

    def _update(self, node: str, change: Callable[[NodeRecord], NodeRecord | None]) -> NodeRecord | None:
        """Apply ``change`` to the stored record (retrying on conflicts); None when there is none or no change."""
        name = records.secret_name(node)
        for _ in range(5):
            try:
                stored = self.cluster.get(SECRET, self.settings.namespace, name)
            except NotFound:
                return None
            record = records.from_secret(stored)
            new = change(record) if record is not None else None
            if new is None:
                return None
            try:
                saved = self.cluster.update(records.to_secret(new, self.settings.namespace, stored))
            except Conflict:
                continue
            except NotFound:
                return None
            self._remember(saved)
            return records.from_secret(saved)
        raise Conflict(f"could not update Secret {self.settings.namespace}/{name} after 5 attempts")

    def rotate(self, node: str) -> Credential | None:
        """Issue ``node`` a new token (the one it holds stays valid for the grace period); None if it has no record."""
        token = secrets.token_urlsafe(32)
        now = int(self._clock())
        s = self.settings
        saved = self._update(node, lambda r: r.rotate(token_sha256(token), now, int(s.credential_ttl),
                                                      int(s.rotation_grace)))
        if saved is None:
            return None
        LOG.info("node %s: token rotated; valid until %s", node, _utc(saved.expires))
        return Credential(token, saved.expires, self.worker_key(node))

    def previous_pending(self, node: str) -> bool:
        """``node`` was given a new token and has not confirmed it yet (its previous one still works)."""
        record = self.record(node)
        return record is not None and bool(record.previous_sha256)

    def confirm(self, node: str, digest: str | None = None) -> bool:
        """The LC holds the token whose hash is ``digest`` (None: the current one, which it authenticated with):
        forget the previous one. True when something changed."""
        record = self.record(node)
        if record is None or not record.previous_sha256:
            return False
        expected = record.token_sha256 if digest is None else digest
        return self._update(node, lambda r: r.confirmed() if r.previous_sha256 and _same(expected, r.token_sha256)
                            else None) is not None

    def revoke(self, node: str) -> bool:
        """Delete ``node``'s credential Secret (the watch drops its stream); False when it had none."""
        try:
            self.cluster.delete(SECRET, self.settings.namespace, records.secret_name(node))
        except NotFound:
            return False
        return True

    # ------------------------------------------------------------------- keys

    def _derive(self, label: str) -> bytes:
        if not self._key:
            raise RuntimeError("NodeIdentity.start() has not loaded the identity key yet")
        return hmac.new(self._key, label.encode(), hashlib.sha256).digest()

    def worker_key(self, node: str) -> bytes:
        """The key ``node``'s LC checks its workers' credentials with."""
        return self._derive(f"sedna-worker-key/v1/{node}")

    def job_key(self, uid: str) -> bytes:
        """The signing key of the federated job with ``uid`` (its trainers' credentials derive from it)."""
        return self._derive(f"sedna-fl-job/v1/{uid}")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _later(a: str, b: str) -> bool:
    """resourceVersion ``a`` is later than ``b`` (both integers, as in both backends)."""
    return a.isdigit() and b.isdigit() and int(a) > int(b)


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
