"""Run the knowledge-base server: settings from the environment, uvicorn on a background thread.

Settings (env; Sedna's names where it had them):

- ``KB_BIND_IP`` (``127.0.0.1``) and ``KB_BIND_PORT`` (9020, Sedna's port); Sedna's
  ``KnowledgeBaseServer=http://ip:port`` is read when those are unset;
- ``KB_PATH`` (Sedna's ``KnowledgeBasePath``; default ``./kb``): blobs and the default database;
- ``KB_URL`` (Sedna's name) or ``KB_DATABASE_URL``: ``sqlite:///file`` (default
  ``<KB_PATH>/lifelong_kb.sqlite3``) or ``postgresql://user@host:port/db``;
- ``KB_TOKEN``: bearer token every API call needs; binding a non-loopback address without one is
  refused (set ``KB_ALLOW_ANONYMOUS=true`` to accept that on purpose);
- ``KB_MAX_BLOB_BYTES`` (256 MiB) and ``KB_MAX_INDEX_BYTES`` (4 MiB).
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sedna.common.errors import ConfigError
from sedna.common.log import get_logger
from sedna.service.kb.blobs import DEFAULT_MAX_BLOB_BYTES, BlobStore
from sedna.service.kb.db import Database
from sedna.service.kb.store import KnowledgeStore

LOG = get_logger(__name__)
DEFAULT_PORT = 9020


def _get(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name) or default


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        raise ConfigError(f"env {name}={raw!r} is not an integer") from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ConfigError(f"env {name}={raw!r} is not a boolean (use true or false)")
    return raw in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class KBSettings:
    """How a KB server runs (see the module docstring for the env names)."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    path: str = "kb"
    database_url: str = ""
    token: str = ""
    allow_anonymous: bool = False
    max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES
    max_index_bytes: int = 4 * 1024 * 1024

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KBSettings:
        env = dict(os.environ if environ is None else environ)
        host, port = "127.0.0.1", DEFAULT_PORT
        legacy = re.match(r"^https?://([^:/]+):(\d+)", _get(env, "KnowledgeBaseServer", ""))
        if legacy:
            host, port = legacy.group(1), int(legacy.group(2))
        path = _get(env, "KB_PATH", _get(env, "KnowledgeBasePath", "kb"))
        return cls(host=_get(env, "KB_BIND_IP", host), port=_int(env, "KB_BIND_PORT", port), path=path,
                   database_url=_get(env, "KB_DATABASE_URL", _get(env, "KB_URL", "")),
                   token=_get(env, "KB_TOKEN", ""), allow_anonymous=_bool(env, "KB_ALLOW_ANONYMOUS", False),
                   max_blob_bytes=_int(env, "KB_MAX_BLOB_BYTES", DEFAULT_MAX_BLOB_BYTES),
                   max_index_bytes=_int(env, "KB_MAX_INDEX_BYTES", 4 * 1024 * 1024))

    def check(self) -> None:
        """Raise ConfigError for settings that must not run."""
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"KB_BIND_PORT={self.port!r} is not a port number")
        if self.max_blob_bytes < 1 or self.max_index_bytes < 1:
            raise ConfigError("KB_MAX_BLOB_BYTES and KB_MAX_INDEX_BYTES must be positive")
        if not self.token and not self.allow_anonymous and not _is_loopback(self.host):
            raise ConfigError(f"KB_BIND_IP={self.host!r} is not a loopback address and KB_TOKEN is empty: set a token "
                              f"(or KB_ALLOW_ANONYMOUS=true to serve without one)")

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{Path(self.path).resolve() / 'lifelong_kb.sqlite3'}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class KBServer:
    """The KB API on ``settings.host:settings.port`` (port 0: the OS picks; read :attr:`port`)."""

    def __init__(self, settings: KBSettings) -> None:
        settings.check()
        self.settings = settings
        self.store = KnowledgeStore(Database(settings.resolved_database_url),
                                    BlobStore(settings.path, settings.max_blob_bytes))
        self.port: int | None = None
        self._uvicorn = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> KBServer:
        import uvicorn

        from sedna.service.kb.app import build_app

        app = build_app(self.store, token=self.settings.token or None, max_index_bytes=self.settings.max_index_bytes)
        family = socket.AF_INET6 if ":" in self.settings.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.settings.host, self.settings.port))
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", ws="none",
                                timeout_graceful_shutdown=5)
        self._uvicorn = server = uvicorn.Server(config)
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="kb-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"KB server failed to start on {self.settings.host}:{self.port}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"KB server did not start within {timeout}s")
            time.sleep(0.01)
        LOG.info("knowledge base serving %s on %s (database %s)", self.settings.path, self.url,
                 self.store.db.dialect)
        return self

    def stop(self) -> None:
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.store.db.close()

    def serve_forever(self) -> None:
        """Start if needed and block until SIGTERM or SIGINT."""
        if self._thread is None:
            self.start()
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                if self._thread is None or not self._thread.is_alive():
                    break
        finally:
            self.stop()
