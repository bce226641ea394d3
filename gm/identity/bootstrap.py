"""Bootstrap tokens: what an LC without a node credential may join with.

A token is configured on the GM, in a file (one per line, ``TOKEN [expires=WHEN] [nodes=A,B]
[uses=N]``, read again whenever the file changes, so adding one needs no restart) or as one
unlimited token from a flag. :meth:`BootstrapTokens.check` finds the token for a join (constant
time per configured token) and says why it may not be used: unknown, expired, not for this node,
or used up. Uses are counted in the Secret ``sedna-bootstrap-uses`` of the GM's namespace (one
data key per token, named by a hash of it), so a restarted GM does not hand out a single-use
token twice; :meth:`BootstrapTokens.consume` counts one, refusing when none is left.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gm.cluster.interface import SECRET, AlreadyExists, Cluster, Conflict, NotFound, Obj
from gm.errors import SettingsError

USES_SECRET = "sedna-bootstrap-uses"
MIN_LENGTH = 16


class JoinRefused(Exception):
    """A join (or a node stream) is refused; ``reason`` is a short code, the message says why and what to do."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class BootstrapToken:
    token: str
    expires: float = 0.0
    """Unix seconds after which it is refused (0: never)."""
    nodes: frozenset[str] = frozenset()
    """Node names allowed to join with it (empty: any)."""
    uses: int = 0
    """How many joins it allows (0: unlimited)."""

    @property
    def id(self) -> str:
        """A name for it that does not reveal it: the first 16 hex digits of its SHA-256."""
        return hashlib.sha256(self.token.encode()).hexdigest()[:16]


def _when(value: str, where: str) -> float:
    if value.isdigit():
        return float(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SettingsError(f"{where}: expires={value!r} is neither an RFC 3339 time (2030-01-31T12:00:00Z) "
                            "nor Unix seconds") from None
    if moment.tzinfo is None:
        raise SettingsError(f"{where}: expires={value!r} needs a time zone (end it with Z)")
    return moment.timestamp()


def parse_line(line: str, where: str) -> BootstrapToken:
    """One line of a bootstrap tokens file; :class:`SettingsError` naming ``where`` and the field."""
    token, *fields = line.split()
    if len(token) < MIN_LENGTH:
        raise SettingsError(f"{where}: a bootstrap token must be at least {MIN_LENGTH} characters")
    expires, nodes, uses = 0.0, frozenset[str](), 0
    for item in fields:
        name, sep, value = item.partition("=")
        if not sep or not value:
            raise SettingsError(f"{where}: expected NAME=VALUE after the token, got {item!r}")
        if name == "expires":
            expires = _when(value, where)
        elif name == "nodes":
            nodes = frozenset(n for n in value.split(",") if n)
        elif name == "uses":
            if not value.isdigit() or int(value) < 1:
                raise SettingsError(f"{where}: uses={value!r} is not a positive integer")
            uses = int(value)
        else:
            raise SettingsError(f"{where}: unknown field {name!r} (expected expires, nodes or uses)")
    return BootstrapToken(token, expires, nodes, uses)


def parse(text: str, source: str) -> list[BootstrapToken]:
    """Every token of a file's ``text`` (``source`` names the file in errors)."""
    out = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            out.append(parse_line(line, f"{source}:{lineno}"))
    return out


class BootstrapTokens:
    """The configured bootstrap tokens: ``static`` ones plus those of ``path`` (re-read on change)."""

    def __init__(self, cluster: Cluster, namespace: str, static: Iterable[BootstrapToken] = (),
                 path: str = "") -> None:
        self._cluster, self._namespace = cluster, namespace
        self._static = list(static)
        self._path = Path(path) if path else None
        self._loaded: tuple[float, int] | None = None
        self._from_file: list[BootstrapToken] = []
        self._lock = threading.Lock()
        self.load()

    def load(self) -> list[BootstrapToken]:
        """Every token now; the file is parsed again when its mtime or size changed."""
        with self._lock:
            if self._path is not None:
                try:
                    stat = self._path.stat()
                except FileNotFoundError:
                    self._from_file, self._loaded = [], None
                else:
                    if self._loaded != (stat.st_mtime, stat.st_size):
                        self._from_file = parse(self._path.read_text(), str(self._path))
                        self._loaded = (stat.st_mtime, stat.st_size)
            return [*self._static, *self._from_file]

    def check(self, token: str, node: str, now: float | None = None) -> BootstrapToken:
        """The configured token equal to ``token`` if ``node`` may join with it now; :class:`JoinRefused` otherwise."""
        now = time.time() if now is None else now
        try:
            tokens = self.load()
        except (OSError, SettingsError) as exc:  # a broken file refuses joins, it does not stop the hub
            raise JoinRefused("bootstrap-unavailable", f"the GM cannot read its bootstrap tokens: {exc}") from None
        match = None
        for entry in tokens:  # compare with every entry: the time taken does not say which one matched
            if hmac.compare_digest(entry.token.encode(), token.encode()):
                match = entry
        if match is None:
            raise JoinRefused("bad-bootstrap-token", "the bootstrap token is not one the GM knows")
        if match.expires and now >= match.expires:
            raise JoinRefused("bootstrap-token-expired", "the bootstrap token has expired; ask for a new one")
        if match.nodes and node not in match.nodes:
            raise JoinRefused("bootstrap-token-not-for-node", f"the bootstrap token is not valid for node {node!r}")
        if match.uses and self._used(self._uses(), match) >= match.uses:
            raise JoinRefused("bootstrap-token-used-up", self._used_up(match))
        return match

    # ----------------------------------------------------------------------------- uses

    def _uses(self) -> Obj | None:
        try:
            return self._cluster.get(SECRET, self._namespace, USES_SECRET)
        except NotFound:
            return None

    @staticmethod
    def _used(secret: Obj | None, entry: BootstrapToken) -> int:
        raw = ((secret or {}).get("data") or {}).get(entry.id)
        try:
            return int(base64.b64decode(raw).decode()) if raw else 0
        except ValueError:
            return entry.uses  # unreadable: count it as used up rather than allow more joins

    @staticmethod
    def _used_up(entry: BootstrapToken) -> str:
        return f"the bootstrap token allowed {entry.uses} join(s) and has been used up"

    def consume(self, entry: BootstrapToken) -> None:
        """Count one join with ``entry``; :class:`JoinRefused` when it allows no more."""
        if not entry.uses:
            return
        for _ in range(10):
            secret = self._uses()
            used = self._used(secret, entry)
            if used >= entry.uses:
                raise JoinRefused("bootstrap-token-used-up", self._used_up(entry))
            data = dict((secret or {}).get("data") or {})
            data[entry.id] = base64.b64encode(str(used + 1).encode()).decode()
            try:
                if secret is None:
                    self._cluster.create({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": data,
                                          "metadata": {"name": USES_SECRET, "namespace": self._namespace}})
                else:
                    secret["data"] = data
                    self._cluster.update(secret)
                return
            except (AlreadyExists, Conflict):
                continue  # another join counted at the same time: read again
        raise JoinRefused("busy", "could not count the bootstrap token's use (conflicting writes); retry")
