"""``/healthz`` and ``/metrics`` of the Global Manager on a small HTTP server.

The controllers' Prometheus registry is served here in both backends (the local
backend's REST API has its own ``/metrics``). ``/healthz`` is open, as probes need;
``/metrics`` wants the API bearer token. The server binds 127.0.0.1 by default.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, generate_latest


class HealthServer:
    """Serves ``/healthz`` (``healthy()`` → 200/503) and token-protected ``/metrics``."""

    def __init__(self, registry: CollectorRegistry, token: str, healthy: Callable[[], bool],
                 host: str = "127.0.0.1", port: int = 0) -> None:
        expected = f"Bearer {token}".encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/healthz":
                    ok = healthy()
                    self._reply(200 if ok else 503, b"ok\n" if ok else b"unhealthy\n", "text/plain")
                elif self.path == "/metrics":
                    if not hmac.compare_digest(self.headers.get("Authorization", "").encode(), expected):
                        self._reply(401, b"a valid 'Authorization: Bearer <token>' header is required\n",
                                    "text/plain")
                    else:
                        self._reply(200, generate_latest(registry), "text/plain; version=0.0.4")
                else:
                    self._reply(404, b"not found: use /healthz or /metrics\n", "text/plain")

            def _reply(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="gm-health", daemon=True)

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
