"""This node's credential, kept in ``<state-dir>/node-credential.json`` (mode 0600).

The GM issues it at join (``EdgeHub.Join``) and replaces it over the hub stream: a rotated node
token, and the node's worker key after every resync. :class:`CredentialStore` is the one place
the LC reads them: the hub client dials with :meth:`~CredentialStore.token`, the worker API checks
worker credentials with :meth:`~CredentialStore.worker_key`. Every change is written to a new
file, flushed and renamed over the old one, so a crash leaves either credential whole, never a
mix, and an acknowledgement to the GM always means "on disk". A pre-shared token
(``--token``) is used only while no issued token is stored.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lc.errors import SettingsError
from sedna.controlplane.edgehub import Credential, Joined

FILE_NAME = "node-credential.json"


@dataclass(frozen=True)
class NodeCredential:
    node: str
    token: str = field(default="", repr=False)
    """The issued node token ('' when none: join, or use the pre-shared one)."""
    expires: int = 0
    worker_key: bytes = field(default=b"", repr=False)


def _write_private(path: Path, content: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read(path: Path, node: str) -> NodeCredential | None:
    """The credential stored at ``path`` for ``node`` (None when there is no file)."""
    try:
        body: Any = json.loads(path.read_text())
        if not isinstance(body, dict):
            raise ValueError("not a JSON object")
        stored = NodeCredential(str(body.get("node") or ""), str(body.get("token") or ""),
                                int(body.get("expires") or 0), base64.b64decode(str(body.get("workerKey") or "")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SettingsError(f"node credential file {str(path)!r} is unreadable ({exc}); delete it and join again "
                            "with a bootstrap token") from None
    if stored.node != node:
        raise SettingsError(f"node credential file {str(path)!r} belongs to node {stored.node!r}, not {node!r}: "
                            "give each node its own --state-dir")
    return stored


class CredentialStore:
    """The node's credential: the stored one, falling back to a pre-shared token; thread-safe."""

    def __init__(self, state_dir: Path, node: str, preshared_token: str = "") -> None:
        self.path = state_dir / FILE_NAME
        self.node = node
        self._preshared = preshared_token
        self._lock = threading.Lock()
        state_dir.mkdir(parents=True, exist_ok=True)
        self._current = read(self.path, node) or NodeCredential(node)

    def token(self) -> str:
        """The token to dial the hub with ('' when the LC must join first)."""
        with self._lock:
            return self._current.token or self._preshared

    def has_issued_token(self) -> bool:
        with self._lock:
            return bool(self._current.token)

    def worker_key(self) -> bytes:
        """The key worker credentials are checked with (b'' until the GM sent it)."""
        with self._lock:
            return self._current.worker_key

    def expires(self) -> int:
        with self._lock:
            return self._current.expires

    def _save(self, new: NodeCredential) -> None:
        body = {"node": new.node, "token": new.token, "expires": new.expires,
                "workerKey": base64.b64encode(new.worker_key).decode()}
        _write_private(self.path, json.dumps(body) + "\n")
        self._current = new

    def joined(self, joined: Joined) -> None:
        """Store what ``EdgeHub.Join`` returned."""
        with self._lock:
            self._save(NodeCredential(self.node, joined.token, joined.expires, joined.worker_key))

    def received(self, credential: Credential) -> None:
        """Store a credential the GM sent over the stream (a new token, the worker key, or both)."""
        with self._lock:
            new = self._current
            if credential.token:
                new = replace(new, token=credential.token, expires=credential.expires)
            if credential.worker_key:
                new = replace(new, worker_key=credential.worker_key)
            if new != self._current:
                self._save(new)

    def forget_token(self) -> None:
        """The GM refused the issued token for good (revoked or expired): join again (or use the pre-shared one)."""
        with self._lock:
            if self._current.token:
                self._save(replace(self._current, token="", expires=0))
